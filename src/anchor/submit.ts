/**
 * The log side of C2SP tlog-witness: send a checkpoint to a witness's add-checkpoint with the
 * consistency proof from the size the witness last cosigned, and take back its cosignature.
 * The log does not need to remember that size: a wrong guess gets 409 with the witness's size
 * (text/x.tlog.size), and the request is made once more from there, as the spec allows.
 */
import { WitnessError } from '../core/index.js';
import { checkpointBodyOf } from './body.js';
import { cosignerLabel, parseCosignatureLine, verifyCosignature, type Cosignature, type CosignerVerifier } from './cosig-key.js';

export interface CosignerTarget {
  /** Submission prefix; the request goes to `<url>/add-checkpoint`. */
  url: string;
  verifier: CosignerVerifier;
}

export interface SubmitInput {
  /** The log-signed checkpoint note. */
  note: string;
  size: number;
  /** First size to try as "old" (the last one this witness is known to have cosigned, else 0). */
  guess: number;
  proof(oldSize: number): Promise<readonly Uint8Array[]>;
  fetchTimeoutMs?: number;
}

/** Parses `URL=VKEY` (the URL must not hold '='). */
export function parseCosignerSpec(spec: string, parse: (vkey: string) => CosignerVerifier): CosignerTarget {
  const i = spec.indexOf('=');
  if (i <= 0) throw new WitnessError('invalid_argument', `--cosigner takes URL=VKEY (the witness's submission URL and its cosigner key from \`witness cosign init\`), not ${JSON.stringify(spec)}.`);
  const url = spec.slice(0, i).replace(/\/+$/, '');
  if (!/^https?:\/\//.test(url)) throw new WitnessError('invalid_argument', `The cosigner URL ${JSON.stringify(url)} must start with http:// or https://.`);
  return { url, verifier: parse(spec.slice(i + 1)) };
}

async function post(url: string, body: string, timeoutMs: number): Promise<{ status: number; type: string; text: string }> {
  let res: Response;
  try {
    res = await fetch(`${url}/add-checkpoint`, { method: 'POST', body, headers: { 'content-type': 'text/plain; charset=utf-8' }, signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    throw new WitnessError('store_unavailable', `The witness at ${url} cannot be reached (${(e as Error).message}); check the URL and that \`witness cosign serve\` runs there.`, { cause: e });
  }
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}

export async function submitCheckpoint(target: CosignerTarget, input: SubmitInput): Promise<Cosignature> {
  const label = cosignerLabel(target.verifier);
  const timeout = input.fetchTimeoutMs ?? 10_000;
  let old = Math.min(input.guess, input.size);
  for (let attempt = 0; attempt < 2; attempt++) {
    const proof = old === 0 ? [] : await input.proof(old);
    const request = `old ${old}\n${proof.map((h) => `${Buffer.from(h).toString('base64')}\n`).join('')}\n${input.note}`;
    const r = await post(target.url, request, timeout);
    if (r.status === 200) {
      const body = checkpointBodyOf(input.note);
      for (const line of r.text.split('\n')) {
        const c = parseCosignatureLine(line);
        if (c !== undefined && verifyCosignature(target.verifier, body, c)) return c;
      }
      throw new WitnessError('invalid_signature', `The witness at ${target.url} answered without a valid cosignature by ${label}; check that its key is the one you configured.`);
    }
    if (r.status === 409 && r.type.startsWith('text/x.tlog.size')) {
      const m = /^(0|[1-9][0-9]*)\n$/.exec(r.text);
      const have = m === null ? NaN : Number(m[1]);
      if (!Number.isSafeInteger(have)) throw new WitnessError('conflict', `The witness at ${target.url} refused with 409 but did not say which size it has.`);
      if (have > input.size) {
        throw new WitnessError(
          'conflict',
          `The witness ${label} has already cosigned size ${have} of this log, larger than this checkpoint (${input.size}): the ledger was rolled back or forked; investigate before sealing more.`,
          {
            details: { witnessSize: have, size: input.size },
          },
        );
      }
      if (have !== old && attempt === 0) {
        old = have;
        continue;
      }
      throw new WitnessError(
        'conflict',
        `The witness ${label} refused to cosign size ${input.size}: it has cosigned a different tree of the same size ${have} (a forked log); investigate before sealing more.`,
        {
          details: { witnessSize: have, size: input.size },
        },
      );
    }
    if (r.status === 422) {
      throw new WitnessError(
        'conflict',
        `The witness ${label} refused to cosign size ${input.size}: this ledger does not extend the checkpoint of size ${old} it cosigned before (a forked or rewritten log). Witness says: ${r.text.trim()}`,
        {
          details: { witnessSize: old, size: input.size },
        },
      );
    }
    if (r.status === 404) throw new WitnessError('not_found', `The witness ${label} does not know this log's origin; its operator must add it with --log ORIGIN=VKEY.`);
    if (r.status === 403) throw new WitnessError('forbidden', `The witness ${label} does not trust this log's signing key; its operator must add the current verifier key with --log ORIGIN=VKEY.`);
    throw new WitnessError('store_unavailable', `The witness at ${target.url} answered ${r.status}: ${r.text.trim().slice(0, 200)}`);
  }
  throw new WitnessError('conflict', `The witness ${label} kept refusing size ${input.size}.`);
}
