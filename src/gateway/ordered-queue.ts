/**
 * Tasks run one after another, in the order they were pushed, each after the previous one has
 * settled (async tasks included). The relay keeps two: client frames, which must reach the server
 * in the order the client sent them although recording a call is asynchronous, and server frames
 * behind an `after` capture, which must reach the client in the order the server sent them.
 *
 * A task that throws or rejects goes to `onError` and does not stop the tasks behind it.
 */
export class OrderedQueue {
  private tail: Promise<void> = Promise.resolve();
  private waiting = 0;

  constructor(private readonly onError: (e: unknown) => void) {}

  /** True while a pushed task has not yet settled: a caller that must keep order queues behind it. */
  get busy(): boolean {
    return this.waiting > 0;
  }

  push(task: () => void | Promise<void>): void {
    this.waiting += 1;
    this.tail = this.tail
      .then(task)
      .catch((e: unknown) => this.report(e))
      .finally(() => {
        this.waiting -= 1;
      });
  }

  /** Resolves once every task pushed so far has settled (tasks pushed meanwhile are not waited for). */
  drained(): Promise<void> {
    return this.tail;
  }

  private report(e: unknown): void {
    try {
      this.onError(e);
    } catch {
      // A failing error handler must not break the order of the tasks behind it.
    }
  }
}
