/** The checkpoint body a signed note's signatures are over: everything up to the last blank line, with its newline. */
export function checkpointBodyOf(note: string): string {
  const i = note.lastIndexOf('\n\n');
  return i < 0 ? note : note.slice(0, i + 1);
}
