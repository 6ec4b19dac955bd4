import fs from 'node:fs';
import type { Command } from 'commander';
import {
  checkCosignatures,
  checkTimestamps,
  cosignerLabel,
  defaultAnchorsFile,
  parseCosignatureLine,
  parseCosignerVerifierKey,
  readAnchors,
  verifyCosignature,
  verifyTimeStamp,
  type AnchorVerdict,
  type TimestampVerdict,
} from '../../anchor/index.js';
import { WitnessError, type VerifyReport } from '../../core/index.js';
import { bundleSession, checkBundleAnchors, looksLikeZip, verifyBundle, verifyZipBundle, type BundleAnchorVerdict, type BundleVerdict, type BundleVerifyReport } from '../../export/index.js';
import { readAgainstFile, verifyLedger } from '../../store/index.js';
import { EXIT_FAILED, EXIT_OK } from '../exit.js';
import { type Io, inert, printJson, progress } from '../output.js';
import { SEAL_RECORD_HELP, openExisting, readTrustedKeys, resolveStore } from '../store-option.js';

interface VerifyOpts {
  store?: string;
  session?: string;
  trustedKey?: string[];
  against?: string;
  sealRecord?: string;
  threads?: string;
  requirePayloads?: boolean;
  requireCosigner?: string[];
  tsaCert?: string;
  anchors?: string;
  json?: boolean;
}

