import fs from 'node:fs';
import path from 'node:path';

/**
 * Content-addressed files: `<dir>/<first two hex>/<sha256>`. Written to a temporary name and
 * renamed, so a reader never sees half an artifact and a crash leaves no partial file behind.
 */
export function writeArtifactFile(dir: string, sha256: string, bytes: Uint8Array): string {
  const sub = path.join(dir, sha256.slice(0, 2));
  const target = path.join(sub, sha256);
  if (fs.existsSync(target)) return target;
  fs.mkdirSync(sub, { recursive: true });
  const tmp = `${target}.${process.pid}.${Date.now()}.tmp`;
  fs.writeFileSync(tmp, bytes);
  fs.renameSync(tmp, target);
  return target;
}
