// Child process for the artifact tests' kill -9 case: opens a ledger with dist's openLedger (any
// driver the URL names) and streams an artifact into it that never ends: after <mid> MiB it prints
// MID and goes on slowly, until it is killed.
//
//   node artifact-writer.mjs <store url> <mid MiB>
import { randomBytes } from 'node:crypto';
import { openLedger } from '../../dist/store/index.js';

const [, , url, midArg = '3'] = process.argv;
const ledger = await openLedger(url, { busyTimeoutMs: 20_000 });
async function* endless() {
  const mid = Number(midArg) * (1 << 20);
  for (let sent = 0; ; sent += 256 * 1024) {
    if (sent === mid) process.stdout.write('MID\n');
    if (sent >= mid) await new Promise((r) => setTimeout(r, 20));
    yield randomBytes(256 * 1024);
  }
}
try {
  await ledger.putArtifactStream(endless(), 'video/mp4');
} catch (e) {
  process.stderr.write(`E ${e.code ?? ''} ${e.message}\n`);
  process.exitCode = 1;
}
