/**
 * The witness side of C2SP tlog-witness (https://c2sp.org/tlog-witness): `POST /add-checkpoint`
 * with an old size line, up to 63 consistency proof lines, an empty line and a log-signed
 * checkpoint. Status codes are the spec's: 404 unknown origin, 403 no trusted log signature,
 * 400 malformed or old size above the checkpoint's, 409 (body: the size it has, as
 * text/x.tlog.size) when the old size is not the last size it cosigned or the same size has
 * another root, 422 when the consistency proof fails; 200 with the cosignature line otherwise.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WitnessError, openCheckpoint, verifyConsistency, type NoteVerifier, type OpenedCheckpoint } from '../core/index.js';
import { cosign, type CosignerSigner } from './cosig-key.js';
import { lockState, readState, recordRefusal, writeState } from './witness-state.js';

const MAX_BODY = 64 * 1024;
const MAX_PROOF_LINES = 63;
const HASH_B64 = /^[A-Za-z0-9+/]{43}=$/;

export interface CosignerOptions {
  signer: CosignerSigner;
  stateDir: string;
  /** Trusted log keys by origin. */
  logs: ReadonlyMap<string, readonly NoteVerifier[]>;
  host?: string;
  port?: number;
  now?: () => number;
}

export interface Reply {
  status: number;
  contentType: string;
  body: string;
}

const text = (status: number, body: string, contentType = 'text/plain; charset=utf-8'): Reply => ({ status, contentType, body: body.endsWith('\n') ? body : `${body}\n` });

/**
 * One add-checkpoint request, start to finish. Callers must not run two at once for one state
 * directory (the spec's roll-back race): the server below queues them.
 */
export function addCheckpoint(opts: CosignerOptions, body: string): Reply {
  const split = body.indexOf('\n\n');
  if (split < 0) return text(400, 'The request must be an old size line, proof lines, an empty line and a checkpoint.');
  const head = body.slice(0, split).split('\n');
  const note = body.slice(split + 2);
  const oldMatch = /^old (0|[1-9][0-9]*)$/.exec(head[0] ?? '');
  if (oldMatch === null) return text(400, 'The first line must be "old <size>" in decimal without leading zeros.');
  const oldSize = Number(oldMatch[1]);
  if (!Number.isSafeInteger(oldSize)) return text(400, 'The old size is too large.');
  const proofLines = head.slice(1);
  if (proofLines.length > MAX_PROOF_LINES) return text(400, `At most ${MAX_PROOF_LINES} consistency proof lines are allowed.`);
  if (!proofLines.every((l) => HASH_B64.test(l))) return text(400, 'Each consistency proof line must be one base64 SHA-256 hash.');
  const proof = proofLines.map((l) => Buffer.from(l, 'base64'));

  const origin = note.slice(0, note.indexOf('\n'));
  const verifiers = opts.logs.get(origin);
  if (verifiers === undefined) return text(404, `This witness does not know the log ${JSON.stringify(origin)}.`);
  let opened: OpenedCheckpoint;
  try {
    opened = openCheckpoint(note, verifiers, origin);
  } catch (e) {
    if (e instanceof WitnessError && (e.code === 'invalid_signature' || e.code === 'invalid_key')) return text(403, 'No signature on the checkpoint verifies against a log key this witness trusts.');
    return text(400, e instanceof WitnessError ? e.message : 'The checkpoint is malformed.');
  }
  const cp = opened.checkpoint;
  if (oldSize > cp.size) return text(400, `The old size ${oldSize} is larger than the checkpoint size ${cp.size}.`);

  const state = readState(opts.stateDir, origin);
  const haveSize = state?.size ?? 0;
  if (oldSize !== haveSize) return text(409, `${haveSize}\n`, 'text/x.tlog.size');
  if (state !== undefined) {
    const haveRoot = Buffer.from(state.root, 'base64');
    if (cp.size === state.size && !haveRoot.equals(Buffer.from(cp.rootHash))) {
      recordRefusal(opts.stateDir, { origin, status: 409, reason: `same size ${cp.size}, different root`, request: body });
      return text(409, `${haveSize}\n`, 'text/x.tlog.size');
    }
    const r = verifyConsistency(state.size, cp.size, proof, haveRoot, cp.rootHash);
    if (!r.ok) {
      recordRefusal(opts.stateDir, { origin, status: 422, reason: r.reason, request: body });
      return text(422, `The consistency proof from size ${state.size} to ${cp.size} does not verify (${r.reason}): this checkpoint does not extend the last one this witness cosigned.`);
    }
  } else if (proof.length !== 0) {
    return text(422, 'The consistency proof must be empty when the old size is 0.');
  }
  const timestamp = Math.floor((opts.now?.() ?? Date.now()) / 1000);
  writeState(opts.stateDir, { v: 1, origin, size: cp.size, root: Buffer.from(cp.rootHash).toString('base64'), note, cosigned_at: timestamp });
  return text(200, cosign(opts.signer, opened.text, timestamp), 'text/plain; charset=utf-8');
}

export interface RunningCosigner {
  url: string;
  close(): Promise<void>;
}

export async function startCosigner(opts: CosignerOptions): Promise<RunningCosigner> {
  const unlock = lockState(opts.stateDir);
  // Requests run one at a time: checking the old size and saving the new one must be atomic.
  let queue: Promise<unknown> = Promise.resolve();
  const server = http.createServer((req, res) => {
    const reply = (r: Reply) => {
      res.writeHead(r.status, { 'content-type': r.contentType, 'content-length': Buffer.byteLength(r.body) });
      res.end(r.body);
    };
    if (req.url !== '/add-checkpoint') return reply(text(404, 'Not found; the witness answers POST /add-checkpoint.'));
    if (req.method !== 'POST') return reply(text(405, 'add-checkpoint takes POST.'));
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reply(text(413, `The request is larger than ${MAX_BODY} bytes.`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (size > MAX_BODY) return;
      queue = queue.then(() => {
        try {
          reply(addCheckpoint(opts, Buffer.concat(chunks).toString('utf8')));
        } catch (e) {
          reply(text(500, e instanceof WitnessError ? e.message : 'The witness failed; see its log.'));
        }
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => {
      unlock();
      reject(e);
    });
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    url: `http://${addr.address}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          unlock();
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}