export function registerVerify(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('verify')
    .description('recompute every digest, hash, chain link, Merkle root and signature; exit 1 at the first bad position')
    .argument('[bundle]', 'an evidence bundle from `witness export` (its directory or a .zip; verified offline, no database)')
    .option('--store <url>', 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)')
    .option('--session <id>', "report only this session's chain (the whole tree is still rebuilt)")
    .option('--trusted-key <key...>', 'pin the public key(s) you trust: a verifier key string or a file of them')
    .option('--against <file>', 'a signed checkpoint saved earlier: prove the ledger still extends it')
    .option('--seal-record <file>', SEAL_RECORD_HELP)
    .option('--threads <n>', 'worker threads for a ledger (default: one per core from 65,536 events; 1 = this thread only)')
    .option('--require-payloads', 'a bundle: fail on any event that carries no payload (out of scope or withheld), not only on stripped ones')
    .option('--require-cosigner <vkey...>', 'fail unless the newest checkpoint carries a valid cosignature (C2SP cosignature/v1) by this witness key')
    .option('--tsa-cert <file>', 'check the RFC 3161 time-stamps that witness anchor kept against this TSA or CA certificate (PEM); fail unless the newest checkpoint has a valid one')
    .option('--anchors <file>', 'the anchors file `witness anchor` keeps (default: <db>.anchors.jsonl beside a SQLite ledger)')
    .option('--json', 'machine-readable report')
    .action(async (bundle: string | undefined, opts: VerifyOpts) => {
      const trustedKeys = readTrustedKeys(opts.trustedKey);
      const requiredCosigners = (opts.requireCosigner ?? []).map(cosignerKeyArgument);
      let anchors: AnchorVerdict | undefined;
      let timestamps: TimestampVerdict | undefined;
      let unchecked: string | undefined;
      let bundleAnchors: BundleAnchorVerdict | undefined;
      if (opts.tsaCert !== undefined && !fs.existsSync(opts.tsaCert)) {
        throw new WitnessError('invalid_argument', `The TSA certificate ${opts.tsaCert} does not exist; pass the PEM certificate of the time-stamp authority (or its CA) you trust.`);
      }
      const threads = opts.threads === undefined ? undefined : threadCount(opts.threads);
      let report: BundleVerifyReport;
      let subject: string;
      if (bundle !== undefined) {
        if (opts.against !== undefined) {
          throw new WitnessError('invalid_argument', '--against checks a ledger, not a bundle; a bundle is checked against its own signed checkpoint and --trusted-key.');
        }
        if (opts.sealRecord !== undefined) {
          throw new WitnessError('invalid_argument', "--seal-record checks a ledger against its sealer's record, not a bundle; drop it, or use --store to verify the ledger.");
        }
        checkBundleArgument(bundle);
        if (opts.anchors !== undefined) {
          throw new WitnessError('invalid_argument', '--anchors names the anchors file of a ledger; a bundle carries its own (anchors.jsonl), so drop --anchors.');
        }
        const bundleOptions = { ...(trustedKeys === undefined ? {} : { trustedKeys }), ...(opts.requirePayloads === true ? { requirePayloads: true } : {}) };
        report = looksLikeZip(bundle) ? await verifyZipBundle(bundle, bundleOptions) : verifyBundle(bundle, bundleOptions);
        subject = `Bundle ${bundle}`;
        // The bundle's anchors.jsonl (docs/FORMAT.md 7.14), judged by src/anchor's cosignature/v1 and `openssl ts -verify`.
        const tsaCert = opts.tsaCert;
        bundleAnchors = await checkBundleAnchors(
          bundle,
          requiredCosigners.map((v) => ({
            label: cosignerLabel(v),
            verify: (body: string, line: string) => {
              const c = parseCosignatureLine(line);
              return c !== undefined && verifyCosignature(v, body, c) ? c.timestamp : undefined;
            },
          })),
          tsaCert === undefined ? undefined : (response, digest) => verifyTimeStamp(response, digest, tsaCert),
        );
        if (opts.session !== undefined) {
          const inBundle = await bundleSession(bundle);
          if (inBundle !== opts.session) {
            throw new WitnessError('invalid_argument', `The bundle holds session ${inBundle ?? '(unknown)'}, not ${opts.session}; drop --session or pick the right bundle.`);
          }
        }
      } else {
        if (opts.requirePayloads === true) {
          throw new WitnessError('invalid_argument', '--require-payloads checks an evidence bundle, not a ledger; name the bundle to verify, or drop it.');
        }
        if (opts.sealRecord !== undefined) checkSealRecordArgument(opts.sealRecord);
        const store = resolveStore(opts.store);
        const ledger = await openExisting(store, { readonly: true, ...(opts.sealRecord === undefined ? {} : { sealRecord: opts.sealRecord }) });
        try {
          if (opts.session !== undefined && (await ledger.query({ stream: opts.session, limit: 1 })).events.length === 0) {
            throw new WitnessError('not_found', `No session ${opts.session} in ${ledger.info.location}; check the id with \`witness query --kind session.start\`.`);
          }
          const bar = progress(io, 'verifying');
          report = await verifyLedger(ledger, {
            ...(trustedKeys === undefined ? {} : { trustedKeys }),
            ...(opts.against === undefined ? {} : { against: readAgainstFile(opts.against) }),
            onProgress: bar.update,
            ...(threads === undefined ? {} : { threads }),
            // The threads open the store as given, password included (info.location has none).
            url: store,
          });
          bar.done();
          subject = `Ledger ${ledger.info.location}`;
          if (requiredCosigners.length > 0 || opts.tsaCert !== undefined) {
            const { records, unreadable } = readAnchors(defaultAnchorsFile(store, opts.anchors));
            const checkpoints = await ledger.checkpoints();
            if (requiredCosigners.length > 0) anchors = checkCosignatures(checkpoints, records, unreadable, requiredCosigners);
            if (opts.tsaCert !== undefined) timestamps = await checkTimestamps(checkpoints, records, opts.tsaCert);
          } else {
            unchecked = uncheckedAnchors(store, opts.anchors);
          }
        } finally {
          await ledger.close();
        }
        if (opts.session !== undefined) report = onlySession(report, opts.session);
      }
      const ok = report.ok && (anchors?.ok ?? true) && (timestamps?.ok ?? true) && (bundleAnchors?.ok ?? true);
      setExit(ok ? EXIT_OK : EXIT_FAILED);
      if (opts.json)
        return printJson(
          io,
          anchors === undefined && timestamps === undefined && bundleAnchors === undefined
            ? report
            : { ...report, ok, ...(anchors === undefined ? {} : { anchors }), ...(timestamps === undefined ? {} : { timestamps }), ...(bundleAnchors === undefined ? {} : { anchors: bundleAnchors }) },
        );
      printReport(io, subject, report);
      if (anchors !== undefined) printAnchors(io, anchors);
      if (timestamps !== undefined) printTimestamps(io, timestamps);
      if (unchecked !== undefined) io.out(inert(`  anchor: ${unchecked}`));
      if (bundleAnchors !== undefined) printBundleAnchors(io, bundleAnchors, requiredCosigners.length > 0, opts.tsaCert !== undefined);
    });
}

