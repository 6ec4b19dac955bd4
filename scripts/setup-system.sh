#!/bin/sh
# Installs the system programs Witness's visual proof needs, from Debian's packages, when missing:
#   chromium (screenshots, driven by playwright-core; never a downloaded browser),
#   ffmpeg (the narrated MP4), espeak-ng (the narration), fonts-dejavu-core (titles and captions),
#   and for the tests poppler-utils (pdftoppm) and python3-cryptography (the Python verifier).
# Quiet when everything is present. Runs `apt-get update` at most once. Needs root (or sudo).
# Also starts this machine's PostgreSQL cluster when it is installed but down: the PostgreSQL
# driver's contract tests run against it (127.0.0.1:5432) and fail, never skip, without it.
set -eu

if command -v pg_lsclusters >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  for version in $(ls /etc/postgresql); do
    if [ -d "/etc/postgresql/$version/main" ] && ! pg_lsclusters -h "$version" main 2>/dev/null | grep -q online; then
      echo "witness: starting PostgreSQL $version (cluster main)..." >&2
      pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
        echo "witness: could not start PostgreSQL $version; start it with: pg_ctlcluster --skip-systemctl-redirect $version main start" >&2
    fi
  done
fi

missing=""
need() { # need <command-or-file> <package>
  case "$1" in
    /*) [ -e "$1" ] || missing="$missing $2" ;;
    *) command -v "$1" >/dev/null 2>&1 || missing="$missing $2" ;;
  esac
}
need /usr/bin/chromium chromium
need ffmpeg ffmpeg
need ffprobe ffmpeg
need espeak-ng espeak-ng
need /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf fonts-dejavu-core
# For the test suite's auditor checks: the report's PDF is rendered to PNG with pdftoppm, and an
# independent verifier written in Python (Debian's python3-cryptography for Ed25519) checks bundles.
need pdftoppm poppler-utils
need /usr/bin/python3 python3
need /usr/lib/python3/dist-packages/cryptography/__init__.py python3-cryptography

[ -z "$missing" ] && exit 0

# One package name once, in a stable order.
packages=$(printf '%s\n' $missing | sort -u | tr '\n' ' ')
if ! command -v apt-get >/dev/null 2>&1; then
  echo "witness: missing system packages: $packages; install them with your package manager (this script knows apt-get only)." >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "witness: missing system packages: $packages; run this script as root: sudo sh scripts/setup-system.sh" >&2
    exit 1
  fi
fi
echo "witness: installing $packages from Debian's packages (about 20 s)..." >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $packages >/dev/null
echo "witness: installed $packages." >&2
