import { BarChart, LineChart } from './chart.js';
import { showDuration, showTime } from './format.js';
import { Layout, renderDocument } from './layout.js';
import type { OverviewPageModel } from './model.js';
import { PATHS } from './paths.js';

/** The overview: totals for the window and small server-drawn charts over time. */

/** A bucket start as a short axis label: the time when the window is within a day, else the date. */
function label(iso: string, spanMs: number): string {
  return spanMs <= 86_400_000 ? `${iso.slice(11, 16)} UTC` : iso.slice(0, 10);
}

export function renderOverviewPage(m: OverviewPageModel): string {
  const span = Date.parse(m.to) - Date.parse(m.from);
  const labels = m.buckets.map((b) => label(b.start, span));
  const t = m.totals;
  return renderDocument(
    <Layout title="Overview" chrome={{ ...m.chrome, active: 'overview', pendingApprovals: t.pendingApprovals }}>
      <h1>Overview</h1>
      <p class="sub">
        From {showTime(m.from)} to {showTime(m.to)}
        {m.checkpoint === undefined ? ' · no signed checkpoint yet' : ` · newest checkpoint covers ${m.checkpoint.size.toLocaleString('en-US')} events, signed ${showTime(m.checkpoint.ts)}`}
      </p>
      <div class="totals">
        <div>
          <b>{t.sessions.toLocaleString('en-US')}</b>
          <a href={PATHS.sessions}>sessions</a>
        </div>
        <div>
          <b>{t.events.toLocaleString('en-US')}</b>events
        </div>
        <div>
          <b>{t.toolCalls.toLocaleString('en-US')}</b>tool calls
        </div>
        <div>
          <b>{t.denials.toLocaleString('en-US')}</b>denials
        </div>
        <div>
          <b>{t.approvals.toLocaleString('en-US')}</b>approvals
        </div>
        <div>
          <b>{t.pendingApprovals.toLocaleString('en-US')}</b>
          <a href={PATHS.approvals}>waiting for a decision</a>
        </div>
        <div>
          <b>{t.recordingErrors.toLocaleString('en-US')}</b>recording errors
        </div>
      </div>
      <div class="charts">
        <BarChart
          title="Events and tool calls"
          labels={labels}
          series={[
            { name: 'events', values: m.buckets.map((b) => b.events) },
            { name: 'tool calls', values: m.buckets.map((b) => b.toolCalls) },
          ]}
        />
        <BarChart
          title="Approvals and denials"
          labels={labels}
          series={[
            { name: 'approvals', values: m.buckets.map((b) => b.approvals) },
            { name: 'denials', values: m.buckets.map((b) => b.denials) },
          ]}
        />
        <LineChart title="Time approvals waited for a person (mean)" labels={labels} series={[{ name: 'wait', values: m.buckets.map((b) => b.approvalWaitMs ?? Number.NaN) }]} format={showDuration} />
        <BarChart title="Recording errors (recorder, gateway, capture)" labels={labels} series={[{ name: 'recording errors', values: m.buckets.map((b) => b.recordingErrors) }]} />
      </div>
    </Layout>,
  );
}
