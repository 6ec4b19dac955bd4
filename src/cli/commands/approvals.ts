import type { Command } from 'commander';
import { decideApproval, fingerprintOf, listApprovals, type ApprovalView } from '../../approvals/index.js';
import { WitnessError, canonicalize, keyFingerprint, sameIdentity, textField } from '../../core/index.js';
import { openWitness } from '../../recorder/index.js';
import { type Io, inert, inertJsonText, printJson } from '../output.js';
import { openExisting, resolveStore } from '../store-option.js';
import { APPROVER_KEY_ENV, readApproverKey } from './approver.js';

interface ListOpts {
  store?: string;
  all?: boolean;
  agent?: string;
  json?: boolean;
}

interface DecideOpts {
  store?: string;
  key?: string;
  as?: string;
  reason?: string;
  role?: string;
  meaning?: string;
  digest?: string;
  json?: boolean;
}

/**
 * `witness approvals`, `witness approve <id>`, `witness deny <id>`: the human side of a `review`
 * policy. They only read and append to the ledger, so they work from any process (or machine,
 * with PostgreSQL) that can reach the gateway's ledger. A decision is signed with the person's own
 * approver key (`witness approver init`); the key's holder is who decides, never a typed name.
 *
 * A person decides on the arguments, so they are shown whole wherever a person reads them: as
 * canonical JSON (the text the digest covers), never cut to fit a column. An agent chooses its
 * arguments and could otherwise push the one that matters (`to`) out of view behind a long one
 * (`a_memo` sorts first).
 */
export function registerApprovals(program: Command, io: Io): void {
  program
    .command('approvals')
    .description('list approval requests waiting for a person (gateway calls held by a review rule)')
    .option('--store <url>', 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)')
    .option('--all', 'also list decided, expired and used requests')
    .option('--agent <id>', 'only requests from this agent')
    .option('--json', 'machine-readable output')
    .action(async (opts: ListOpts) => {
      const ledger = await openExisting(resolveStore(opts.store), { readonly: true });
      try {
        const views = await listApprovals(ledger, { ...(opts.agent === undefined ? {} : { agent: opts.agent }), ...(opts.all === true ? {} : { status: 'pending' as const }) });
        if (opts.json) return printJson(io, views.map(summary));
        if (views.length === 0) {
          io.out(opts.all === true ? 'No approval requests.' : 'No approval requests are pending.');
          return;
        }
        io.out(views.map(block).join('\n\n'));
        io.out('\nDecide with: witness approve <request> --key <your key file> [--digest <digest>] [--reason …]   or   witness deny <request> --key <your key file> --reason …');
      } finally {
        await ledger.close();
      }
    });

  for (const decision of ['approved', 'denied'] as const) {
    const verb = decision === 'approved' ? 'approve' : 'deny';
    program
      .command(verb)
      .description(`${verb} a pending approval request, signed with your approver key (recorded as approval.decision)`)
      .argument('<request>', 'the request id, or at least 8 of its first characters (see `witness approvals`)')
      .option('--key <file>', `your approver key, made by \`witness approver init\` (default: $${APPROVER_KEY_ENV}); its holder is who decides`)
      .option('--as <identity>', 'optional: who you are; must match the holder of the key')
      .option('--reason <text>', 'why, recorded with the decision')
      .option('--role <role>', 'the role you decide in, e.g. billing-supervisor')
      .option('--meaning <text>', 'what your decision attests, e.g. "checked the refund against the invoice"')
      .option('--digest <sha256>', 'the arguments digest you reviewed: refused if the request is for other arguments')
      .option('--store <url>', 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)')
      .option('--json', 'machine-readable output')
      .action(async (request: string, opts: DecideOpts) => {
        const { signer, source } = readApproverKey(opts.key, verb);
        const approver = signer.name;
        if (opts.as !== undefined && !sameIdentity(opts.as, approver)) {
          throw new WitnessError('invalid_argument', `--as ${opts.as} does not match the holder of the key ${source}, ${approver}; leave --as out, or pass your own key.`);
        }
        if (opts.digest !== undefined && !/^[0-9a-fA-F]{64}$/.test(opts.digest))
          throw new WitnessError('invalid_argument', `--digest "${opts.digest}" is not a SHA-256 hex digest (64 hex characters).`);
        const store = resolveStore(opts.store);
        // Fail on a missing ledger rather than create an empty one.
        await (await openExisting(store, { readonly: true })).close();
        const witness = await openWitness({ store });
        try {
          const { view, decisionId, stream } = await decideApproval(witness, request, {
            decision,
            signer,
            ...(opts.role === undefined ? {} : { role: opts.role }),
            ...(opts.reason === undefined ? {} : { reason: opts.reason }),
            ...(opts.meaning === undefined ? {} : { meaning: opts.meaning }),
            ...(opts.digest === undefined ? {} : { expectDigest: opts.digest }),
          });
          const fingerprint = keyFingerprint(signer);
          if (opts.json)
            return printJson(io, { request: view.requestId, decision, approver, key: fingerprint, event: decisionId, stream, arguments: view.arguments, arguments_digest: view.argumentsDigest });
          // One line whatever the recorded values hold: the agent and tool names are the agent's own
          // text, and a newline in them would print a line of its choosing under this confirmation.
          // The arguments are the ones whose digest was signed (decideApproval checked them against it), whole.
          io.out(
            inert(
              `${decision === 'approved' ? 'Approved' : 'Denied'} request ${view.requestId} (${view.agent} → ${view.tool}) with arguments ${argumentsText(view.arguments)} (digest ${view.argumentsDigest.slice(0, 12)}…) as ${approver} (key ${fingerprint}); recorded as event ${decisionId}.`,
            ),
          );
        } finally {
          await witness.close();
        }
      });
  }
}