/** A key typed on the command line that is not a cosigner key is a mistyped command (exit 2). */
function cosignerKeyArgument(vkey: string): ReturnType<typeof parseCosignerVerifierKey> {
  try {
    return parseCosignerVerifierKey(vkey);
  } catch (e) {
    throw new WitnessError('invalid_argument', `--require-cosigner: ${(e as Error).message}`, { cause: e });
  }
}

/** The anchors checked, each on its own line: which cosigners vouched for which checkpoint, and what is missing. */
function printAnchors(terminal: Io, a: AnchorVerdict): void {
  const io = { out: (line: string) => terminal.out(inert(line)) };
  const head = a.head === null ? 'no checkpoint' : `checkpoint ${a.head.size}`;
  io.out(a.ok ? `  anchor: ✔ every required cosigner vouched for ${head}` : `  anchor: ✘ FAILED: ${a.failures.length} problem(s) with the required cosignatures of ${head}`);
  for (const c of a.checked) io.out(`  anchor: cosignature by ${c.cosigner} on checkpoint ${c.size} at ${new Date(c.timestamp * 1000).toISOString()} verified`);
  for (const f of a.failures) io.out(`  anchor: ${f.code}: ${f.reason}`);
  if (a.unjudged > 0) io.out(`  anchor: ${a.unjudged} cosignature(s) by witnesses you did not name were not checked`);
}

/** A bundle's anchors.jsonl: the cosignatures and time-stamps checked, the failures, and what was not judged. */
function printBundleAnchors(terminal: Io, a: BundleAnchorVerdict, cosigners: boolean, tsa: boolean): void {
  const io = { out: (line: string) => terminal.out(inert(line)) };
  if (cosigners || tsa)
    io.out(a.ok ? `  anchor: ✔ anchors.jsonl vouches for leaves 0–${a.covers - 1} as required` : `  anchor: ✘ FAILED: ${a.failures.length} problem(s) with the anchors the bundle must carry`);
  for (const c of a.checked) io.out(`  anchor: cosignature by ${c.cosigner} on checkpoint ${c.size} at ${new Date(c.timestamp * 1000).toISOString()} verified`);
  for (const t of a.timestamps) io.out(`  anchor: time-stamp by ${t.tsa} on checkpoint ${t.size}: ${t.time} (openssl ts -verify OK)`);
  for (const f of a.failures) io.out(`  anchor: ${f.code}: ${f.reason}`);
  if (a.unjudged > 0) io.out(`  anchor: ${a.unjudged} cosignature(s) in anchors.jsonl by witnesses you did not name were not checked; name their keys with --require-cosigner`);
}

function printTimestamps(terminal: Io, t: TimestampVerdict): void {
  const io = { out: (line: string) => terminal.out(inert(line)) };
  const head = t.head === null ? 'no checkpoint' : `checkpoint ${t.head.size}`;
  io.out(t.ok ? `  anchor: ✔ ${head} carries a valid RFC 3161 time-stamp` : `  anchor: ✘ FAILED: ${t.failures.length} problem(s) with the RFC 3161 time-stamps of ${head}`);
  for (const c of t.checked) io.out(`  anchor: time-stamp by ${c.tsa} on checkpoint ${c.size}: ${c.time} (openssl ts -verify OK)`);
  for (const f of t.failures) io.out(`  anchor: ${f.code}: ${f.reason}`);
}

/**
 * Which anchors this run did not check, so the verdict never implies they were: anchors recorded
 * beside the ledger that the auditor named no key or certificate for. Undefined when there are none.
 */
