// Child process for the contract suite's two-writer tests: opens a ledger with dist's openLedger
// (so it works for any driver the URL names), appends batches to streams of its own and to one
// shared stream, and seals every few batches, while another of these does the same.
//
//   node contract-writer.mjs <store url> <writer name> <batches> <batch size> <seal every>
//
// With 0 batches it appends until it is killed (the kill -9 test).
// Lines: A <id> <stream> <seq> <pos> <hash> per receipt, once its batch committed | C <size> for
// every checkpoint this process wrote | DONE <events>. Errors go to stderr and exit 1.
import { openLedger } from '../../dist/store/index.js';

const [, , url, writer = 'writer', batchesArg = '20', sizeArg = '8', sealArg = '3'] = process.argv;
if (url === undefined) {
  process.stderr.write('usage: contract-writer.mjs <store url> <writer name> [batches] [batch size] [seal every]\n');
  process.exit(2);
}
const out = (line) => process.stdout.write(`${line}\n`);
const ledger = await openLedger(url, { busyTimeoutMs: 20_000 });
const agent = { id: `writer-${writer}` };
const streams = [`${writer}-own`, 'shared'];
let total = 0;
try {
  const batches = Number(batchesArg) === 0 ? Infinity : Number(batchesArg);
  for (let b = 0; b < batches; b++) {
    const batch = [];
    for (let i = 0; i < Number(sizeArg); i++) batch.push({ stream: streams[i % streams.length], agent, kind: 'note', data: { text: `${writer} ${b}.${i}` } });
    const receipts = await ledger.append(batch);
    for (const r of receipts) out(`A ${r.id} ${r.stream} ${r.seq} ${r.pos} ${r.hash}`);
    total += receipts.length;
    if (b % Number(sealArg) === 0) {
      const cp = await ledger.seal();
      if (cp !== null) out(`C ${cp.size}`);
    }
    // Let the other writer in between batches.
    await new Promise((r) => setImmediate(r));
  }
  const cp = await ledger.seal();
  if (cp !== null) out(`C ${cp.size}`);
  out(`DONE ${total}`);
} catch (e) {
  process.stderr.write(`E ${e.code ?? ''} ${e.message}\n`);
  process.exitCode = 1;
} finally {
  await ledger.close();
}
