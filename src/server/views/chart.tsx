import type { FC } from 'hono/jsx';

/**
 * Small charts drawn as SVG on the server: no script, no library, and they print. Sizes are in the
 * SVG's own units (the viewBox); CSS scales the whole chart to its box. Colours come from the
 * stylesheet through classes (`s0`, `s1`, `s2` per series), since inline styles are refused by the CSP.
 */

export interface Series {
  name: string;
  values: readonly number[];
}

export interface ChartProps {
  title: string;
  /** One label per value, e.g. bucket start times; the first and last are printed under the axis. */
  labels: readonly string[];
  series: readonly Series[];
  /** How a value reads in the summary and axis, e.g. `showDuration`. */
  format?: (v: number) => string;
}

const W = 480;
const H = 160;
const PAD = { top: 10, right: 8, bottom: 22, left: 64 };

function scaleMax(values: readonly number[]): number {
  const m = Math.max(0, ...values.filter((v) => Number.isFinite(v)));
  if (m === 0) return 1;
  const p = 10 ** Math.floor(Math.log10(m));
  for (const f of [1, 2, 2.5, 5, 10]) if (f * p >= m) return f * p;
  return 10 * p;
}

function r(n: number): string {
  return String(Math.round(n * 10) / 10);
}

function summary(props: ChartProps): string {
  const fmt = props.format ?? ((v: number) => v.toLocaleString('en-US'));
  return props.series
    .map((s) => {
      const finite = s.values.filter((v) => Number.isFinite(v));
      if (finite.length === 0) return `${s.name}: no data in this period`;
      const total = finite.reduce((a, b) => a + b, 0);
      const peak = Math.max(0, ...finite);
      return props.format === undefined ? `${s.name}: ${fmt(total)} in all, at most ${fmt(peak)} per interval` : `${s.name}: at most ${fmt(peak)}`;
    })
    .join('; ');
}

const Axes: FC<{ max: number; labels: readonly string[]; format?: ((v: number) => string) | undefined }> = ({ max, labels, format }) => {
  const fmt = format ?? ((v: number) => v.toLocaleString('en-US'));
  return (
    <g>
      <line class="axis" x1={PAD.left} y1={H - PAD.bottom} x2={W - PAD.right} y2={H - PAD.bottom} />
      <line class="axis" x1={PAD.left} y1={PAD.top} x2={PAD.left} y2={H - PAD.bottom} />
      <text x={PAD.left - 4} y={PAD.top + 8} text-anchor="end">
        {fmt(max)}
      </text>
      <text x={PAD.left - 4} y={H - PAD.bottom} text-anchor="end">
        0
      </text>
      <text x={PAD.left} y={H - 6}>
        {labels[0] ?? ''}
      </text>
      <text x={W - PAD.right} y={H - 6} text-anchor="end">
        {labels[labels.length - 1] ?? ''}
      </text>
    </g>
  );
};

const Legend: FC<{ series: readonly Series[] }> = ({ series }) =>
  series.length < 2 ? null : (
    <ul class="legend">
      {series.map((s, i) => (
        <li>
          <span class={`key s${i}`}></span>
          {s.name}
        </li>
      ))}
    </ul>
  );

/** Grouped bars: one group per label, one bar per series. */
export const BarChart: FC<ChartProps> = (props) => {
  const n = props.labels.length;
  const max = scaleMax(props.series.flatMap((s) => s.values));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const group = n === 0 ? plotW : plotW / n;
  const k = Math.max(1, props.series.length);
  const bar = Math.max(1, (group * 0.8) / k);
  const text = summary(props);
  return (
    <figure class="chart">
      <figcaption>{props.title}</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${props.title}. ${text}`} xmlns="http://www.w3.org/2000/svg">
        <title>{`${props.title}. ${text}`}</title>
        <Axes max={max} labels={props.labels} format={props.format} />
        {props.series.map((s, si) =>
          s.values.map((v, i) => {
            const h = Number.isFinite(v) && v > 0 ? (v / max) * plotH : 0;
            return h === 0 ? null : (
              <rect class={`bar s${si}`} x={r(PAD.left + i * group + group * 0.1 + si * bar)} y={r(H - PAD.bottom - h)} width={r(bar)} height={r(h)}>
                <title>{`${props.labels[i] ?? ''}: ${(props.format ?? ((x: number) => x.toLocaleString('en-US')))(v)} ${s.name}`}</title>
              </rect>
            );
          }),
        )}
      </svg>
      <Legend series={props.series} />
      <p class="sub">{text}</p>
    </figure>
  );
};

/** One line per series; a value that is not a number (no data in that interval) breaks the line. */
export const LineChart: FC<ChartProps> = (props) => {
  const n = props.labels.length;
  const max = scaleMax(props.series.flatMap((s) => s.values));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const x = (i: number) => PAD.left + (n <= 1 ? plotW / 2 : (i / (n - 1)) * plotW);
  const y = (v: number) => H - PAD.bottom - (v / max) * plotH;
  const text = summary(props);
  return (
    <figure class="chart">
      <figcaption>{props.title}</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${props.title}. ${text}`} xmlns="http://www.w3.org/2000/svg">
        <title>{`${props.title}. ${text}`}</title>
        <Axes max={max} labels={props.labels} format={props.format} />
        {props.series.map((s) => {
          const runs: string[] = [];
          let cur: string[] = [];
          s.values.forEach((v, i) => {
            if (Number.isFinite(v)) cur.push(`${r(x(i))},${r(y(v))}`);
            else if (cur.length > 0) {
              runs.push(cur.join(' '));
              cur = [];
            }
          });
          if (cur.length > 0) runs.push(cur.join(' '));
          return (
            <g>
              {runs.map((pts) => (
                <polyline class="line" points={pts} />
              ))}
              {s.values.map((v, i) => (Number.isFinite(v) ? <circle class="dot" cx={r(x(i))} cy={r(y(v))} r="2.5" /> : null))}
            </g>
          );
        })}
      </svg>
      <Legend series={props.series} />
      <p class="sub">{text}</p>
    </figure>
  );
};
