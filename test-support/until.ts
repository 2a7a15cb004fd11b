// Waiting in tests for something that happens in the background (a tracker's program attaching, a
// writer's appends landing), with a deadline that names what never came.

/** Polls cond every 5 ms until it holds; fails naming `what` after timeoutMs. */
export async function until(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
