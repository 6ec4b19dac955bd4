import type { BundleManifestV2 } from './bundle-format.js';

/**
 * README.txt: how to verify this bundle, in plain words, for whoever receives it. Written before the
 * export's record is appended (the record binds its SHA-256), so it names neither that event's leaf
 * nor the final checkpoint: manifest.json and checkpoint.txt do.
 */
export function readmeText(m: Omit<BundleManifestV2, 'files' | 'export_event' | 'checkpoint'>, fingerprints: string[], hasVerifier: boolean, hasPurges = false, hasAnchors = false): string {
  const s = m.scope;
  const scope = [
    s.since === null ? undefined : `since ${s.since}`,
    s.until === null ? undefined : `until ${s.until}`,
    s.agents === null ? undefined : `agents ${s.agents.join(', ')}`,
    s.sessions === null ? undefined : `sessions ${s.sessions.join(', ')}`,
    s.regimes.length === 0 ? undefined : `for ${s.regimes.join(', ')}`,
  ].filter((x) => x !== undefined);
  return `Witness evidence bundle (format ${m.format}, version ${m.version})
==========================================================

Ledger     ${m.ledger.origin}
Exported   ${m.created_at}
Scope      ${scope.join('; ')}
Mode       ${m.mode === 'full' ? `full: every in-scope event carries its payload${hasPurges ? ', but those the retention purge erased (purges.jsonl)' : ''}` : 'withheld: headers and salted payload digests only, no payloads and no artifacts'}
Span       leaves ${m.span.from} to ${m.span.to - 1} of the ledger's Merkle tree, every one of them in events.jsonl
           (${m.events - 1} events, ${m.in_scope} in scope, then this export's own audit.access event)
Signed by  ${fingerprints.join(', ') || '(no key)'}

How to verify it
----------------
1. Pin the ledger's public key from YOUR OWN record (the key fingerprint noted when the ledger was
   created, or a checkpoint you kept), not from keys.json in this bundle: whoever could rewrite
   the bundle could replace keys.json too. Compare its fingerprint with the one above.

2. Run the standalone verifier (Node.js 20 or later, nothing to install):
${hasVerifier ? '' : '   (this bundle was written without verify.mjs; use step 3)\n'}
     node verify.mjs . --trusted-key '<the public key from your record>'

   or, with Witness installed:

     npx witness verify <this bundle or its zip> --trusted-key '<the public key from your record>'

3. Both check, with no database and no network: every file's SHA-256 against manifest.json; every
   event's payload digest (where the payload is present), hash and chain link; an inclusion proof
   for every event to checkpoint.txt, step by step; the checkpoint's signature; checkpoints.jsonl
   (each signed, each extending the previous one); that the span is contiguous, so no event of it
   is missing; that the export's own audit.access event binds the scope, mode, span, a digest
   of every event hash, the first line of checkpoints.jsonl and the SHA-256 of system.json,
   README.txt, verify.mjs and populations/index.json; every population in populations/ recomputed from events.jsonl; and every
   artifact re-hashed. Events without a payload are listed with the reason (out of scope, or
   withheld by the export mode, or purged under retention: only where a retention.purge record in
   purges.jsonl, proved into the signed tree and bound by the export's event, lists it).

What is in it
-------------
manifest.json           what the bundle holds and the SHA-256 of every other file
events.jsonl            every event of the span in leaf order (out-of-scope events as headers only),
                        then this export's audit.access event
proofs.jsonl            one inclusion proof per line of events.jsonl
checkpoint.txt          the signed checkpoint every proof leads to
checkpoints.jsonl       the ledger's checkpoints over the span, each with a consistency proof
keys.json               the signing-key history (a convenience: pin your own copy)
${
  hasPurges
    ? `purges.jsonl            the retention.purge records listing the in-scope payloads the purge erased
purge-proofs.jsonl      one inclusion proof per line of purges.jsonl
`
    : ''
}${
    hasAnchors
      ? `anchors.jsonl           cosignatures and RFC 3161 time-stamps over checkpoints of this bundle (check: --require-cosigner, --tsa-cert)
`
      : ''
  }system.json             agents and versions, models, prompt and tool-definition hashes, policy versions
populations/            approvals, denials, overrides, halts and resumes, configuration changes, reviews,
                        audit access, errors: complete lists an auditor can sample from
artifacts/              screenshots, the narrated video and its captions, by SHA-256
report.html             the auditor report (when rendered): a reading aid that is not signed and
                        that no verifier checks; the verified record is events.jsonl
verify.mjs              the standalone verifier
`;
}
