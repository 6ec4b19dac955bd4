/**
 * The two S3 calls a checkpoint copy needs, GetObject and PutObject, signed with SigV4
 * (aws4fetch), and every way they fail turned into one sentence. S3's error bodies can echo the
 * access key id and the string that was signed, so only their `<Code>` is ever read.
 */
import { createHash } from 'node:crypto';
import { AwsClient } from 'aws4fetch';
import { WitnessError } from '../core/index.js';
import type { S3Credentials, S3Location, S3Settings } from './s3-settings.js';

/** A checkpoint note or a time-stamp token is a few KiB; a larger object is not one of ours. */
const MAX_OBJECT_BYTES = 1 << 20;
const TIMEOUT_MS = 30_000;
/** A whole copy (its reads, writes and retries) ends within this, however slowly an endpoint answers. */
const COPY_DEADLINE_MS = 120_000;
const RETRIED: ReadonlySet<number> = new Set([429, 500, 502, 503, 504]);
const EMPTY_SHA256 = createHash('sha256').digest('hex');

export interface S3Object {
  bytes: Buffer;
  etag?: string;
}

export interface PutCondition {
  /** Create only: `If-None-Match: *`. */
  absent?: boolean;
  /** Replace only this version: `If-Match: <etag>`. */
  etag?: string;
}

/** `written`; `precondition`: the object changed since it was read (read again); `unsupported`: the server refused the condition header. */
export type PutResult = 'written' | 'precondition' | 'unsupported';

export class S3Client {
  private readonly aws: AwsClient;
  private readonly deadline = Date.now() + COPY_DEADLINE_MS;

  constructor(
    private readonly settings: S3Settings,
    credentials: S3Credentials,
  ) {
    // Retries are ours (send), so that 501 — an answer, not an outage — is not retried.
    this.aws = new AwsClient({ ...credentials, service: 's3', region: settings.region, retries: 0 });
  }

  /** The object, or undefined when the key holds none; a missing bucket or refused access throws. */
  async get(location: S3Location, name: string): Promise<S3Object | undefined> {
    const res = await this.send(location, name, { method: 'GET', headers: { 'x-amz-content-sha256': EMPTY_SHA256 } });
    if (res.status === 200) {
      const etag = res.headers.get('etag');
      let bytes: Buffer;
      try {
        bytes = await readCapped(res, MAX_OBJECT_BYTES);
      } catch (e) {
        // The answer's head came in time but its body did not (or broke off): an outage, said like the others.
        throw this.unreachable(e);
      }
      return { bytes, ...(etag === null ? {} : { etag }) };
    }
    const code = await errorCode(res);
    if (res.status === 404 && code !== 'NoSuchBucket') return undefined;
    throw this.failure(location, name, res, code);
  }

  async put(location: S3Location, name: string, body: Buffer, contentType: string, condition: PutCondition = {}): Promise<PutResult> {
    const headers: Record<string, string> = {
      'content-type': contentType,
      'x-amz-content-sha256': createHash('sha256').update(body).digest('hex'),
      // Buckets with Object Lock (default WORM retention) refuse a PUT without an integrity header; every S3 server knows this one.
      'content-md5': createHash('md5').update(body).digest('base64'),
    };
    if (condition.absent === true) headers['if-none-match'] = '*';
    if (condition.etag !== undefined) headers['if-match'] = condition.etag;
    const res = await this.send(location, name, { method: 'PUT', headers, body });
    if (res.status === 200) {
      await res.body?.cancel();
      return 'written';
    }
    const code = await errorCode(res);
    // 412: the key was written (or changed) since we read it; 409 ConditionalRequestConflict: a concurrent conditional write won.
    if (res.status === 412 || (res.status === 409 && code === 'ConditionalRequestConflict')) return 'precondition';
    if (res.status === 501 && (condition.absent === true || condition.etag !== undefined)) return 'unsupported';
    throw this.failure(location, name, res, code);
  }

