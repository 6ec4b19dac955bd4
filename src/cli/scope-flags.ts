import { WitnessError } from '../core/index.js';
import { BundleScope, normaliseInstant } from '../export/index.js';

/**
 * The scope flags `witness export`, `report`, `review` and `export --format ocsf|jsonl` share
 * (--since, --until, --agent, --session, --regime), read one way so the four commands select the
 * same events for the same flags.
 */
export interface ScopeFlags {
  since?: string;
  until?: string;
  agent?: string;
  session?: string;
  regime?: string;
}

const REGIMES = BundleScope.shape.regimes.element.options;

/** `--agent a,b` → ['a', 'b']; absent → null (not filtered). */
export function idList(value: string | undefined, flag: string): string[] | null {
  if (value === undefined) return null;
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (items.length === 0) throw new WitnessError('invalid_argument', `${flag} needs at least one id; give them separated by commas.`);
  return items;
}

/**
 * The scope of a bundle or report, or a one-sentence refusal (exit 2). Times are ISO dates
 * (midnight UTC) or date-times whose every part exists, normalised to YYYY-MM-DDTHH:MM:SS.mmmZ;
 * `what` finishes the sentence asking for a scope ("export", "the report covers").
 */
export function bundleScopeFromFlags(opts: ScopeFlags, what: string): BundleScope {
  const since = opts.since === undefined ? null : normaliseInstant(opts.since, '--since');
  const until = opts.until === undefined ? null : normaliseInstant(opts.until, '--until');
  if (since !== null && until !== null && since >= until) {
    throw new WitnessError('invalid_argument', `--since ${opts.since} is not before --until ${opts.until}; give a window that is not empty.`);
  }
  const regimes = [...new Set(idList(opts.regime, '--regime') ?? [])];
  const unknown = regimes.filter((r) => !(REGIMES as readonly string[]).includes(r));
  if (unknown.length > 0) throw new WitnessError('invalid_argument', `Unknown regime ${unknown.join(', ')}; choose from ${REGIMES.join(', ')}.`);
  const scope: BundleScope = { since, until, agents: idList(opts.agent, '--agent'), sessions: idList(opts.session, '--session'), regimes: regimes as BundleScope['regimes'] };
  if (since === null && until === null && scope.agents === null && scope.sessions === null) {
    throw new WitnessError('invalid_argument', `Say what ${what}: give --since and --until, --agent or --session (any together).`);
  }
  return scope;
}
