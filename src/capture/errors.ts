/** The first line of an error's message, without its closing full stop. */
export function firstLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  // Playwright's messages carry a call log after the first line; one sentence is what a person needs.
  return (m.split('\n')[0] ?? m).replace(/[.\s]+$/, '');
}
