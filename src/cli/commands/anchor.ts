import type { Command } from 'commander';
import { anchorLatest, defaultAnchorsFile, parseCosignerSpec, parseCosignerVerifierKey } from '../../anchor/index.js';
import { WitnessError } from '../../core/index.js';
import { EXIT_FAILED, EXIT_OK } from '../exit.js';
import { type Io, printJson } from '../output.js';
import { openExisting, resolveStore } from '../store-option.js';

interface AnchorOpts {
  store?: string;
  anchors?: string;
  cosigner?: string[];
  copyTo?: string[];
  s3Endpoint?: string;
  s3PathStyle?: boolean;
  tsa?: string[];
  json?: boolean;
}

/** Cosigners from --cosigner, else $WITNESS_COSIGNERS (space-separated URL=VKEY). */
function cosignerSpecs(flag: string[] | undefined): string[] {
  if (flag !== undefined && flag.length > 0) return flag;
  return (process.env['WITNESS_COSIGNERS'] ?? '').split(/\s+/).filter((s) => s !== '');
}

/**
 * `witness anchor`: run after `witness seal` (by the same cron or service), not inside the sealer,
 * so an unreachable witness never delays or fails sealing; a missing anchor shows up in
 * `witness verify --require-cosigner` instead.
 */
export function registerAnchor(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('anchor')
    .description('take the newest checkpoint outside Witness: cosignatures from witnesses (C2SP tlog-witness), RFC 3161 time-stamps, copies in directories and S3-compatible buckets')
    .option('--store <url>', 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)')
    .option('--anchors <file>', 'where cosignatures are kept (default: <db>.anchors.jsonl beside a SQLite ledger; required for PostgreSQL)')
    .option('--cosigner <url=vkey...>', 'a witness: its URL and cosigner verifier key (default: $WITNESS_COSIGNERS, space-separated)')
    .option(
      '--copy-to <dir-or-s3-url...>',
      'also write <size>.checkpoint (with its cosignatures) and <size>.tsr to a directory or s3://BUCKET/PREFIX; never overwrites a different tree (default: $WITNESS_COPY_TO, space-separated)',
    )
    .option(
      '--s3-endpoint <url>',
      'S3-compatible server for s3:// copies (default: $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL, else AWS in $AWS_REGION); credentials from $AWS_ACCESS_KEY_ID, $AWS_SECRET_ACCESS_KEY, $AWS_SESSION_TOKEN',
    )
    .option('--s3-path-style', 'address the bucket in the path (http://host/BUCKET/KEY), as MinIO and most self-hosted servers need')
    .option('--tsa <url...>', 'an RFC 3161 time-stamp authority: time-stamp the checkpoint note (SHA-256) there (default: $WITNESS_TSA, space-separated)')
    .option('--json', 'machine-readable output')
    .action(async (opts: AnchorOpts) => {
      const store = resolveStore(opts.store);
      const anchorsFile = defaultAnchorsFile(store, opts.anchors);
      const cosigners = cosignerSpecs(opts.cosigner).map((s) => {
        try {
          return parseCosignerSpec(s, parseCosignerVerifierKey);
        } catch (e) {
          // A key typed on the command line that is not a cosigner key is a mistyped command (exit 2).
          if (e instanceof WitnessError && e.code === 'invalid_key') throw new WitnessError('invalid_argument', `--cosigner: ${e.message}`, { cause: e });
          throw e;
        }
      });
      const ledger = await openExisting(store, { readonly: true });
      try {
        const tsa = opts.tsa ?? (process.env['WITNESS_TSA'] ?? '').split(/\s+/).filter((u) => u !== '');
        const copyTo = opts.copyTo ?? (process.env['WITNESS_COPY_TO'] ?? '').split(/\s+/).filter((d) => d !== '');
        const s3 = { env: process.env, ...(opts.s3Endpoint === undefined ? {} : { endpoint: opts.s3Endpoint }), ...(opts.s3PathStyle === true ? { pathStyle: true } : {}) };
        const out = await anchorLatest(ledger, { anchorsFile, cosigners, tsa, copyTo, s3 });
        setExit(out.refused.length === 0 && out.tsaFailed.length === 0 && out.copyFailed.length === 0 ? EXIT_OK : EXIT_FAILED);
        if (opts.json) return printJson(io, { ...out, anchors: anchorsFile });
        for (const c of out.cosigned) io.out(`✔ Cosigned checkpoint ${out.size} by ${c.cosigner} at ${new Date(c.timestamp * 1000).toISOString()}; kept in ${anchorsFile}.`);
        for (const r of out.refused) io.out(`✘ ${r.cosigner}: ${r.message}`);
        for (const t of out.timestamps) io.out(`✔ Time-stamped checkpoint ${out.size} by ${t.tsa} at ${t.time}; kept in ${anchorsFile}.`);
        for (const t of out.tsaFailed) io.out(`✘ ${t.tsa}: ${t.message}`);
        for (const c of out.copies) io.out(c.written ? `✔ Copied checkpoint ${out.size} to ${c.file}.` : `  ${c.file} already holds checkpoint ${out.size}; unchanged.`);
        // On stderr, as an error would be: a copy that failed is what the operator must act on.
        for (const f of out.copyFailed) io.err(`✘ ${f.to}: ${f.message}`);
      } finally {
        await ledger.close();
      }
    });
}
