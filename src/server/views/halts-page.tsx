import type { HaltView } from '../../approvals/index.js';
import { clip, showTime } from './format.js';
import { CsrfField, Layout, renderDocument } from './layout.js';
import type { Chrome } from './model.js';
import { PATHS } from './paths.js';

export interface HaltsPageModel {
  chrome: Chrome;
  /** The agents halted now, oldest halt first. */
  halted: HaltView[];
  /** The person may halt and resume (admin, approver); others only read. */
  canAct: boolean;
  /** The outcome of the last halt or resume this person posted, shown once. */
  flash?: { kind: 'ok' | 'error'; text: string };
}

/**
 * The stop button: who is halted now, by whom and why, a Resume button for each, and a form to halt
 * an agent by id. Agent ids and reasons are recorded text: shown escaped, and posted back only in
 * form fields, never in a URL.
 */
export function renderHaltsPage(m: HaltsPageModel): string {
  return renderDocument(
    <Layout title="Stop" chrome={{ ...m.chrome, active: 'halts' }}>
      <h1>Stop an agent</h1>
      <p class="sub">A halted agent's calls are refused by every gateway within a second, with who halted it and why, until a person resumes it. Both are recorded under your own identity.</p>
      {m.flash === undefined ? null : <p class={`notice ${m.flash.kind}`}>{m.flash.text}</p>}
      {m.halted.length === 0 ? (
        <p class="notice">No agent is halted.</p>
      ) : (
        <ol class="queue">
          {m.halted.map((h) => (
            <li>
              <h2>
                <span class="mono">{h.agent}</span> <span class="badge denied">halted</span>
              </h2>
              <dl class="facts">
                <dt>Halted by</dt>
                <dd>{h.actor}</dd>
                <dt>Since</dt>
                <dd>{showTime(h.ts)}</dd>
                <dt>Why</dt>
                <dd>{clip(h.reason, 2000)}</dd>
                <dt>Event</dt>
                <dd class="mono">{h.id}</dd>
              </dl>
              {m.canAct ? (
                <form class="decide" method="post" action={PATHS.halts}>
                  <CsrfField token={m.chrome.csrfToken} />
                  <input type="hidden" name="agent" value={h.agent} />
                  <label>
                    Reason (recorded with the resume)
                    <textarea name="reason" maxlength={4096}></textarea>
                  </label>
                  <div class="buttons">
                    <button class="approve" type="submit" name="action" value="resume">
                      Resume
                    </button>
                  </div>
                </form>
              ) : null}
            </li>
          ))}
        </ol>
      )}
      {m.canAct ? (
        <form class="decide" method="post" action={PATHS.halts}>
          <CsrfField token={m.chrome.csrfToken} />
          <h2>Halt an agent</h2>
          <label>
            Agent id
            <input type="text" name="agent" maxlength={512} required />
          </label>
          <label>
            Reason (recorded with the halt, shown to the agent)
            <textarea name="reason" maxlength={4096} required></textarea>
          </label>
          <div class="buttons">
            <button class="deny" type="submit" name="action" value="halt">
              Halt
            </button>
          </div>
        </form>
      ) : null}
    </Layout>,
  );
}
