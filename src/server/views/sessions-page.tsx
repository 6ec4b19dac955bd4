import { OUTCOMES } from '../../core/index.js';
import { Layout, renderDocument } from './layout.js';
import type { SessionFilters, SessionsPageModel } from './model.js';
import { PATHS, sessionPath } from './paths.js';
import { showTime } from './format.js';

/** The sessions list: a filter form (a GET, so a filtered list is a link to share), counts, paging. */

function pageLink(filters: SessionFilters, cursor: string | undefined): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(filters)) if (typeof v === 'string' && v !== '') q.set(k, v);
  if (cursor !== undefined) q.set('cursor', cursor);
  const s = q.toString();
  return s === '' ? PATHS.sessions : `${PATHS.sessions}?${s}`;
}

/** An ISO time as a `datetime-local` field's value (minutes, no zone: the label says UTC). */
function localValue(iso: string | undefined): string {
  return iso === undefined ? '' : iso.slice(0, 16);
}

export function renderSessionsPage(m: SessionsPageModel): string {
  const f = m.filters;
  const filtered = Object.values(f).some((v) => v !== undefined && v !== '');
  return renderDocument(
    <Layout title="Sessions" chrome={{ ...m.chrome, active: 'sessions' }}>
      <h1>Sessions</h1>
      <p class="sub">Every recorded session, newest first. Filter by agent{m.chrome.masked === true ? '' : ', resource'}, outcome and time (UTC).</p>
      <form class="filters" method="get" action={PATHS.sessions}>
        <label>
          Agent
          <input name="agent" value={f.agent ?? ''} maxlength={512} />
        </label>
        {m.chrome.masked === true ? null : (
          // A masked reader filtering on a resource's real value would learn it from the answer, so the server refuses that filter; the form does not offer it.
          <label>
            Resource
            <input name="resource" value={f.resource ?? ''} maxlength={4096} />
          </label>
        )}
        <label>
          Outcome
          <select name="outcome">
            <option value="">any</option>
            {[...new Set<string>([...OUTCOMES, 'expired'])].map((o) => (
              <option value={o} selected={f.outcome === o}>
                {o}
              </option>
            ))}
          </select>
        </label>
        <label>
          From (UTC)
          <input type="datetime-local" name="since" value={localValue(f.since)} />
        </label>
        <label>
          Until (UTC)
          <input type="datetime-local" name="until" value={localValue(f.until)} />
        </label>
        <button class="primary" type="submit">
          Filter
        </button>
        {filtered ? (
          <a class="button" href={PATHS.sessions}>
            Clear
          </a>
        ) : null}
      </form>
      {m.sessions.length === 0 ? (
        <p class="notice">{filtered ? 'No session matches these filters.' : 'No session has been recorded yet.'}</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Session</th>
              <th>Agent</th>
              <th>Started</th>
              <th>Ended</th>
              <th class="num">Events</th>
              <th class="num">Tool calls</th>
              <th class="num">Denials</th>
              <th class="num">Approvals</th>
            </tr>
          </thead>
          <tbody>
            {m.sessions.map((s) => (
              <tr>
                <td>
                  <a class="mono" href={sessionPath(s.id)}>
                    {s.id}
                  </a>
                </td>
                <td>{s.agent}</td>
                <td>{showTime(s.started)}</td>
                <td>{s.ended === undefined ? <span class="badge review">open</span> : `${showTime(s.ended)}${s.endReason === undefined ? '' : ` (${s.endReason})`}`}</td>
                <td class="num">{s.counts.events}</td>
                <td class="num">{s.counts.toolCalls}</td>
                <td class="num">{s.counts.denials === 0 ? '0' : <span class="badge denied">{s.counts.denials}</span>}</td>
                <td class="num">{s.counts.approvals}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <nav class="paging" aria-label="Pages">
        {m.cursor === undefined ? null : <a href={pageLink(f, undefined)}>First page</a>}
        {m.next === undefined ? null : <a href={pageLink(f, m.next)}>Next page</a>}
      </nav>
    </Layout>,
  );
}
