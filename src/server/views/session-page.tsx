import type { FC } from 'hono/jsx';
import { clip, plural, showDuration, showOffset, showTime, showToolOutput, showValue, shortHash } from './format.js';
import { Layout, renderDocument } from './layout.js';
import type { ErrorView, IntegrityBadge, Screenshot, SessionPageModel, TimelineStep, VideoView } from './model.js';
import { PATHS, artifactPath, chaptersPath, sessionPath } from './paths.js';

/**
 * A session as a timeline: for each tool call, the reasoning before it, the call and its arguments,
 * the policy decision, the approval, the screenshots before and after side by side, the result and
 * any error; above them the narrated video and the integrity badge.
 */

const TONE_LABEL: Record<TimelineStep['tone'], string> = { ok: 'done', denied: 'refused', review: 'held for review', error: 'failed', neutral: 'recorded' };
const POLICY_TONE = { allow: 'ok', deny: 'denied', review: 'review' } as const;
const BADGE_TONE: Record<IntegrityBadge['state'], string> = { verified: 'ok', unsealed: 'review', failed: 'denied', unknown: 'neutral' };

export const Shot: FC<{ shot: Screenshot | undefined; role: 'Before' | 'After' }> = ({ shot, role }) => {
  const src = shot === undefined ? undefined : artifactPath(shot.sha256);
  if (shot === undefined || src === undefined) {
    return (
      <figure>
        <div class="shot missing">No screenshot {role === 'Before' ? 'before' : 'after'} the call.</div>
        <figcaption>{role}</figcaption>
      </figure>
    );
  }
  const c = shot.changed;
  return (
    <figure>
      <div class="shot">
        <img
          src={src}
          alt={`The screen ${role.toLowerCase()} the call${shot.title === undefined ? '' : `: ${clip(shot.title, 200)}`}`}
          loading="lazy"
          {...(c === undefined ? {} : { width: c.imageWidth, height: c.imageHeight })}
        />
        {c === undefined ? null : (
          <svg viewBox={`0 0 ${c.imageWidth} ${c.imageHeight}`} preserveAspectRatio="none" aria-hidden="true" xmlns="http://www.w3.org/2000/svg">
            <rect class="changed" x={c.region.x} y={c.region.y} width={c.region.width} height={c.region.height} />
          </svg>
        )}
      </div>
      <figcaption>
        <b>{role}</b> · {showTime(shot.capturedAt)}
        {shot.title === undefined ? '' : ` · ${clip(shot.title, 200)}`}
        {shot.url === undefined ? null : (
          <>
            <br />
            <span class="mono">{clip(shot.url, 500)}</span>
          </>
        )}
        {c === undefined ? null : (
          <>
            <br />
            {`Changed region outlined: ${c.region.width}×${c.region.height} at (${c.region.x}, ${c.region.y}).`}
          </>
        )}
        <br />
        <span class="mono" title={shot.sha256}>
          sha256 {shortHash(shot.sha256)}
        </span>
      </figcaption>
    </figure>
  );
};

const Errors: FC<{ errors: readonly ErrorView[] }> = ({ errors }) =>
  errors.length === 0 ? null : (
    <ul class="errors">
      {errors.map((e) => (
        <li>
          {showTime(e.ts)} · {e.source === undefined ? '' : `${e.source} `}
          {e.code === undefined ? '' : `[${e.code}] `}
          {clip(e.message, 2000)}
        </li>
      ))}
    </ul>
  );

