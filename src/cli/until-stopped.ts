/**
 * Resolves on the first SIGINT or SIGTERM, and stops listening for both: the long-running commands
 * (`serve`, `gateway`, `demo --open`) then close what they hold, so every acknowledged event is
 * committed before the process exits.
 */
export function untilStopped(): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}
