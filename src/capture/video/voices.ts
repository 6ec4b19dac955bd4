import { WitnessError } from '../../core/index.js';
import { runProgram } from '../exec.js';
import { requireProgram } from '../programs.js';

/**
 * The voices the installed espeak-ng has. espeak-ng takes any `-v` name and, when it knows no such
 * voice or variant, silently speaks with another one (`-v klingon` exits 0), so a narration could
 * come out in a voice nobody asked for. Names are checked against its own listing instead.
 */
export interface Voices {
  /** Languages and language aliases (`en-us`, `en`, `de`), and voice names (`en-US`), in lower case. */
  readonly languages: readonly string[];
  /** Variants, added as `en-us+f3` (`f3`, `klatt`, `Alex`): file names, compared exactly. */
  readonly variants: readonly string[];
}

/** One row of `espeak-ng --voices`: Pty, Language, Age/Gender, VoiceName, File, then "(alias priority)" pairs. */
const ROW = /^\s*\d+\s+(\S+)\s+\S+\s+(\S+)\s+(\S+)\s*(.*)$/;

async function listing(espeak: string, which: string): Promise<Array<{ language: string; name: string; file: string; aliases: string[] }>> {
  const r = await runProgram(espeak, [which]);
  if (r.code !== 0) {
    throw new WitnessError('capture_failed', `espeak-ng could not list its voices (${r.stderr.trim().split('\n')[0] || `exit code ${r.code}`}); check the installation with \`espeak-ng --voices\`.`);
  }
  const rows = [];
  for (const line of r.stdout.toString('utf8').split('\n').slice(1)) {
    const m = ROW.exec(line);
    if (m === null) continue;
    rows.push({ language: m[1]!, name: m[2]!, file: m[3]!, aliases: [...m[4]!.matchAll(/\(([^\s()]+) \d+\)/g)].map((a) => a[1]!) });
  }
  return rows;
}

/** Lists the languages and variants of the espeak-ng at `espeak` (an absolute path). */
export async function listVoices(espeak: string): Promise<Voices> {
  const [voices, variants] = await Promise.all([listing(espeak, '--voices'), listing(espeak, '--voices=variant')]);
  const languages = new Set<string>();
  for (const v of voices) {
    for (const name of [v.language, ...v.aliases, v.name, v.file.slice(v.file.lastIndexOf('/') + 1)]) languages.add(name.toLowerCase());
  }
  return { languages: [...languages], variants: variants.map((v) => v.file.slice(v.file.lastIndexOf('/') + 1)) };
}

/** `language` or `language+variant`, in the characters espeak-ng's own names use. */
const VOICE = /^([A-Za-z0-9_-]{1,64})(?:\+([A-Za-z0-9_-]{1,64}))?$/;

/**
 * Resolves when espeak-ng has `voice` (a language or voice name, optionally `+variant`); otherwise
 * throws `invalid_argument` in one sentence saying how to list the voices.
 */
export async function requireVoice(voice: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const espeak = requireProgram('espeak-ng', env);
  const m = VOICE.exec(voice);
  if (m !== null) {
    const known = await listVoices(espeak);
    if (known.languages.includes(m[1]!.toLowerCase()) && (m[2] === undefined || known.variants.includes(m[2]))) return;
  }
  throw new WitnessError(
    'invalid_argument',
    `${JSON.stringify(voice)} is not an espeak-ng voice; list the voices with \`espeak-ng --voices\` (a language such as en-us) and the variants with \`espeak-ng --voices=variant\` (added as en-us+f3).`,
    { details: { voice } },
  );
}
