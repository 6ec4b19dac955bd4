import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CaptureBrowser, renderSessionVideo, requireProgram, type VideoResult } from '../capture/index.js';
import { decideApproval, listApprovals } from '../approvals/index.js';
import { generateKey, isKind, isWitnessError, parseSignerKey, type NoteSigner, type StoredEvent, type VerifyReport } from '../core/index.js';
import { exportSession, makeDirectory, verifyBundle, type DirectoryUse } from '../export/index.js';
import { bundleReport as renderBundleReport } from '../report/index.js';
import { openWitness, recordVideo } from '../recorder/index.js';
import { openLedger, sqlitePath, verifyLedger } from '../store/index.js';
import { SCRIPT, demoCapture, demoPolicy, runScriptedAgent, type StepOutcome } from './agent.js';
import { startApp } from './app.js';
import { runLiveAgent, type LiveOptions } from './live-agent.js';

export { DEMO_POLICY, SCRIPT, demoCapture, demoPolicy, runScriptedAgent } from './agent.js';
export { BackOffice, startApp, type RunningApp } from './app.js';
export { LIVE_TASK, liveFromEnv, runLiveAgent, type LiveOptions } from './live-agent.js';

/** The package's root (where bin/, dist/ and scripts/ are), from this file in dist/demo or src/demo. */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'witness') return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('the witness package root was not found above the demo module');
    dir = up;
  }
}

/**
 * Makes sure Chromium, ffmpeg and espeak-ng are there. When one is missing and this runs as root on
 * a Debian-like system, it runs scripts/setup-system.sh (apt-get, Debian's packages only) once;
 * otherwise the one-sentence error names the program and the command that installs it.
 */
