/**
 * The edit throttle (pure, fake timers): at most one run per interval, requests made meanwhile coalesced into
 * the next run, and an urgent request (the final edit) run without waiting for the interval.
 */
import { CoalescingThrottle } from "../../src/discord/throttle";

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

/** A throttle whose runs are counted; each run takes `runMs`. */
function counted(intervalMs: number, runMs = 0) {
  const runs: number[] = [];
  const throttle = new CoalescingThrottle(intervalMs, async () => {
    runs.push(Date.now());
    if (runMs) await new Promise((resolve) => setTimeout(resolve, runMs));
  });
  return { throttle, runs };
}

it("runs the first request at once and coalesces the requests of the next interval into one run", async () => {
  const { throttle, runs } = counted(1000);
  throttle.request();
  await jest.advanceTimersByTimeAsync(0);
  expect(runs).toHaveLength(1);
  for (let i = 0; i < 10; i++) {
    throttle.request();
    await jest.advanceTimersByTimeAsync(50);
  }
  expect(runs).toHaveLength(1); // 500 ms later: still within the interval
  await jest.advanceTimersByTimeAsync(500);
  expect(runs).toHaveLength(2);
  expect(runs[1] - runs[0]).toBeGreaterThanOrEqual(1000);
  await jest.advanceTimersByTimeAsync(5000);
  expect(runs).toHaveLength(2); // nothing requested since
});

it("runs an urgent request without waiting for the interval", async () => {
  const { throttle, runs } = counted(60_000);
  throttle.request();
  await jest.advanceTimersByTimeAsync(0);
  throttle.request();
  await jest.advanceTimersByTimeAsync(100);
  expect(runs).toHaveLength(1);
  throttle.request(true);
  await jest.advanceTimersByTimeAsync(0);
  expect(runs).toHaveLength(2);
});

it("never runs twice at once: a request during a run waits for it, and idle() resolves when all is done", async () => {
  const { throttle, runs } = counted(0, 300);
  throttle.request();
  await jest.advanceTimersByTimeAsync(10);
  throttle.request(true);
  throttle.request(true);
  await jest.advanceTimersByTimeAsync(100);
  expect(runs).toHaveLength(1); // the first is still running
  let idle = false;
  void throttle.idle().then(() => (idle = true));
  await jest.advanceTimersByTimeAsync(300);
  expect(runs).toHaveLength(2); // the two requests made during the run became one
  expect(idle).toBe(false);
  await jest.advanceTimersByTimeAsync(300);
  expect(idle).toBe(true);
});

it("runs nothing after dispose()", async () => {
  const { throttle, runs } = counted(1000);
  throttle.request();
  await jest.advanceTimersByTimeAsync(0);
  throttle.request();
  throttle.dispose();
  await jest.advanceTimersByTimeAsync(5000);
  expect(runs).toHaveLength(1);
  await expect(throttle.idle()).resolves.toBeUndefined();
});
