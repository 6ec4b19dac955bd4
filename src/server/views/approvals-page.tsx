import { clip, showTime, showValue, shortHash, timeLeft } from './format.js';
import { CsrfField, Layout, renderDocument } from './layout.js';
import type { ApprovalsPageModel } from './model.js';
import { PATHS, sessionPath } from './paths.js';

/**
 * The approvals queue: each held call with the exact arguments a decision binds (and their digest),
 * who asked, the rule that held it and the time left; a form to approve or deny with a reason. The
 * form names the request by id in a hidden field, so no recorded text becomes part of a URL.
 */
export function renderApprovalsPage(m: ApprovalsPageModel): string {
  return renderDocument(
    <Layout title="Approvals" chrome={{ ...m.chrome, active: 'approvals', pendingApprovals: m.pending.length }}>
      <h1>Approvals</h1>
      <p class="sub">Calls held by policy until a person decides. Your decision is recorded under your own identity, bound to these exact arguments.</p>
      {m.flash === undefined ? null : <p class={`notice ${m.flash.kind}`}>{m.flash.text}</p>}
      {m.pending.length === 0 ? (
        <p class="notice">No call is waiting for a decision.</p>
      ) : (
        <ol class="queue">
          {m.pending.map((p) => {
            const left = timeLeft(m.now, p.expiresAt);
            return (
              <li>
                <h2>
                  <span class="mono">{p.tool ?? '(unnamed tool)'}</span>
                  {p.server === undefined ? '' : ` on ${p.server}`} <span class={`badge ${left.expired ? 'denied' : 'review'}`}>{left.text}</span>
                </h2>
                <dl class="facts">
                  <dt>Asked by</dt>
                  <dd>
                    agent {p.agent}
                    {p.principal === undefined ? '' : `, acting for ${p.principal}`}
                  </dd>
                  <dt>Session</dt>
                  <dd>
                    <a class="mono" href={sessionPath(p.session)}>
                      {p.session}
                    </a>
                  </dd>
                  <dt>Policy rule</dt>
                  <dd>
                    {p.rule ?? '(default)'}
                    {p.policyVersion === undefined ? null : (
                      <>
                        {' '}
                        · version{' '}
                        <span class="mono" title={p.policyVersion}>
                          {shortHash(p.policyVersion)}
                        </span>
                      </>
                    )}
                  </dd>
                  {p.reason === undefined ? null : (
                    <>
                      <dt>Why held</dt>
                      <dd>{clip(p.reason, 2000)}</dd>
                    </>
                  )}
                  <dt>Requested</dt>
                  <dd>{showTime(p.requestedAt)}</dd>
                  <dt>Expires</dt>
                  <dd>{p.expiresAt === undefined ? 'never' : showTime(p.expiresAt)}</dd>
                  <dt>May decide</dt>
                  <dd>{p.approvers.length === 0 ? 'any approver' : p.approvers.join(', ')}</dd>
                  <dt>Request</dt>
                  <dd class="mono">{p.requestId}</dd>
                  <dt>Arguments digest</dt>
                  <dd class="mono">{p.argumentsDigest}</dd>
                </dl>
                <div class="label">Exact arguments</div>
                <pre>{showValue(p.arguments)}</pre>
                {left.expired ? (
                  <p class="notice">This request has expired; it can no longer be approved.</p>
                ) : (
                  <form class="decide" method="post" action={PATHS.decide}>
                    <CsrfField token={m.chrome.csrfToken} />
                    <input type="hidden" name="request_id" value={p.requestId} />
                    <input type="hidden" name="arguments_digest" value={p.argumentsDigest} />
                    <label>
                      Reason (recorded with your decision)
                      <textarea name="reason" maxlength={4096} required></textarea>
                    </label>
                    <div class="buttons">
                      <button class="approve" type="submit" name="decision" value="approve">
                        Approve
                      </button>
                      <button class="deny" type="submit" name="decision" value="deny">
                        Deny
                      </button>
                    </div>
                  </form>
                )}
              </li>
            );
          })}
        </ol>
      )}
    </Layout>,
  );
}
