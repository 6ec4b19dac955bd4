import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openWitness } from '../../src/index.js';
import { SqliteLedger } from '../../src/store/index.js';
import { oneSentence, runBin } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * `witness review` through the built binary (run `npx tsc -p tsconfig.build.json` first): the
 * population it binds is the one an evidence bundle of the same scope and span carries.
 */

const dir = tempDir('witness-review-');
let file: string;
let session: string;

beforeAll(async () => {
  file = tempDb(dir);
  const w = await openWitness({ store: `sqlite:${file}`, name: 'review', strict: true, seal: { enabled: false } });
  try {
    const s = await w.session({ agent: { id: 'support-bot' }, purpose: 'look up an order' });
    session = s.id;
    await s.note('starting');
    await s
      .tool('crm.lookup', { order: 'A-1' }, () => {
        throw new Error('crm unavailable');
      })
      .catch(() => undefined);
    await s.record('error', { message: 'gave up on the lookup', source: 'agent' });
    await s.tool('crm.lookup', { order: 'A-2' }, () => ({ ok: true }));
    await w.flush();
  } finally {
    await w.close();
  }
}, 60_000);

const store = () => `sqlite:${file}`;
const sha256 = (p: string) => createHash('sha256').update(fs.readFileSync(p)).digest('hex');

interface ReviewJson {
  id: string;
  leaf: number;
  reviewer: string;
  disposition: string;
  population: { name: string; query: string; count: number; digest: string };
  span: { from: number; to: number };
  checkpoint: { size: number; root: string };
  sealed: boolean;
}

async function readEvent(id: string) {
  const ledger = SqliteLedger.open({ path: file, create: false, readonly: true });
  try {
    return await ledger.getEvent(id);
  } finally {
    await ledger.close();
  }
}

describe('witness review', () => {
  let review: ReviewJson;

  it('records a review event bound to the population digest, its span and the checkpoint it was taken at, and prints what it bound', async () => {
    const r = await runBin([
      'review',
      '--population',
      'errors-and-gaps',
      '--session',
      session,
      '--disposition',
      'ok',
      '--note',
      'Looked at both failed lookups; the CRM was down.',
      '--reviewer',
      'alice',
      '--store',
      store(),
      '--json',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    review = JSON.parse(r.stdout) as ReviewJson;
    expect(review).toMatchObject({ reviewer: 'alice', disposition: 'ok', population: { name: 'errors-and-gaps', count: 2 }, sealed: true });
    expect(review.checkpoint.size).toBeGreaterThanOrEqual(review.span.to);

    const e = await readEvent(review.id);
    expect(e).toMatchObject({ kind: 'review', stream: 'witness.audit-access', resource: session, action: 'review', principal: { id: 'alice', kind: 'human' } });
    expect(e!.data).toEqual({
      reviewer: 'alice',
      population_digest: review.population.digest,
      population: { name: 'errors-and-gaps', query: review.population.query, count: 2 },
      attestation: 'Looked at both failed lookups; the CRM was down.',
      disposition: 'ok',
      span: review.span,
      checkpoint: review.checkpoint,
      scope: { since: null, until: null, agents: null, sessions: [session] },
    });
    // The checkpoint is one the ledger signed, with that root.
    const ledger = SqliteLedger.open({ path: file, create: false, readonly: true });
    try {
      const cps = await ledger.checkpoints();
      expect(cps.some((c) => c.size === review.checkpoint.size && c.root.toString('hex') === review.checkpoint.root)).toBe(true);
    } finally {
      await ledger.close();
    }

    const human = await runBin([
      'review',
      '--population',
      'denials',
      '--session',
      session,
      '--disposition',
      'escalated',
      '--note',
      'No denials; escalated for the missing policy.',
      '--reviewer',
      'bob',
      '--store',
      store(),
    ]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/Recorded review \S+ \(leaf \d+\) by bob: denials escalated\./);
    expect(human.stdout).toMatch(/population {2}denials, 0 event\(s\), digest e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855/);
    expect(human.stdout).toMatch(/checkpoint {2}size \d+, root [0-9a-f]{64}/);
  }, 60_000);

  it("binds the digest of the bundle's populations/<name>.jsonl exported at the same span, and keeps the old digest once the window changes", async () => {
    const out1 = path.join(dir, 'bundle-1');
    const e1 = await runBin(['export', '--session', session, '-o', out1, '--as', 'carol', '--store', store()]);
    expect(e1.stderr.replace(/witness: Session .* has not ended.*\n/, '')).toBe('');
    expect(e1.code).toBe(0);
    expect(sha256(path.join(out1, 'populations', 'errors-and-gaps.jsonl'))).toBe(review.population.digest);
    // The review names the session, so the session's bundle carries it in its reviews population.
    expect(fs.readFileSync(path.join(out1, 'populations', 'reviews.jsonl'), 'utf8')).toContain(review.id);

    // One more error in the window: a new export's population differs, the review does not move.
    const ledger = SqliteLedger.open({ path: file, create: false });
    try {
      await ledger.append([{ stream: session, kind: 'error', agent: { id: 'support-bot' }, outcome: 'error', data: { message: 'a later failure' } }]);
      await ledger.seal();
    } finally {
      await ledger.close();
    }
    const out2 = path.join(dir, 'bundle-2');
    const e2 = await runBin(['export', '--session', session, '-o', out2, '--as', 'carol', '--store', store()]);
    expect(e2.code).toBe(0);
    expect(sha256(path.join(out2, 'populations', 'errors-and-gaps.jsonl'))).not.toBe(review.population.digest);
    expect((await readEvent(review.id))!.data).toMatchObject({ population_digest: review.population.digest, population: { count: 2 } });
  }, 120_000);

  it('refuses an unknown population, a bad disposition and an empty note with exit 2 and one sentence, recording nothing', async () => {
    const base = ['--session', session, '--reviewer', 'alice', '--store', store()];
    const cases: Array<[string[], RegExp]> = [
      [['review', '--population', 'everything', '--disposition', 'ok', '--note', 'x', ...base], /--population "everything" is not a population; use one of approvals, denials/],
      [['review', '--population', 'denials', '--disposition', 'fine', '--note', 'x', ...base], /--disposition "fine" is not a disposition; use ok .* or escalated/],
      [['review', '--population', 'denials', '--disposition', 'ok', '--note', '  ', ...base], /--note is empty/],
    ];
    const size = async () => {
      const ledger = SqliteLedger.open({ path: file, create: false, readonly: true });
      try {
        return ledger.info.size;
      } finally {
        await ledger.close();
      }
    };
    const before = await size();
    for (const [args, message] of cases) {
      const r = await runBin(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(oneSentence(r.stderr)).toMatch(message);
    }
    expect(await size()).toBe(before);
  }, 60_000);
});