export const Step: FC<{ step: TimelineStep }> = ({ step: s }) => (
  <li class="step" id={`step-${s.index}`}>
    <header>
      <h3>
        Step {s.index} · <span class="mono">{s.tool}</span>
        {s.server === undefined ? '' : ` on ${s.server}`}
      </h3>
      <span class={`badge ${s.tone}`}>{TONE_LABEL[s.tone]}</span>
      <span class="when">
        {showTime(s.ts)} · seq {s.seq}
      </span>
    </header>
    {s.reasoning === undefined ? null : (
      <div class="part">
        <div class="label">Reasoning before the call{s.reasoning.model === undefined ? null : <span class="model"> · {s.reasoning.model}</span>}</div>
        <p class="reasoning">{clip(s.reasoning.text, 8000)}</p>
      </div>
    )}
    <div class="part">
      <div class="label">Tool call arguments</div>
      <pre>{showValue(s.arguments)}</pre>
    </div>
    {s.policy.length === 0 ? null : (
      <div class="part">
        <div class="label">Policy</div>
        {s.policy.map((p) => (
          <p>
            <span class={`badge ${POLICY_TONE[p.decision]}`}>{p.decision}</span> rule <b>{p.rule ?? '(default)'}</b>
            {p.mode === 'shadow' ? ' (shadow: recorded, not enforced)' : ''}
            {p.version === undefined ? null : (
              <>
                {' '}
                · policy version{' '}
                <span class="mono" title={p.version}>
                  {shortHash(p.version)}
                </span>
              </>
            )}
            {p.reason === undefined ? '' : ` · ${clip(p.reason, 1000)}`}
          </p>
        ))}
      </div>
    )}
    {s.approval === undefined ? null : (
      <div class="part">
        <div class="label">Approval</div>
        <p>
          <b>{s.approval.summary}</b>
          {s.approval.rule === undefined ? '' : ` · rule ${s.approval.rule}`}
          {s.approval.expiresAt === undefined ? '' : ` · expires ${showTime(s.approval.expiresAt)}`}
        </p>
        {s.approval.reason === undefined ? null : <p>Why it was held: {clip(s.approval.reason, 1000)}</p>}
        {s.approval.decisions.length === 0 ? null : (
          <table>
            <thead>
              <tr>
                <th>Approver</th>
                <th>Decision</th>
                <th>Reason</th>
                <th>Signed</th>
                <th>When</th>
              </tr>
            </thead>
            <tbody>
              {s.approval.decisions.map((d) => (
                <tr>
                  <td>
                    {d.approver}
                    {d.role === undefined ? '' : ` (${d.role})`}
                  </td>
                  <td>{d.decision}</td>
                  <td>{d.reason === undefined ? '' : clip(d.reason, 2000)}</td>
                  <td>{d.signed ? 'yes' : 'no'}</td>
                  <td>{showTime(d.ts)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {s.approval.ignored === undefined ? null : <p>Ignored: {s.approval.ignored}</p>}
      </div>
    )}
    {s.before === undefined && s.after === undefined ? null : (
      <div class="part">
        <div class="label">Screen before and after</div>
        <div class="shots">
          <Shot shot={s.before} role="Before" />
          <Shot shot={s.after} role="After" />
        </div>
      </div>
    )}
    <div class="part">
      <div class="label">Result</div>
      {s.result === undefined ? (
        <p>No result was recorded for this call.</p>
      ) : (
        <>
          <p>
            <span class={`badge ${s.result.isError ? 'error' : s.result.outcome === 'denied' ? 'denied' : 'ok'}`}>{s.result.isError ? 'error' : (s.result.outcome ?? 'success')}</span>{' '}
            {showTime(s.result.ts)}
            {s.result.durationMs === undefined ? '' : ` · took ${showDuration(s.result.durationMs)}`}
            {s.result.error === undefined ? '' : ` · ${clip(s.result.error, 2000)}`}
          </p>
          {s.result.output === undefined ? null : <pre>{showToolOutput(s.result.output)}</pre>}
        </>
      )}
    </div>
    {s.errors.length === 0 ? null : (
      <div class="part">
        <div class="label">Errors</div>
        <Errors errors={s.errors} />
      </div>
    )}
  </li>
);

const Video: FC<{ video: VideoView }> = ({ video: v }) => {
  const src = artifactPath(v.videoSha256);
  const captions = v.captionsSha256 === undefined ? undefined : artifactPath(v.captionsSha256);
  const chapters = v.chapters.length === 0 ? undefined : chaptersPath(v.eventId);
  if (src === undefined) return null;
  return (
    <section class="video">
      <h2>Narrated video</h2>
      <video controls preload="metadata" src={src}>
        {captions === undefined ? null : <track kind="captions" src={captions} srclang="en" label="English narration" default />}
        {chapters === undefined ? null : <track kind="chapters" src={chapters} srclang="en" label="Steps" />}
        The video needs a browser that plays MP4 (H.264).
      </video>
      {v.chapters.length === 0 ? null : (
        <ol class="chapters">
          {v.chapters.map((c) => (
            <li>
              <span class="mono">{showOffset(c.startS)}</span> {c.title}
            </li>
          ))}
        </ol>
      )}
      <p class="sub">
        {v.durationS === undefined ? '' : `${showOffset(v.durationS)} · `}
        <span class="mono" title={v.videoSha256}>
          sha256 {shortHash(v.videoSha256)}
        </span>
      </p>
    </section>
  );
};

/** Links to the neighbouring pages of steps, when the session has more than one page. */
const StepPaging: FC<{ model: SessionPageModel }> = ({ model: m }) => {
  const w = m.stepWindow;
  if (w === undefined || (w.from <= 1 && w.to >= w.total)) return null;
  const size = Math.max(1, w.to - w.from + 1);
  return (
    <nav class="paging" aria-label="Steps">
      <span>
        Steps {w.from}–{w.to} of {w.total}
      </span>
      {w.from > 1 ? <a href={sessionPath(m.session.id, Math.max(1, w.from - size))}>Earlier steps</a> : null}
      {w.to < w.total ? <a href={sessionPath(m.session.id, w.to + 1)}>Later steps</a> : null}
    </nav>
  );
};

export function renderSessionPage(m: SessionPageModel): string {
  const s = m.session;
  return renderDocument(
    <Layout title={`Session ${clip(s.id, 80)}`} chrome={{ ...m.chrome, active: 'sessions' }}>
      <p class="no-print">
        <a href={PATHS.sessions}>← All sessions</a>
      </p>
      <h1>
        Session <span class="mono">{s.id}</span>
      </h1>
      {m.integrity === undefined ? null : (
        <p>
          <span class={`badge ${BADGE_TONE[m.integrity.state]}`}>{m.integrity.state}</span> {m.integrity.text}{' '}
          <a class="no-print" href={PATHS.integrity}>
            Integrity details
          </a>
        </p>
      )}
      <dl class="facts">
        <dt>Agent</dt>
        <dd>
          {s.agent}
          {s.agentVersion === undefined ? '' : ` ${s.agentVersion}`}
        </dd>
        {s.purpose === undefined ? null : (
          <>
            <dt>Purpose</dt>
            <dd>{clip(s.purpose, 2000)}</dd>
          </>
        )}
        {s.recordedBy === undefined ? null : (
          <>
            <dt>Recorded by</dt>
            <dd>{s.recordedBy}</dd>
          </>
        )}
        <dt>Started</dt>
        <dd>{showTime(s.started)}</dd>
        <dt>Ended</dt>
        <dd>{s.ended === undefined ? 'still open' : `${showTime(s.ended)}${s.endReason === undefined ? '' : ` (${s.endReason})`}`}</dd>
        <dt>Recorded</dt>
        <dd>
          {plural(s.events, 'event')}, {plural(m.stepWindow?.total ?? m.steps.length, 'tool call')}
        </dd>
      </dl>
      {m.video === undefined ? null : <Video video={m.video} />}
      {m.withheld === undefined ? null : <p class="notice">{m.withheld}</p>}
      <h2>Timeline</h2>
      <StepPaging model={m} />
      {m.steps.length === 0 ? (
        <p class="notice">This session recorded no tool call.</p>
      ) : (
        <ol class="steps">
          {m.steps.map((step) => (
            <Step step={step} />
          ))}
        </ol>
      )}
      <StepPaging model={m} />
      {m.errors.length === 0 ? null : (
        <section>
          <h2>Other errors</h2>
          <Errors errors={m.errors} />
        </section>
      )}
      {s.finalOutput === undefined ? null : (
        <section>
          <h2>Final answer</h2>
          <pre>{showValue(s.finalOutput)}</pre>
        </section>
      )}
    </Layout>,
  );
}