  private async send(location: S3Location, name: string, init: { method: string; headers: Record<string, string>; body?: Buffer }): Promise<Response> {
    const url = this.settings.objectUrl(location, name);
    try {
      for (let attempt = 1; ; attempt++) {
        // Redirects are answers (a bucket in another region), not hops: a signed request is never re-sent elsewhere.
        const left = this.deadline - Date.now();
        if (left <= 0)
          throw new WitnessError(
            'store_unavailable',
            `The S3 endpoint ${this.settings.endpoint} took longer than ${COPY_DEADLINE_MS / 1000} s for one copy; nothing more was written — try again later.`,
          );
        const res = await this.aws.fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(Math.min(TIMEOUT_MS, left)) });
        // S3 asks clients to retry 500, 503 SlowDown and the like; a conditional PUT is safe to repeat (a repeat that finds its own write reads it back as the same tree).
        if (attempt === 3 || !RETRIED.has(res.status)) return res;
        await res.body?.cancel();
        await new Promise((r) => setTimeout(r, 100 * 4 ** (attempt - 1)));
      }
    } catch (e) {
      throw e instanceof WitnessError ? e : this.unreachable(e);
    }
  }

  private unreachable(e: unknown): WitnessError {
    const why = (e as Error).name === 'TimeoutError' ? `no answer within ${TIMEOUT_MS / 1000} s` : (causeCode(e) ?? 'network error');
    return new WitnessError('store_unavailable', `The S3 endpoint ${this.settings.endpoint} cannot be reached (${why}); check --s3-endpoint or AWS_ENDPOINT_URL_S3 and the network.`, { cause: e });
  }

  private failure(location: S3Location, name: string, res: Response, code: string | undefined): WitnessError {
    const object = `${location.label}${name}`;
    const what = code === undefined ? `HTTP ${res.status}` : code;
    if (code === 'NoSuchBucket') return new WitnessError('not_found', `The bucket ${location.bucket} does not exist at ${this.settings.endpoint}; create it or correct the destination.`);
    const region = res.headers.get('x-amz-bucket-region');
    if ((res.status === 301 || res.status === 307 || code === 'AuthorizationHeaderMalformed') && region !== null && /^[a-z0-9-]{1,40}$/.test(region)) {
      return new WitnessError('store_unavailable', `The bucket ${location.bucket} is in region ${region}, not ${this.settings.region} (${what}); set AWS_REGION=${region}.`);
    }
    if (res.status === 401 || res.status === 403) {
      return new WitnessError(
        'forbidden',
        `${this.settings.endpoint} refused access to ${object} (${what}); check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, and the bucket's policy.`,
      );
    }
    return new WitnessError('store_unavailable', `${this.settings.endpoint} answered HTTP ${res.status} (${what}) for ${object}; try again later or check the server.`);
  }
}

/** S3's error code, e.g. NoSuchBucket; nothing else of the body (it may echo the request's signature material). */
async function errorCode(res: Response): Promise<string | undefined> {
  try {
    const text = (await readCapped(res, 64 * 1024)).toString('utf8');
    return /<Code>([A-Za-z0-9.]{1,64})<\/Code>/.exec(text)?.[1];
  } catch {
    return undefined;
  }
}

/**
 * Reads at most `max` bytes (and one more, so an oversized object shows as such) and drops the rest,
 * within TIMEOUT_MS: each read races a timer of its own rather than trusting the request's abort
 * signal to reach a body already streaming (under vitest it did not, and a dripping body was read for ever).
 */
async function readCapped(res: Response, max: number): Promise<Buffer> {
  if (res.body === null) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let total = 0;
  const reader = res.body.getReader();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DOMException(`no answer within ${TIMEOUT_MS} ms`, 'TimeoutError')), TIMEOUT_MS);
  });
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), expired]);
      if (done) break;
      chunks.push(Buffer.from(value));
      total += value.byteLength;
      if (total > max) break;
    }
  } finally {
    clearTimeout(timer);
    // Ends the request on every way out (done, too large, timed out); its own failure is not news.
    reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks);
}

function causeCode(e: unknown): string | undefined {
  const cause = (e as { cause?: { code?: unknown } }).cause;
  return typeof cause?.code === 'string' && /^[A-Z_]{2,40}$/.test(cause.code) ? cause.code : undefined;
}
