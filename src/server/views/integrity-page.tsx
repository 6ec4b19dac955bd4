import type { FC } from 'hono/jsx';
import { plural, showDuration, showTime } from './format.js';
import { CsrfField, Layout, renderDocument } from './layout.js';
import type { IntegrityPageModel, SignerView } from './model.js';
import { PATHS } from './paths.js';

/**
 * The integrity panel: how far the ledger is covered by a signed checkpoint, who signed it, why
 * that key is trusted, the last verification's result, and a button that runs verification again.
 */

const SOURCE: Record<SignerView['source'], string> = {
  ledger: 'stored beside the ledger (whoever controls the ledger could replace it; pin a key with --trusted-key for an independent check)',
  pinned: 'pinned by the auditor',
  bundle: 'shipped inside the evidence bundle',
};

const Signers: FC<{ signers: readonly SignerView[] }> = ({ signers }) =>
  signers.length === 0 ? (
    <span>no key</span>
  ) : (
    <ul class="plain">
      {signers.map((k) => (
        <li>
          <span class="mono">{k.fingerprint}</span> — trusted because it is {SOURCE[k.source]}
        </li>
      ))}
    </ul>
  );

export function renderIntegrityPage(m: IntegrityPageModel): string {
  const cp = m.checkpoint;
  const last = m.last;
  return renderDocument(
    <Layout title="Integrity" chrome={{ ...m.chrome, active: 'integrity' }}>
      <h1>Integrity</h1>
      <p class="sub">
        Ledger <span class="mono">{m.ledger.origin}</span> · {plural(m.ledger.size, 'event')}
        {m.ledger.location === undefined ? '' : ` · ${m.ledger.location}`}
      </p>
      <section class="panel">
        <h2>Signed checkpoint</h2>
        {cp === undefined ? (
          <p>No checkpoint has been signed yet: the events are hash-chained, but not yet in a signed tree.</p>
        ) : (
          <dl class="facts">
            <dt>Covers</dt>
            <dd>
              events 0 to {cp.size - 1} ({plural(cp.size, 'event')}) · checkpoint {cp.id}
              {m.ledger.size > cp.size ? ` · ${plural(m.ledger.size - cp.size, 'newer event')} not yet sealed` : ''}
            </dd>
            <dt>Signed at</dt>
            <dd>{showTime(cp.ts)}</dd>
            <dt>Signed by</dt>
            <dd>
              <Signers signers={m.signers} />
            </dd>
            <dt>Tree root</dt>
            <dd class="mono">{cp.rootHex}</dd>
          </dl>
        )}
      </section>
      <section class="panel">
        <h2>Last verification</h2>
        {last === undefined ? (
          <p>The ledger has not been verified since the server started.</p>
        ) : (
          <>
            <p>
              <span class={`badge ${last.ok ? 'ok' : last.unverifiable ? 'review' : 'denied'}`}>{last.ok ? 'verified' : last.unverifiable ? 'unverifiable' : 'failed'}</span> {showTime(last.at)}
              {last.durationMs === undefined ? '' : ` · took ${showDuration(last.durationMs)}`}
            </p>
            <dl class="facts">
              <dt>Verified up to</dt>
              <dd>
                {last.sealedSize === 0 ? 'no checkpoint' : `${plural(last.sealedSize, 'event')} in signed checkpoints`}
                {last.unsealed === 0 ? '' : `; ${plural(last.unsealed, 'event')} chained but not yet sealed`}
              </dd>
              <dt>Checked</dt>
              <dd>
                {plural(last.events, 'event')}, {plural(last.checkpoints, 'checkpoint')}
              </dd>
              <dt>Trusted because</dt>
              <dd>{last.trust}</dd>
              <dt>Keys</dt>
              <dd>
                <Signers signers={last.signers} />
              </dd>
              {last.firstFailure === undefined ? null : (
                <>
                  <dt>First failure</dt>
                  <dd>
                    {last.firstFailure}
                    {last.failures > 1 ? ` (and ${plural(last.failures - 1, 'more failure')})` : ''}
                  </dd>
                </>
              )}
            </dl>
            {last.warnings.length === 0 ? null : (
              <ul>
                {last.warnings.map((w) => (
                  <li>{w}</li>
                ))}
              </ul>
            )}
          </>
        )}
        {m.running === true ? (
          <p class="notice">A verification is running; reload this page to see its result.</p>
        ) : (
          <form method="post" action={PATHS.reverify}>
            <CsrfField token={m.chrome.csrfToken} />
            <button class="primary" type="submit">
              Verify again
            </button>
          </form>
        )}
      </section>
    </Layout>,
  );
}