function uncheckedAnchors(store: string, flag: string | undefined): string | undefined {
  let file: string;
  try {
    file = defaultAnchorsFile(store, flag);
  } catch {
    return undefined; // PostgreSQL without --anchors: nothing beside it to mention
  }
  const { records } = readAnchors(file);
  if (records.length === 0) return undefined;
  const cos = records.filter((r) => r.type === 'cosignature').length;
  return `${cos} cosignature(s) and ${records.length - cos} time-stamp(s) in ${file} were not checked; name the witness keys with --require-cosigner and the TSA certificate with --tsa-cert`;
}

function threadCount(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1 || n > 256) {
    throw new WitnessError('invalid_argument', `--threads takes a whole number from 1 to 256, not ${JSON.stringify(text)}.`);
  }
  return n;
}

/** Keeps the session's own failures and the tree-level ones (which concern every session). */
function onlySession(report: VerifyReport, session: string): VerifyReport {
  const failures = report.failures.filter((f) => f.stream === undefined || f.stream === session);
  const r: VerifyReport = { ...report, failures, ok: failures.length === 0 && !report.unverifiable };
  delete r.first;
  if (failures[0] !== undefined) r.first = failures[0];
  return r;
}

export function printReport(terminal: Io, subject: string, r: VerifyReport & { bundle?: BundleVerdict }): void {
  // One line each: stream ids, reasons, key names and warnings can hold recorded (agent-controlled)
  // text, and a newline in it must not start a line of its own ("✔ … is intact").
  const io = { out: (line: string) => terminal.out(inert(line)) };
  const n = (x: number) => x.toLocaleString('en-US');
  if (r.first !== undefined) {
    const f = r.first;
    const at = [
      f.stream === undefined ? '' : `session ${f.stream}`,
      f.seq === undefined ? '' : `seq ${f.seq}`,
      f.leaf === undefined ? '' : `leaf ${f.leaf}`,
      f.checkpoint === undefined ? '' : `checkpoint ${f.checkpoint}`,
    ]
      .filter((s) => s !== '')
      .join(', ');
    io.out(`✘ ${subject} FAILED verification${at === '' ? '' : ` at ${at}`}: ${f.code}: ${f.reason}`);
    if (r.failures.length > 1) io.out(`  (${r.failures.length - 1} more failure(s); --json lists them all)`);
  } else if (r.unverifiable) {
    io.out(`? ${subject} is unverifiable by this version of Witness (written by a newer format); upgrade Witness.`);
  } else {
    // Without a pinned key the bundle vouches for itself: the headline says so, not plain "intact".
    const selfSigned = r.trust.keys.length > 0 && r.trust.keys.every((k) => k.source === 'bundle');
    const intact = selfSigned ? 'is intact, but signed only by keys carried inside the bundle — pin the key from your own record (--trusted-key)' : 'is intact';
    io.out(`✔ ${subject} ${intact}: ${n(r.events)} events in ${n(r.streams)} session(s), verified against ${n(r.checkpoints)} signed checkpoint(s) (tree size ${n(r.sealedSize)}).`);
  }
  const purged = r.purged?.payloads ?? 0;
  if (r.payloadsAbsent - purged > 0 && r.bundle === undefined) io.out(`  note:  ${n(r.payloadsAbsent - purged)} event(s) carry no payload; their content was not checked.`);
  if (r.purged !== undefined) {
    // Purged under a recorded policy is not a failure: say how many, and under which purge records.
    const byPolicy = new Map<string, { count: number; leaves: number[] }>();
    for (const p of r.purged.records) {
      const e = byPolicy.get(p.policy) ?? { count: 0, leaves: [] };
      e.count += p.count;
      e.leaves.push(p.leaf);
      byPolicy.set(p.policy, e);
    }
    io.out(`  purge: ${n(purged)} payload(s) purged under ${n(r.purged.records.length)} recorded retention.purge event(s); headers and digests verified`);
    for (const [policy, e] of [...byPolicy].slice(0, 10))
      io.out(`  purge: ${n(e.count)} under policy ${policy} (retention.purge at leaf ${e.leaves.slice(0, 3).join(', ')}${e.leaves.length > 3 ? ', …' : ''})`);
    if (byPolicy.size > 10) io.out(`  purge: and ${byPolicy.size - 10} more polic(ies); --json lists them all`);
  }
  if (r.bundle !== undefined) printBundle(io, r.bundle, n);
  io.out(`  trust: ${r.trust.statement}`);
  for (const k of r.trust.keys) io.out(`  key:   ${k.name}+${k.keyHash} (${k.source})`);
  for (const w of r.warnings.slice(0, 5)) io.out(`  note:  ${w}`);
}

