/**
 * The directory copy's twin in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2 …): the same
 * `<size>.checkpoint` and `<size>.tsr` objects under the destination's prefix, the same rules —
 * a different tree of that size is never overwritten, missing cosignature lines are added and
 * none removed, each token gets a new name.
 *
 * Every write first reads what is there and plans from it, then writes conditionally: a new
 * object with `If-None-Match: *`, an extended one with `If-Match: <the ETag read>`. A server
 * with conditional writes (AWS S3 since 2024, MinIO, R2) answers 412 when another writer got
 * there first, and the copy reads again and re-plans, so a race cannot overwrite a tree. A
 * server that answers 501 for the header gets the unconditional write the read-compare allowed;
 * one that ignores the header (s3rver) leaves only the window between read and write.
 */
import { WitnessError } from '../core/index.js';
import { forkMessage, planCopy } from './copy-plan.js';
import type { CopyResult } from './copy.js';
import { S3Client, type PutCondition } from './s3-client.js';
import { requireCredentials, type S3Location, type S3Settings } from './s3-settings.js';

const ATTEMPTS = 5;

export async function copyCheckpointToS3(
  location: S3Location,
  settings: S3Settings,
  size: number,
  note: string,
  cosignatureLines: readonly string[],
  timeStamps: readonly Buffer[] = [],
): Promise<CopyResult> {
  const client = new S3Client(settings, requireCredentials(settings, location));
  const name = `${size}.checkpoint`;
  const file = `${location.label}${name}`;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const existing = await client.get(location, name);
    const text = existing?.bytes.toString('utf8');
    const plan = planCopy(text, note, cosignatureLines);
    if (plan.kind === 'fork') throw new WitnessError('conflict', forkMessage(file, size, text ?? '', note));
    if (plan.kind !== 'unchanged') {
      const condition: PutCondition = plan.kind === 'create' ? { absent: true } : existing?.etag === undefined ? {} : { etag: existing.etag };
      if ((await putWithFallback(client, location, name, Buffer.from(plan.content, 'utf8'), 'text/plain; charset=utf-8', condition)) === 'precondition') continue;
    }
    await writeTokens(client, location, size, timeStamps);
    return { file, written: plan.kind !== 'unchanged' };
  }
  throw new WitnessError('store_unavailable', `${file} changed under every one of ${ATTEMPTS} attempts to write it; another writer is busy there — run witness anchor again.`);
}

/** RFC 3161 responses as <size>.tsr, then <size>.2.tsr …; each token is new, none replaced. */
async function writeTokens(client: S3Client, location: S3Location, size: number, timeStamps: readonly Buffer[]): Promise<void> {
  for (const der of timeStamps) {
    for (let n = 1; ; n++) {
      if (n > 1000) throw new WitnessError('store_unavailable', `${location.label} already holds 1000 time-stamp tokens for checkpoint ${size}; nothing more was written.`);
      const name = n === 1 ? `${size}.tsr` : `${size}.${n}.tsr`;
      if ((await client.get(location, name)) !== undefined) continue;
      if ((await putWithFallback(client, location, name, der, 'application/timestamp-reply', { absent: true })) === 'precondition') continue;
      break;
    }
  }
}

async function putWithFallback(client: S3Client, location: S3Location, name: string, body: Buffer, type: string, condition: PutCondition): Promise<'written' | 'precondition'> {
  const r = await client.put(location, name, body, type, condition);
  // The server does not implement conditional writes: the read-compare just done is all the protection there is.
  if (r === 'unsupported') return (await client.put(location, name, body, type)) === 'written' ? 'written' : 'precondition';
  return r;
}
