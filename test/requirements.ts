/**
 * The audit duties Witness must meet, each with an id that the tests proving it cite in their
 * names (`[R-…]`). test/requirements.test.ts fails when an id is cited by no test, so a duty
 * cannot silently lose its proof.
 */
export const REQUIREMENTS = {
  'R-WHO': 'Every event names the acting agent; an event without an agent identity is refused (AU-3).',
  'R-WHAT-WHEN-RESULT': 'Events are queryable by agent, session, kind, resource, action, outcome and time window (AU-3, Art. 12).',
  'R-REASONING': 'An LLM call records model, input, output, requested tool calls, tokens, latency and the system-prompt digest (Art. 12).',
  'R-TOOL-LINK': 'A tool call is recorded before it runs and its result or error after, linked by parent.',
  'R-SESSION-END': 'session.end records the reason, the final output and the stream count and last hash, so a cut tail shows.',
  'R-DURABLE': 'An acknowledged event survives kill -9 of the recording process.',
  'R-CONCURRENT': 'Two processes appending to one ledger lose nothing and the chain verifies.',
  'R-NO-THROW': 'The recorder never throws its own faults into the agent; it reports them and records the gap.',
  'R-REDACT': 'Secrets are redacted before anything is hashed or written.',
  'R-PAYLOAD-LIMIT': 'Oversized payloads are refused or stored as artifacts, never truncated.',
  'R-APPEND-ONLY': 'The database refuses UPDATE, DELETE and REPLACE of events and checkpoints.',
  'R-TAMPER-PAYLOAD': 'An edited payload is detected at its position.',
  'R-TAMPER-HEADER': 'An edited header field is detected at its position.',
  'R-TAMPER-DELETE': 'A deleted event is detected at its position.',
  'R-TAMPER-INSERT': 'An inserted event is detected.',
  'R-TAMPER-REORDER': 'Reordered events are detected.',
  'R-TAMPER-TRUNCATE': "A cut-off tail is detected, in the ledger and in a single session's export.",
  'R-TAMPER-MOVE': 'An event moved to another stream or ledger is detected.',
  'R-TAMPER-ARTIFACT': "A changed artifact byte is detected, naming the artifact.",
  'R-TAMPER-SIGNATURE': 'A forged checkpoint signature is detected.',
  'R-TAMPER-REWRITE': 'A consistently rewritten history fails consistency with earlier checkpoints.',
  'R-AGAINST': 'An auditor can prove the ledger still extends a checkpoint they saved.',
  'R-TRUST': 'A pass states which keys were trusted and where they came from.',
  'R-HOSTILE': 'Hostile input (corrupt files, duplicate keys, huge numbers) becomes a typed failure, never a crash.',
  'R-OFFLINE': 'An exported session verifies offline with no database.',
  'R-WITHHOLD': 'An export without payloads still verifies.',
  'R-AUDIT-ACCESS': 'Exporting audit data is itself recorded: who, which session, what scope (HIPAA 164.312(b)).',
  'R-GW-IDENTITY': 'The gateway records every call under the identity from its own configuration (flag or API key); what the client claims is recorded as a claim only.',
  'R-GW-DENY': 'A call denied by policy is answered by the gateway with a readable tool error and never reaches the server.',
  'R-GW-APPROVAL': 'A call under a review rule is held until a named person approves or denies it from another process, or it times out and is refused.',
  'R-GW-APPROVAL-BINDING': 'An approval releases only the call it was given for (same agent, tool, argument digest, policy version, before expiry), once; the agent cannot approve itself.',
  'R-GW-FAIL-CLOSED': 'A call the gateway cannot record is refused by default (fail open only when configured).',
  'R-GW-PASSTHROUGH': 'Progress, cancellation and server-to-client requests pass through the gateway unchanged.',
  'R-GW-BAD-INPUT': 'Malformed, oversized, batched or unsolicited messages get a well-formed error or are dropped, are recorded, and the gateway keeps serving.',
  'R-GW-AUTH': 'The HTTP gateway admits only bearer keys configured (hashed) for an agent; a missing or unknown key gets 401 and the refusal is recorded without the key.',
  'R-KAT': 'Merkle, JCS and Ed25519 signed notes match known-answer vectors from other implementations.',
} as const;

export type RequirementId = keyof typeof REQUIREMENTS;
