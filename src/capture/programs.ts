import fs from 'node:fs';
import path from 'node:path';
import { WitnessError } from '../core/index.js';

/**
 * The system programs visual proof runs on, all from Debian's packages and never downloaded:
 * Chromium (screenshots, through playwright-core), ffmpeg and ffprobe (the MP4), espeak-ng (the
 * narration). Each can be pointed elsewhere with an environment variable.
 */
export type Program = 'chromium' | 'ffmpeg' | 'ffprobe' | 'espeak-ng';

const ENV: Record<Program, string> = { chromium: 'WITNESS_CHROMIUM', ffmpeg: 'WITNESS_FFMPEG', ffprobe: 'WITNESS_FFPROBE', 'espeak-ng': 'WITNESS_ESPEAK' };
const PACKAGE: Record<Program, string> = { chromium: 'chromium', ffmpeg: 'ffmpeg', ffprobe: 'ffmpeg', 'espeak-ng': 'espeak-ng' };
const DEFAULT: Record<Program, string> = { chromium: '/usr/bin/chromium', ffmpeg: 'ffmpeg', ffprobe: 'ffprobe', 'espeak-ng': 'espeak-ng' };

/** Where a program would be taken from: its override, else its default (a path, or a name looked up in PATH). */
export function programSetting(p: Program, env: NodeJS.ProcessEnv = process.env): string {
  const v = env[ENV[p]];
  return v === undefined || v === '' ? DEFAULT[p] : v;
}

function lookup(name: string, env: NodeJS.ProcessEnv): string | undefined {
  if (name.includes('/')) return isExecutable(name) ? path.resolve(name) : undefined;
  for (const dir of (env['PATH'] ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The program's absolute path, or a one-sentence error naming it and the command that installs it. */
export function requireProgram(p: Program, env: NodeJS.ProcessEnv = process.env): string {
  const setting = programSetting(p, env);
  const found = lookup(setting, env);
  if (found !== undefined) return found;
  const where = setting.includes('/') ? `at ${setting}` : 'on PATH';
  throw new WitnessError(
    'missing_program',
    `${p} is not installed (looked ${where}); install it with \`sudo sh scripts/setup-system.sh\` (or \`apt-get install ${PACKAGE[p]}\`), or set ${ENV[p]} to its path.`,
    { details: { program: p, setting } },
  );
}
