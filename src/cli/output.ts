/** The only place the CLI writes to the terminal, so tests can capture everything. */
export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  isTTY: boolean;
}

export const processIo: Io = {
  out: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
  err: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
  isTTY: process.stdout.isTTY === true,
};

export function printJson(io: Io, value: unknown): void {
  io.out(JSON.stringify(value, null, 2));
}

/** A plain aligned table; columns are cut to keep one event per line. */
export function table(headers: string[], rows: string[][], maxWidth = 48): string {
  const cut = (s: string) => (s.length > maxWidth ? `${s.slice(0, maxWidth - 1)}…` : s);
  const cells = [headers, ...rows].map((r) => r.map(cut));
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}

/** A one-line progress indicator on a TTY; silent otherwise (logs stay clean). */
export function progress(io: Io, label: string): { update: (done: number, total: number) => void; done: () => void } {
  if (!io.isTTY || process.stderr.isTTY !== true) return { update: () => undefined, done: () => undefined };
  let last = 0;
  return {
    update(done, total) {
      const now = Date.now();
      if (now - last < 100 && done < total) return;
      last = now;
      const pct = total > 0 ? Math.floor((done / total) * 100) : 100;
      process.stderr.write(`\r${label} ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')} (${pct}%)`);
    },
    done() {
      process.stderr.write('\r\x1b[K');
    },
  };
}
