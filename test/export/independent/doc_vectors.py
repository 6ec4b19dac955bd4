#!/usr/bin/python3
"""Holds verify_bundle.py's pieces against the vectors and the worked example of docs/FORMAT.md.

Every block marked `<!-- example: NAME -->` in the document is read here and recomputed by the
independent verifier's own functions, so the document and this verifier are checked against each
other without Witness's code. Prints one line per check; exit 0 when all hold, 1 otherwise.

    /usr/bin/python3 doc_vectors.py [path/to/FORMAT.md] [--json]
    /usr/bin/python3 doc_vectors.py --es-numbers < doubles   (one little-endian hex double a line)
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import sys
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import verify_bundle as vb  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DOC = os.path.join(HERE, "..", "..", "..", "docs", "FORMAT.md")


def examples(doc: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in re.finditer(r"<!-- example: ([\w.-]+) -->\n```[a-z]*\n(.*?)```", doc, re.S):
        out[m.group(1)] = m.group(2)
    return out


def es_numbers() -> int:
    """--es-numbers: each stdin line is a double as 16 hex digits (little-endian); prints its JCS form."""
    import struct

    for line in sys.stdin.read().split():
        x = struct.unpack("<d", bytes.fromhex(line))[0]
        try:
            print(vb.es_number(x))
        except vb.Refused:
            print("refused")
    return 0


def main(argv: list[str]) -> int:
    if "--es-numbers" in argv:
        return es_numbers()
    as_json = "--json" in argv
    paths = [a for a in argv if a != "--json"]
    with open(paths[0] if paths else DEFAULT_DOC, encoding="utf-8") as f:
        ex = examples(f.read())
    results: list[tuple[str, bool, str]] = []

    def check(name: str, fn: Callable[[], Any]) -> None:
        try:
            ok = fn()
            results.append((name, ok is not False, "" if ok is not False else "does not hold"))
        except Exception as e:  # a check that crashes is a failed check, named
            results.append((name, False, f"{type(e).__name__}: {e}"))

    def sha(b: bytes) -> str:
        return hashlib.sha256(b).hexdigest()

    # 2.2 vectors and refusals
    for i, (text, want) in enumerate(json.loads(ex["jcs-vectors"])):
        check(f"jcs-vectors[{i}] {text[:30]!r}", lambda t=text, w=want: vb.jcs(vb.strict_loads(t)).decode("utf-8") == w or (_ for _ in ()).throw(AssertionError(vb.jcs(vb.strict_loads(t)).decode())))

    def refused(text: str) -> bool:
        try:
            vb.jcs(vb.strict_loads(text.encode("utf-8", "surrogatepass")))
        except vb.Refused:
            return True
        return False

    for i, text in enumerate(json.loads(ex["jcs-refused"])):
        check(f"jcs-refused[{i}] {text[:30]!r}", lambda t=text: refused(t))

    # 9: events of the v1 example
    lines = ex["events.jsonl"].strip("\n").split("\n")
    origin = "example/witness/01a24c4a-c1f0-729c-af8e-d3efe6a58be8"
    report = vb.Report()
    chains = vb.Chains(origin, report, v2=False)
    results_ev = []
    for line in lines:
        obj = vb.strict_loads(line)
        r = vb.check_event(obj, report, obj["leaf"])
        chains.add(r)
        results_ev.append(r)
    check("events.jsonl: three events verify and chain", lambda: report.failures == [] or report.failures)
    check("genesis", lambda: vb.genesis(origin, "sess-1").hex() == ex["genesis"].strip())
    ev1 = vb.strict_loads(lines[1])
    check("data-jcs", lambda: vb.jcs(ev1["data"]).decode() == ex["data-jcs"].strip())
    check("payload-digest", lambda: sha(bytes.fromhex(ev1["salt"]) + vb.jcs(ev1["data"])) == ex["payload-digest"].strip())
    header1 = {k: v for k, v in ev1.items() if k not in ("data", "salt", "hash", "leaf")}
    check("header-jcs", lambda: vb.jcs(header1).decode() == ex["header-jcs"].strip())
    check("header-jcs is 392 bytes", lambda: len(vb.jcs(header1)) == 392)
    check("prev", lambda: header1["prev"] == ex["prev"].strip())
    check("event-hash", lambda: results_ev[1].hash.hex() == ex["event-hash"].strip())
    leaves = [vb.leaf_hash(r.hash) for r in results_ev]
    check("leaf-hashes", lambda: [x.hex() for x in leaves] == ex["leaf-hashes"].split())
    node01 = vb.node_hash(leaves[0], leaves[1])
    root3 = vb.node_hash(node01, leaves[2])
    check("root", lambda: root3.hex() == ex["root"].strip())
    for line in ex["proofs.jsonl"].strip("\n").split("\n"):
        p = vb.parse_proof_line(line.encode())
        check(f"proofs.jsonl leaf {p['leaf']}", lambda p=p: vb.verify_inclusion(p["leaf"], p["size"], leaves[p["leaf"]], [bytes.fromhex(x) for x in p["proof"]], root3))
        check(
            f"proofs.jsonl leaf {p['leaf']}, one step altered, fails",
            lambda p=p: not vb.verify_inclusion(p["leaf"], p["size"], leaves[p["leaf"]], [bytes.fromhex(x) for x in p["proof"][:-1]] + [bytes(32)], root3),
        )
    check("consistency 2 -> 3 (9.3)", lambda: vb.verify_consistency(2, 3, node01, root3, [leaves[2]]))
    vkey = ex["vkey"].strip()
    key = vb.parse_vkey(vkey)
    check("key-id-input", lambda: (key.name.encode() + b"\n\x01" + key.public).hex() == ex["key-id-input"].strip())
    check("key-id-sha256", lambda: sha(bytes.fromhex(ex["key-id-input"].strip())) == ex["key-id-sha256"].strip())
    check("key hash", lambda: f"{key.key_hash:08x}" == ex["key-id-sha256"].strip()[:8])
    note = ex["checkpoint.txt"]
    check("checkpoint.txt opens with the key", lambda: vb.open_note(note, [key], origin)[:2] == (3, root3))
    check("checkpoint.txt body is 138 bytes", lambda: len(note[: note.rfind("\n\n") + 1].encode()) == 138)
    sig_b64 = note.rstrip("\n").rsplit(" ", 1)[1]
    check("signature-bytes", lambda: base64.b64decode(sig_b64).hex() == ex["signature-bytes"].strip())
    check("checkpoint.txt for another origin is checkpoint_invalid", lambda: _code(lambda: vb.open_note(note, [key], "other/witness/x")) == "checkpoint_invalid")
    forged = note.replace("\n3\n", "\n4\n", 1)
    check("checkpoint.txt with the size changed is checkpoint_signature", lambda: _code(lambda: vb.open_note(forged, [key], origin)) == "checkpoint_signature")
    digest = hashlib.sha256(b"".join(r.hash for r in results_ev)).hexdigest()
    check("events-digest", lambda: digest == ex["events-digest"].strip())
    pline = vb.population_line(1, header1, results_ev[1].hash)
    check("population-line", lambda: pline.decode() == ex["population-line"])
    check("population-digest", lambda: sha(pline) == ex["population-digest"].strip())

    # 9.6 the v2 bundle
    manifest = vb.strict_loads(ex["v2-manifest.json"])
    check("v2-manifest.json follows 7.2", lambda: vb._obj(manifest, vb.MANIFEST_V2_FIELDS, "manifest") is None)
    check("v2-manifest.json names only v2 files", lambda: all(vb.v2_name(n) for n in manifest["files"]))
    check("v2: empty populations have the digest of nothing", lambda: manifest["files"]["populations/approvals.jsonl"] == sha(b""))
    exp = vb.strict_loads(ex["v2-export-event"])
    rep2 = vb.Report()
    r_exp = vb.check_event(exp, rep2, exp["leaf"])
    check("v2-export-event verifies", lambda: rep2.failures == [] or rep2.failures)
    check("v2-export-event starts its stream from the genesis", lambda: exp["prev"] == vb.genesis(origin, "witness.audit-access").hex())
    check("v2-export-event records the events digest", lambda: exp["data"]["events_digest"] == digest)
    check("v2-export-event scope/mode/span equal the manifest's", lambda: vb.jeq(exp["data"]["scope"], manifest["scope"]) and exp["data"]["mode"] == manifest["mode"] and vb.jeq(exp["data"]["span"], manifest["span"]))
    root4 = bytes.fromhex(manifest["checkpoint"]["root"])
    p4 = vb.parse_proof_line(ex["v2-proof"].strip().encode())
    check("v2-proof", lambda: vb.verify_inclusion(3, 4, vb.leaf_hash(r_exp.hash), [bytes.fromhex(x) for x in p4["proof"]], root4))
    cps = [vb.strict_loads(x) for x in ex["v2-checkpoints.jsonl"].strip("\n").split("\n")]
    for c in cps:
        check(f"v2-checkpoints.jsonl size {c['size']} opens", lambda c=c: vb.open_note(c["note"], [key], origin)[:2] == (c["size"], bytes.fromhex(c["root"])))
    check("v2-checkpoints.jsonl consistency 3 -> 4", lambda: vb.verify_consistency(3, 4, bytes.fromhex(cps[0]["root"]), bytes.fromhex(cps[1]["root"]), [bytes.fromhex(x) for x in cps[1]["consistency"]]))
    check("v2-checkpoints.jsonl consistency with a step altered fails", lambda: not vb.verify_consistency(3, 4, bytes.fromhex(cps[0]["root"]), bytes.fromhex(cps[1]["root"]), [bytes.fromhex(x) for x in cps[1]["consistency"][:2]] + [bytes(32)]))
    check("the root of size 3 in checkpoints.jsonl is 9.3's", lambda: cps[0]["root"] == root3.hex())

    failed = [r for r in results if not r[1]]
    if as_json:
        print(json.dumps({"checks": len(results), "failed": [{"name": n, "why": w} for n, _, w in failed]}))
    else:
        for n, ok, why in results:
            print(f"{'ok  ' if ok else 'FAIL'} {n}" + (f" — {why}" if why else ""))
        print(f"{len(results) - len(failed)} of {len(results)} checks hold")
    return 1 if failed else 0


def _code(fn: Callable[[], Any]) -> str | None:
    try:
        fn()
    except vb.NoteError as e:
        return e.code
    return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
