/**
 * How Witness finds its own entries in a coding agent's hook settings again: every hook command
 * `witness hooks install` writes ends with the argument {@link HOOK_MARK} (which `witness hook`
 * accepts and ignores). An entry is Witness's when its command is `… hook <kind> …` and ends with
 * that argument, nothing looser: another tool's command that merely contains ` hook claude-code`
 * (issue 16 review, M4 U1) is not Witness's, so install does not skip an event for it and
 * uninstall never deletes it. The mark is an argument, not a shell comment or an extra JSON key,
 * so it survives every agent's way of running a command and every settings schema.
 */

/** The last argument of every hook command Witness installs. */
export const HOOK_MARK = '--installed-by=witness-hooks-install';

/** Whether `command` is a Witness hook command for the coding agent `kind`, as install writes it. */
export function isWitnessHookCommand(command: unknown, kind: string): boolean {
  return typeof command === 'string' && command.endsWith(` ${HOOK_MARK}`) && command.includes(` hook ${kind} `);
}