/**
 * The arguments as a person reads them: their canonical JSON (RFC 8785, members sorted, the text
 * `arguments_digest` covers), whole, on one line, with every character a terminal could act on
 * written as a JSON escape, so it is still exactly that JSON.
 */
function argumentsText(args: unknown): string {
  let text: string;
  try {
    text = canonicalize(args ?? null);
  } catch {
    // Not representable as canonical JSON (an older record): shown as stored, and no decision on it is accepted.
    text = JSON.stringify(args) ?? 'null';
  }
  return inert(inertJsonText(text));
}

/** One request as a person reads it before deciding: every field on its own line, nothing cut. */
function block(v: ApprovalView): string {
  const decided = v.decision?.data ?? undefined;
  const decidedKey = textField(decided?.approver_key);
  const lines: Array<[string, string]> = [
    ['agent', v.agent],
    ['tool', v.server === undefined ? v.tool : `${v.server}/${v.tool}`],
    ...(v.rule === undefined ? [] : [['rule', v.reason === undefined ? v.rule : `${v.rule}: ${v.reason}`] as [string, string]]),
    ['expires', v.expiresAt],
    ...(decided === undefined
      ? []
      : [
          ['decision', `${String(decided.decision)} by ${String(decided.approver ?? '(unnamed)')}${decidedKey === undefined ? '' : ` (key ${fingerprintOf(decidedKey)})`} at ${v.decision!.ts}`] as [
            string,
            string,
          ],
        ]),
    ['digest', v.argumentsDigest],
  ];
  const head = inert(`Request ${v.requestId} (${v.status})`);
  const body = lines.map(([k, val]) => `  ${`${k}:`.padEnd(11)}${inert(val)}`);
  // Last, and on a line of its own, however long: the agent chose them, and nothing may hide them.
  return [head, ...body, `  ${'arguments:'.padEnd(11)}${argumentsText(v.arguments)}`].join('\n');
}

function summary(v: ApprovalView) {
  return {
    request: v.requestId,
    status: v.status,
    agent: v.agent,
    server: v.server,
    tool: v.tool,
    arguments: v.arguments,
    arguments_digest: v.argumentsDigest,
    approvers: v.approvers.map(fingerprintOf),
    rule: v.rule,
    reason: v.reason,
    policy_version: v.policyVersion,
    session: v.session,
    call: v.callId,
    requested_at: v.request.ts,
    expires_at: v.expiresAt,
    ...(v.decision === undefined
      ? {}
      : {
          decision: {
            event: v.decision.id,
            decision: v.decision.data?.decision,
            approver: v.decision.data?.approver,
            key: v.decision.data?.approver_key === undefined ? undefined : fingerprintOf(String(v.decision.data.approver_key)),
            reason: v.decision.data?.reason,
            at: v.decision.ts,
          },
        }),
    // Decisions recorded for the request that do not count (unsigned, unauthorised, late): listed, never hidden.
    ...(v.decisions.length > (v.decision === undefined ? 0 : 1) ? { ignored_decisions: v.decisions.filter((d) => d !== v.decision).map((d) => d.id) } : {}),
    ...(v.consumedBy === undefined ? {} : { used_by: v.consumedBy.id }),
  };
}