export function ensureSystemPrograms(log: (line: string) => void): void {
  const check = () => (['chromium', 'ffmpeg', 'ffprobe', 'espeak-ng'] as const).forEach((p) => requireProgram(p));
  try {
    return check();
  } catch (e) {
    const canInstall = process.getuid?.() === 0 && fs.existsSync('/usr/bin/apt-get') && process.env['WITNESS_NO_SETUP'] !== '1';
    if (!isWitnessError(e, 'missing_program') || !canInstall) throw e;
    log(`witness demo: ${e.message.split(';')[0]}; running scripts/setup-system.sh to install it from Debian's packages.`);
    const r = spawnSync('sh', [path.join(packageRoot(), 'scripts', 'setup-system.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0) throw e;
  }
  check();
}

export interface DemoResult {
  database: string;
  sessionId: string;
  events: Array<StoredEvent & { pos: number }>;
  outcomes: StepOutcome[];
  approvals: Array<{ request: string; tool: string; decision: string; approver: string }>;
  ledgerReport: VerifyReport;
  bundleDir: string;
  bundleReport: VerifyReport;
  publicKey: string;
  video: VideoResult;
  screenshotsDir: string;
  screenshots: string[];
  seconds: number;
  recorderErrors: string[];
}

/** Who decides what in the demo: the $650 duplicate charge is approved, the $1,200 credit denied. */
const DECISIONS: Record<string, { decision: 'approved' | 'denied'; approver: string; role: string; reason: string }> = {
  'C-1042': { decision: 'approved', approver: 'alice@acme.example', role: 'billing-supervisor', reason: 'Duplicate charge confirmed on the statement.' },
  'C-2077': { decision: 'denied', approver: 'bob@acme.example', role: 'billing-manager', reason: 'Goodwill credits over $500 need a written manager request.' },
};

/**
 * The demo's approvers' own keys, in `<dir>/approvers/<name>.key` (0600), made on the first run and
 * reused after, as `witness approver init` would make them for real people.
 */
function approverKey(dir: string, name: string): NoteSigner {
  const file = path.join(dir, `${name}.key`);
  if (fs.existsSync(file)) return parseSignerKey(fs.readFileSync(file, 'utf8').trim());
  makeDirs(dir, 0o700);
  const { signerKey, verifierKey } = generateKey(name);
  const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  try {
    fs.writeSync(fd, `${signerKey}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.writeFileSync(path.join(dir, `${name}.pub`), `${verifierKey}\n`);
  return parseSignerKey(signerKey);
}

/**
 * Makes a directory under --dir (and --dir itself), refusing in one sentence with the resolved
 * path; export's `makeDirectory`, which never loops on /proc or /sys.
 */
function makeDirs(dir: string, mode?: number): void {
  const use: DirectoryUse = { what: 'demo directory', flag: '--dir', ...(mode === undefined ? {} : { mode }) };
  makeDirectory(path.resolve(dir), use);
}

/**
 * The whole job a new user sees: the back office web app, its MCP server behind `witness proxy`
 * with a policy and captures, a scripted agent, two people deciding the held refunds, the
 * narrated video, and the evidence verified — all on this machine.
 */
export async function runDemo(dir: string, store: string | undefined, log: (line: string) => void = () => undefined, options: { live?: LiveOptions } = {}): Promise<DemoResult> {
  const started = performance.now();
  ensureSystemPrograms(log);
  // Every directory the demo writes into is made before anything starts, so a --dir that cannot be
  // used is refused in one sentence and nothing is left running.
  makeDirs(dir);
  makeDirs(path.join(dir, 'approvers'), 0o700);
  const database = store === undefined ? path.resolve(dir, 'witness.db') : sqlitePath(store);
  const root = packageRoot();
  const recorderErrors: string[] = [];
  // The approvers' recorder: a person at another terminal, in effect (the proxy is its own process).
  const witness = await openWitness({ store: `sqlite:${database}`, name: 'demo', onError: (e) => recorderErrors.push(e.message) });
  const app = await startApp().catch(async (e: unknown) => {
    await witness.close();
    throw e;
  });
  // Only title cards are rendered here (the proxy child takes the screenshots): no context pool.
  const browser = new CaptureBrowser({ pool: 0 });
  const warming = browser.warm();
  const since = new Date(Date.now() - 1000).toISOString();
  let stop = false;
  const approvals: DemoResult['approvals'] = [];
  try {
    const policyFile = path.join(dir, 'policy.yaml');
    const captureFile = path.join(dir, 'capture.yaml');
    const signers = new Map(Object.values(DECISIONS).map((d) => [d.approver, approverKey(path.join(dir, 'approvers'), d.approver)] as const));
    fs.writeFileSync(policyFile, demoPolicy([...signers.values()].map((k) => ({ id: k.name, key: k.verifierKey }))));
    fs.writeFileSync(captureFile, demoCapture(app.url));
    const approver = (async () => {
      while (!stop) {
        for (const v of await listApprovals(witness.reader, { since, agent: 'support-bot' })) {
          const customer = (v.arguments as { customer_id?: string } | undefined)?.customer_id;
          const plan = customer === undefined ? undefined : DECISIONS[customer];
          if (v.status !== 'pending' || plan === undefined) continue;
          await decideApproval(witness, v.requestId, {
            decision: plan.decision,
            signer: signers.get(plan.approver)!,
            role: plan.role,
            reason: plan.reason,
            meaning: 'reviewed the refund against the customer record',
          });
          approvals.push({ request: v.requestId, tool: v.tool, decision: plan.decision, approver: plan.approver });
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    // Not a WITNESS_ name: the proxy keeps those (the ledger's secrets) from the servers it starts.
    const env: Record<string, string> = { ...(process.env as Record<string, string>), BACKOFFICE_URL: app.url };
    delete env['WITNESS_STORE'];
    const proxy = {
      command: process.execPath,
      args: [
        path.join(root, 'bin', 'witness.js'),
        'proxy',
        '--agent',
        'support-bot',
        '--server',
        'backoffice',
        '--policy',
        policyFile,
        '--capture',
        captureFile,
        '--approval-timeout',
        '60s',
        '--store',
        `sqlite:${database}`,
        '--',
        process.execPath,
        path.join(root, 'dist', 'demo', 'mcp-server.js'),
      ],
      env,
      cwd: dir,
    };
    const live = options.live;
    const run = await (async () => {
      if (live === undefined) return runScriptedAgent(proxy);
      const llm = await witness.session({
        agent: { id: 'support-bot' },
        purpose: `The model side of the live demo (${live.provider} ${live.model})`,
        labels: { provider: live.provider, model: live.model },
      });
      try {
        return await runLiveAgent(live, proxy, llm);
      } finally {
        await llm.end();
      }
    })().finally(() => {
      stop = true;
    });
    await approver;
    if (live === undefined && run.outcomes.length !== SCRIPT.length) throw new Error(`the demo agent stopped after ${run.outcomes.length} of ${SCRIPT.length} steps: ${run.proxyLog.trim()}`);

    const ledger = witness.reader;
    const starts = (await ledger.query({ kind: 'session.start', agent: 'support-bot', since, limit: 100 })).events.filter((e) => e.recorder?.kind === 'gateway');
    const sessionId = starts.sort((a, b) => b.pos - a.pos)[0]?.stream;
    if (sessionId === undefined) throw new Error(`the proxy recorded no session: ${run.proxyLog.trim()}`);

    await warming;
    const video = await renderSessionVideo(ledger, sessionId, path.join(dir, 'witness-demo.mp4'), { browser });
    await recordVideo(witness, sessionId, video, 'witness-demo');
    await witness.flush();
    await witness.sealNow();

    const events = await ledger.readStream(sessionId);
    const screenshotsDir = path.join(dir, 'screenshots');
    fs.rmSync(screenshotsDir, { recursive: true, force: true });
    makeDirs(screenshotsDir);
    const screenshots: string[] = [];
    const calls = new Map(events.filter((e) => isKind(e, 'tool.call')).map((e, i) => [e.id, { n: i + 1, tool: String(e.data?.tool ?? 'tool') }]));
    for (const e of events.filter((x) => isKind(x, 'capture'))) {
      const png = e.artifacts?.find((a) => a.mime === 'image/png');
      const call = e.parent === undefined ? undefined : calls.get(e.parent);
      if (png === undefined || call === undefined) continue;
      const bytes = await ledger.readArtifact(png.sha256);
      if (bytes === undefined) continue;
      const file = path.join(screenshotsDir, `step-${String(call.n).padStart(2, '0')}-${call.tool}-${String(e.data?.role)}.png`);
      fs.writeFileSync(file, bytes);
      screenshots.push(file);
    }

    // Verifying and exporting need the whole ledger, which the recorder does not hand out: open it
    // as any auditor or exporter would, beside the recorder (SQLite's WAL lets both work at once).
    const auditor = await openLedger(`sqlite:${database}`, { create: false });
    let ledgerReport: VerifyReport;
    let keys: Awaited<ReturnType<typeof auditor.publicKeys>>;
    const bundleDir = path.resolve(dir, `evidence-${sessionId}`);
    try {
      ledgerReport = await verifyLedger(auditor);
      fs.rmSync(bundleDir, { recursive: true, force: true });
      await exportSession(auditor, sessionId, bundleDir, { actor: 'witness-demo', renderReport: renderBundleReport });
      keys = await auditor.publicKeys();
    } finally {
      await auditor.close();
    }
    const bundleReport = verifyBundle(bundleDir, { trustedKeys: keys.map((k) => k.vkey) });
    return {
      database,
      sessionId,
      events,
      outcomes: run.outcomes,
      approvals,
      ledgerReport,
      bundleDir,
      bundleReport,
      publicKey: keys[0]?.vkey ?? '',
      video,
      screenshotsDir,
      screenshots,
      seconds: (performance.now() - started) / 1000,
      recorderErrors,
    };
  } finally {
    stop = true;
    await browser.close();
    await witness.close();
    await app.close();
  }
}
