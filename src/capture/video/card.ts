import type { Step } from './storyboard.js';

/** A title card as an HTML document (rendered by Chromium with scripts off); every value escaped. */
const TONES: Record<Step['tone'], { bg: string; label: string }> = {
  neutral: { bg: '#334155', label: '' },
  ok: { bg: '#15803d', label: 'ALLOWED' },
  denied: { bg: '#b91c1c', label: 'REFUSED' },
  review: { bg: '#b45309', label: 'REVIEW' },
  error: { bg: '#7c2d12', label: 'FAILED' },
};

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function cardHtml(step: Step, footer: string): string {
  const tone = TONES[step.tone];
  const badge = tone.label === '' ? '' : `<span class="badge" style="background:${tone.bg}">${tone.label}</span>`;
  const rows = step.rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('');
  return `<!doctype html><html><head><meta charset="utf-8"><style>
  html, body { margin: 0; width: 1280px; height: 720px; background: #0f172a; color: #e2e8f0; font-family: 'DejaVu Sans', sans-serif; }
  .bar { height: 14px; background: ${tone.bg}; }
  main { padding: 48px 64px; }
  h1 { font-size: 46px; margin: 0 0 28px; color: #f8fafc; }
  .badge { font-size: 22px; padding: 6px 14px; border-radius: 6px; margin-left: 18px; vertical-align: middle; color: #fff; letter-spacing: 1px; }
  table { border-collapse: collapse; width: 100%; font-size: 26px; }
  th { text-align: left; color: #94a3b8; font-weight: normal; width: 190px; vertical-align: top; padding: 8px 0; }
  td { padding: 8px 0; word-break: break-word; line-height: 1.3; }
  footer { position: absolute; bottom: 24px; left: 64px; right: 64px; font-size: 16px; color: #64748b; font-family: 'DejaVu Sans Mono', monospace; }
</style></head><body><div class="bar"></div><main><h1>${escapeHtml(step.heading)}${badge}</h1><table>${rows}</table></main><footer>${escapeHtml(footer)}</footer></body></html>`;
}