const NO_PAYLOAD_WORDS: Record<BundleVerdict['withoutPayload'][number]['reason'], string> = {
  out_of_scope: 'out of scope (header only)',
  withheld: 'withheld by export mode',
  missing: 'stripped from a full export',
};

/** What a format-2 bundle's verdict covers: span, scope, mode, populations, and every event without payload by reason. */
function printBundle(io: { out: (line: string) => void }, b: BundleVerdict, n: (x: number) => string): void {
  const leaves = (from: number, to: number) => (to - from === 1 ? String(from) : `${from}–${to - 1}`);
  io.out(`  span:  leaves ${leaves(b.span.from, b.span.to)} (${n(b.spanEvents)} events), ${n(b.inScope)} in scope; mode ${b.mode}; export event at leaf ${b.exportEvent.leaf}`);
  const s = b.scope;
  const scope = [
    s.since === null ? '' : `since ${s.since}`,
    s.until === null ? '' : `until ${s.until}`,
    s.agents === null ? '' : `agents ${s.agents.join(', ')}`,
    s.sessions === null ? '' : `sessions ${s.sessions.join(', ')}`,
    s.regimes.length === 0 ? '' : `regimes ${s.regimes.join(', ')}`,
  ].filter((x) => x !== '');
  io.out(`  scope: ${scope.length === 0 ? 'everything in the span' : scope.join('; ')}`);
  io.out(`  populations: ${b.populations.map((p) => `${p.name} ${n(p.count)}`).join(', ')}`);
  const byReason = new Map<string, string[]>();
  const counts = new Map<string, number>();
  for (const r of b.withoutPayload) {
    byReason.set(r.reason, [...(byReason.get(r.reason) ?? []), leaves(r.from, r.to)]);
    counts.set(r.reason, (counts.get(r.reason) ?? 0) + r.to - r.from);
  }
  for (const [reason, list] of byReason) {
    const shown = list.length > 12 ? `${list.slice(0, 12).join(', ')}, … (${list.length - 12} more runs; --json lists them all)` : list.join(', ');
    io.out(`  no payload, ${NO_PAYLOAD_WORDS[reason as keyof typeof NO_PAYLOAD_WORDS]}: ${n(counts.get(reason)!)} event(s), leaves ${shown}`);
  }
}

/**
 * A bundle argument that names nothing, or a file, is a mistyped command (exit 2), not evidence
 * that failed verification (exit 1). A directory that is not a bundle is left to the verifier,
 * which reports what is missing from it.
 */
function checkBundleArgument(bundle: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(bundle);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const what = code === 'ENOENT' || code === 'ENOTDIR' ? 'does not exist' : `cannot be read (${code ?? 'error'})`;
    throw new WitnessError('invalid_argument', `${bundle} ${what}; pass the evidence bundle directory written by \`witness export -o\`, or --store to verify a ledger.`, { cause: e });
  }
  if (!st.isDirectory() && !looksLikeZip(bundle)) {
    throw new WitnessError('invalid_argument', `${bundle} is a file, not an evidence bundle directory or zip; to verify a ledger file, use --store sqlite:${bundle}.`);
  }
}

/** A record named on the command line must be there: a typo must not pass as "no record". */
function checkSealRecordArgument(file: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const what = code === 'ENOENT' || code === 'ENOTDIR' ? 'does not exist' : `cannot be read (${code ?? 'error'})`;
    throw new WitnessError('invalid_argument', `The sealer's record ${file} ${what}; pass the file the sealer writes (\`--seal-record\` of \`witness seal\`, or $WITNESS_SEAL_RECORD).`, { cause: e });
  }
  if (!st.isFile()) throw new WitnessError('invalid_argument', `The sealer's record ${file} is not a file; pass the file the sealer writes.`);
}
