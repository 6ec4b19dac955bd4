/**
 * The audit duties Witness must meet, each with an id that the tests proving it cite in their
 * names (`[R-…]`). test/requirements.test.ts fails when an id is cited by no test, so a duty
 * cannot silently lose its proof.
 */
export const REQUIREMENTS = {
  'R-WHO': 'Every event names the acting agent; an event without an agent identity is refused (AU-3).',
  'R-WHAT-WHEN-RESULT': 'Events are queryable by agent, session, kind, resource, action, outcome and time window (AU-3, Art. 12).',
  'R-REASONING': 'An LLM call records model, input, output, requested tool calls, tokens, latency and the system-prompt digest (Art. 12).',
  'R-CODING-AGENT-HOOKS':
    "A coding agent's hook records its prompts, tool calls and results under the agent the installed command names, and enforces the gateway's policy: deny answers the agent's block with the reason, review waits for `witness approve` within the hook's limit.",
  'R-OTLP-INGEST':
    "OpenTelemetry GenAI spans sent to `witness serve` become Witness events under the ingest key's agent (span attributes kept as claims), unknown spans are kept, a span sent twice is stored once, and malformed requests write nothing.",
  'R-OTLP-EXPORT': 'Witness events reach an OpenTelemetry trace backend as spans carrying the ledger position and event hash, which check back against a signed checkpoint with an inclusion proof.',
  'R-LLM-WRAPPERS':
    'A wrapped Anthropic or OpenAI client records every call as llm.call (models, input, hashes, output, tool calls, usage, latency, stop reason, request id), streams once complete or marked partial without delaying the first token, and rethrows provider errors unchanged.',
  'R-TOOL-LINK': 'A tool call is recorded before it runs and its result or error after, linked by parent.',
  'R-SESSION-END': 'session.end records the reason, the final output and the stream count and last hash, so a cut tail shows.',
  'R-DURABLE': 'An acknowledged event survives kill -9 of the recording process.',
  'R-CONCURRENT': 'Two processes appending to one ledger lose nothing and the chain verifies.',
  'R-NO-THROW': 'The recorder never throws its own faults into the agent; it reports them and records the gap.',
  'R-STORE-FAULT': 'A store error Witness has no case for (not a lock, a full or failing disk) is a bug reported to onError at once, naming the error, never retried as an outage.',
  'R-REDACT': 'Secrets are redacted before anything is hashed or written.',
  'R-PAYLOAD-LIMIT': 'Oversized payloads are refused or stored as artifacts, never truncated.',
  'R-APPEND-ONLY': 'The database refuses UPDATE, DELETE and REPLACE of events and checkpoints.',
  'R-DRIVER-CONTRACT':
    'Every ledger driver passes one contract suite on its real database: append and receipts, stream chaining, session end lockout, refusal of edits, two writers (handles and processes), sealing and proofs, query filters and paging, artifacts, read-only handles, and every tamper class made through a test-only edit hook the driver provides.',
  'R-TAMPER-PAYLOAD': 'An edited payload is detected at its position.',
  'R-TAMPER-HEADER': 'An edited header field is detected at its position.',
  'R-TAMPER-DELETE': 'A deleted event is detected at its position.',
  'R-TAMPER-INSERT': 'An inserted event is detected.',
  'R-TAMPER-REORDER': 'Reordered events are detected.',
  'R-TAMPER-TRUNCATE': "A cut-off tail is detected, in the ledger and in a single session's export.",
  'R-TAMPER-MOVE': 'An event moved to another stream or ledger is detected.',
  'R-TAMPER-ARTIFACT': 'A changed artifact byte is detected, naming the artifact.',
  'R-TAMPER-SIGNATURE': 'A forged checkpoint signature is detected.',
  'R-TAMPER-REWRITE': 'A consistently rewritten history fails consistency with earlier checkpoints.',
  'R-TAMPER-INDEX': 'A query-index row forged, altered, added or removed (so that a query would hide or misattribute an event that itself verifies) is reported by verify at its position.',
  'R-AGAINST': 'An auditor can prove the ledger still extends a checkpoint they saved.',
  'R-SEAL-ROLLBACK':
    'The sealer signs only a tree that provably extends the last checkpoint its key signed, recorded outside the database; otherwise it refuses in one sentence and writes nothing, and verify fails a ledger that no longer extends that record.',
  'R-SEAL-ADOPT':
    "No silent trust on first use: a ledger with checkpoints but no sealer's record is refused by every automatic sealer, naming `witness seal --adopt`, which verifies the whole ledger with the key (and against a saved checkpoint) before recording its newest checkpoint.",
  'R-SEAL-RECORD-PATH':
    "The sealer's record can be kept where the database's writers cannot write (sealRecord, $WITNESS_SEAL_RECORD, --seal-record), and then rolling back or deleting the file beside the ledger does not make the key sign a forged history; verify warns when checkpoints exist but no record is found.",
  'R-SEAL-OFF-THREAD':
    'Sealing runs beside the recording thread: appends commit while a seal runs, close() waits for a running seal and its WAL checkpoint so the file is whole on its own, and kill -9 during a seal loses nothing acknowledged and the next seal resumes.',
  'R-UNSEALED-GAP': 'Verify fails when an event or session.end that no checkpoint covers is dated well before a signed checkpoint (appended late with an earlier date, or its checkpoints deleted).',
  'R-SECOND-KEY': "A second key appearing beside the ledger is named and not trusted, and the sealer never signs with or adds a key other than the ledger's own.",
  'R-KEY-FILES': '`witness init` never writes the signing key or its public half through a symbolic link.',
  'R-TRUST': 'A pass states which keys were trusted and where they came from.',
  'R-HOSTILE': 'Hostile input (corrupt files, duplicate keys, huge numbers) becomes a typed failure, never a crash.',
  'R-BUNDLE-BOUNDED': 'The bundle verifier reads files line by line under per-line and per-file size caps, refusing an oversized file or line with a typed failure instead of holding it in memory.',
  'R-CLI-INERT-OUTPUT': "The CLI's human-readable output shows terminal control characters from recorded text as visible stand-ins, never raw; --json keeps the text exact, escaped as JSON.",
  'R-VIEWER-INERT':
    'The viewer shows recorded text (agent output, tool results, page titles, URLs, names) as inert text: no markup, handler or script from it runs, no URL from it becomes a link or a load, and every page is sent with a Content-Security-Policy that allows no script and nothing from another origin.',
  'R-CLI-USAGE': 'Bad usage (unknown flag or command, missing value, out-of-range time, mistyped store scheme, a path that is not there) exits 2 with one sentence saying what to do.',
  'R-KEY-PIN-ADVICE': 'The CLI never presents the public key file beside the ledger as an independent pin; it prints the signing key fingerprint to compare with one recorded elsewhere.',
  'R-KEY-ROTATION':
    '`witness keys rotate` records key.rotated and seals it with the old and the new key, later checkpoints with the new key alone; verify (ledger and all three bundle verifiers) passes across it and fails a checkpoint signed only by a retired key after its window (retired_key) and a rotation checkpoint missing either signature (rotation_unsigned).',
  'R-KEY-EXTERNAL':
    'The signing key can live outside the ledger directory: a key file anywhere, the environment, or a command that signs (a KMS or HSM); a failing signer refuses the seal in one sentence and loses no event.',
  'R-OFFLINE': 'An exported session verifies offline with no database.',
  'R-WITHHOLD': 'An export without payloads still verifies.',
  'R-AUDIT-ACCESS': 'Exporting audit data is itself recorded: who, which session, what scope (HIPAA 164.312(b)).',
  'R-REPORT-HONEST':
    'The auditor report maps each requirement of the chosen regimes (EU AI Act, SOC 2, HIPAA, SEC/FINRA) to evidence in the bundle with one of three statuses — evidence present, gap, not assessable from logs — never a claim of compliance; an empty population is a gap.',
  'R-REPORT-PRINTED':
    "The report prints to PDF with the local Chromium, every section on its pages and the appendix's sampled calls with their inclusion proofs and before/after screenshots; recorded text in it is inert.",
  'R-GW-IDENTITY': 'The gateway records every call under the identity from its own configuration (flag or API key); what the client claims is recorded as a claim only.',
  'R-GW-DENY': 'A call denied by policy is answered by the gateway with a readable tool error and never reaches the server.',
  'R-GW-APPROVAL': 'A call under a review rule is held until a named person approves or denies it from another process, or it times out and is refused.',
  'R-GW-APPROVAL-BINDING': 'An approval releases only the call it was given for (same agent, tool, argument digest, policy version, before expiry), once; the agent cannot approve itself.',
  'R-APPROVER-KEY':
    'Each approver holds an Ed25519 key of their own (`witness approver init`: written 0600, never overwritten, never through a symlink); approving or denying without one is an error.',
  'R-APPROVER-SIGNED':
    "A decision counts only when signed by the approver's key over the request id, arguments digest, policy version and expiry; unsigned, forged or mismatched decisions are recorded as errors and release nothing.",
  'R-APPROVER-ALLOWED': 'Only an approver the policy lists by public key for the rule may release a call, never the agent itself (identities compared after NFKC, trimming and case folding).',
  'R-APPROVAL-RACE': 'Of concurrent decisions on one request the first recorded wins, and the other decider is told it lost.',
  'R-HALT':
    "A person can stop an agent (EU AI Act Art. 14): `witness halt` (or the viewer, for admins and approvers) records who and why, every gateway on any process refuses that agent's calls within a second with a message naming them and records each refusal, fails closed when the halt state cannot be read, and `witness resume` lifts it.",
  'R-OUTCOMES':
    'Outcomes mean what a compliance reader expects: a held call is pending, a denial (policy, person, refused call) denied, an expiry expired, an approval success; a call held and then approved is never listed as denied.',
  'R-DIGEST-SALTED': 'Arguments digests are salted per call and computed over the redacted arguments, so no guess can be tested against a digest without the withheld payload.',
  'R-GW-FAIL-CLOSED': 'A call the gateway cannot record is refused by default (fail open only when configured).',
  'R-GW-PASSTHROUGH': 'Progress, cancellation and server-to-client requests pass through the gateway unchanged.',
  'R-GW-BAD-INPUT': 'Malformed, oversized, batched or unsolicited messages get a well-formed error or are dropped, are recorded, and the gateway keeps serving.',
  'R-GW-NO-SMUGGLE':
    'Every tools/call, resources/read and prompts/get is recorded and evaluated, or refused: one that is not a well-formed request (bad or missing id, misspelled method or member, repeated or case-colliding keys, malformed params) is answered with an error or dropped, recorded as refused and never forwarded, over stdio and HTTP; a recorded request reaches the server exactly as recorded.',
  'R-GW-ONE-LINE':
    'No line the stdio proxy writes to the server or the client holds a raw carriage return (a raw CR, JSON white space, is forwarded as a space), so a reader that also ends lines at CR (the MCP Python SDK, Node readline) reads each frame as the one message the gateway read and recorded.',
  'R-APPROVAL-ARGS-SHOWN':
    "`witness approvals` shows every request's arguments whole, never cut, as the canonical JSON their digest covers; `witness approve` and `deny` print the whole arguments they signed.",
  'R-POLICY-FAIL-CLOSED':
    'A deny or review rule whose condition cannot be decided (an argument such as "0x3e8", "Infinity" or [900] ordered against a number; a key spelled "Amount" or with a zero-width character for args.amount; an array or object where a string test, in, == or under expects one value) applies; an allow rule does not.',
  'R-POLICY-BACKTEST':
    "`witness policy test` replays recorded tool calls through a candidate policy with the gateway's own evaluate and reports exactly which decisions would change, by transition, with the deciding rule; a call whose record lacks what the policy tests (redacted, purged or withheld) is reported as not assessable with why, never guessed.",
  'R-GW-AUTH': 'The HTTP gateway admits only bearer keys configured (hashed) for an agent; a missing or unknown key gets 401 and the refusal is recorded without the key.',
  'R-CAPTURE-BOUND': 'Before and after screenshots of a tool call are stored by SHA-256, recorded as capture events whose parent is the call, and a changed byte fails verification.',
  'R-MASK': 'Masked selectors are unreadable in the stored pixels and in the recorded page text.',
  'R-CAPTURE-SAFE': 'A capture that fails (page error, timeout, bad URL) is recorded as an error and never fails the tool call.',
  'R-CAPTURE-ISOLATED':
    'Every screenshot, the before and after of one call included, is taken in a browser context no other capture used (no cookie, storage, IndexedDB or HTTP cache carries over), and closing the capturer leaves no Chromium process running.',
  'R-VIDEO': 'A session renders to a narrated MP4 (H.264, AAC, subtitle track, one chapter per step, sidecar WebVTT) whose SHA-256 is recorded in the chain, deterministically.',
  'R-VIDEO-APPROVER':
    "The video's title cards and narration name the approver whose decision counted (the one the gateway's release names, or the first it did not reject), and tell a forged, unauthorised or mismatched decision as ignored, never as the approver.",
  'R-MISSING-PROGRAM': 'A missing Chromium, ffmpeg or espeak-ng is named in one sentence with the command that installs it.',
  'R-KAT': 'Merkle, JCS and Ed25519 signed notes match known-answer vectors from other implementations.',
  'R-ROLES': "One table declares every server route's roles; a route or role it does not list is refused (403), a request without a valid key gets 401.",
  'R-INGEST-IDENTITY':
    "Events ingested over HTTP are recorded under the API key's agent and key id, whatever the body claims; an agent key cannot write system streams, human acts or another agent's session.",
  'R-KEY-REVOKE': 'API keys are stored only as hashes in the ledger (config.change events); a key revoked from another process is refused from the next request.',
  'R-ACCESS-LOG':
    'Every read of audit data by a person through the server is recorded as an audit.access event (who, role, what, when, from where) before it is answered, and the ledger still verifies.',
  'R-OIDC':
    "People sign in to the viewer with OpenID Connect (authorization code, PKCE S256, state and nonce, bound to the browser that started it): the config's claim → role map gives the role, a claim that maps to none is refused with no default role, and a changed state, a replayed answer, another browser's code or a wrong nonce is refused.",
  'R-SERVER-APPROVE':
    'An approver approves or denies a held call over the HTTP API as themselves: the server signs with the approver key it holds for their API key (never a name from the body), binds the decision as `witness approve` does (409 once decided or expired, 403 for the agent itself), and the held call then completes or is refused.',
  'R-DEV-MASK': "A developer's reads have personal data masked and secrets redacted, and never carry the salt that would let a masked value be confirmed.",
  'R-VIEWER-SIGNIN':
    "People sign in to the viewer with a person's key (never an agent's) into a session whose cookie is HttpOnly and SameSite=Strict and whose id the server keeps only hashed; it ends when idle, at an absolute limit, at sign-out, and at once when the key is revoked.",
  'R-METRICS':
    '/metrics lets operations alert when audit generation fails: error events recorders wrote about their own failures (recorder, capture, gateway) over the last 24 h, and refused keys and sign-ins that are counted because they name no one.',
  'R-RETENTION':
    'Retention rules live in the ledger (config.change); `witness retention run` erases payloads (data + salt) of expired events through the one purge path the database admits, keeps headers, hashes and digests, and records a retention.purge event listing exactly the purged leaves under its policy; verify reports them as purged, an erased payload no purge lists as `uncovered_purge`, and one listed by a record that breaks the purge rules (stream, recorder, governance kind, sealed, hold, policy) as `unauthorised_purge`.',
  'R-LEGAL-HOLD': 'A legal hold (hold.placed / hold.released, read from the ledger) keeps every event it covers from purge and erasure; a run says how many it held back.',
  'R-ERASURE':
    "Subject erasure purges a subject's payloads with the same verifiable receipt (policy erasure:<subject>), and is refused in one sentence, changing nothing, under a hold or a keeping duty.",
  'R-CSRF': "Every viewer form carries a token bound to the person's session, compared in constant time; a post without it, with another, or from another site is refused (403).",
  'R-MONITOR-VERIFY':
    '`witness monitor` verifies each new checkpoint as it appears (signature, consistency with the last verified root, every new leaf) and the whole ledger on a schedule, on both drivers, and alerts when either fails.',
  'R-MONITOR-ALERTS':
    'Failures of recording, capture, sealing or verification, a long-pending or expired approval and a halt fire one alert per condition until it clears, to a signed and retried webhook, a command and /metrics, and are recorded as alert events; a monitor that cannot record or save says so the same way.',
  'R-MONITOR-GOVERNANCE':
    'Every act of governance (a purge, a legal hold placed or released, a retention rule set, a key rotated, an agent halted or resumed) fires one alert recorded with the act as parent; one outside its stream or from another recorder kind fires a critical alert; none fires twice across restarts.',
  'R-ANOMALY-FLAGS':
    'Anomaly rules (a new tool, a burst, a denial streak, off-hours calls, prompt-injection indicators) flag realistic sequences and not benign ones, as anomaly events naming the event that tripped them, never blocking and never twice across restarts; an agent key cannot write an alert or an anomaly.',
  'R-ANCHOR-COSIGN':
    'A cosigning witness (C2SP tlog-witness) cosigns only a checkpoint consistent with the last one it cosigned for that log, refuses a forked log with the spec status (409/422) and keeps the refusal, and `witness verify --require-cosigner` fails when the newest checkpoint lacks a valid cosignature/v1 by that key.',
  'R-ANCHOR-TSA':
    '`witness anchor --tsa URL` keeps an RFC 3161 time-stamp over the checkpoint note; `witness verify --tsa-cert FILE` checks its imprint and its signature chain (openssl ts -verify), reports the time, and fails for another authority or a newest checkpoint without one.',
  'R-ANCHOR-BUNDLE':
    'An evidence bundle carries the cosignatures and RFC 3161 time-stamps over the checkpoints it ships (anchors.jsonl, bound by the export record); `witness verify`, verify.mjs and the Python verifier pass `--require-cosigner` only with a valid cosignature/v1 by that key over a bundle checkpoint holding the whole span (cosignature_missing, cosignature_invalid otherwise), and `--tsa-cert` reports the signed time and refuses another authority.',
  'R-ANCHOR-COPY':
    '`witness anchor --copy-to DIR|s3://BUCKET/PREFIX` writes each checkpoint (with its cosignature lines) and its time-stamp tokens outside the ledger, adds cosignatures to a copy without removing any, and never overwrites a different tree of the same size, not even when another writer races it on a bucket with conditional writes; a bucket that is missing, refuses the credentials or cannot be reached is one sentence and exit 1, with no credential printed.',
} as const;

export type RequirementId = keyof typeof REQUIREMENTS;
