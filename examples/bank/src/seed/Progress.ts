/**
 * Progress of a long task on stderr: one line that updates in place (a bar, the percentage and a rate) when stderr is
 * a terminal, and a structured log line every few seconds otherwise (CI, pipes, files).
 */
import { Effect } from "effect"

/**
 * A progress reporter.
 */
export interface Progress {
  /** Reports `done` of `total` units, and `events` appended so far (for the rate). */
  readonly update: (done: number, events: number) => Effect.Effect<void>
  /** Ends the line (terminal) or logs the last line. */
  readonly finish: (summary: string) => Effect.Effect<void>
}

const width = 28

const bar = (fraction: number) => {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width)
  return `${"█".repeat(filled)}${"░".repeat(width - filled)}`
}

/**
 * A reporter for a task of `total` units named `label`. `tty` defaults to whether stderr is a terminal.
 */
export const make = (
  label: string,
  total: number,
  options?: { readonly tty?: boolean | undefined; readonly logEvery?: number | undefined }
): Progress => {
  const tty = options?.tty ?? process.stderr.isTTY === true
  const logEvery = options?.logEvery ?? 5_000
  const started = Date.now()
  let lastRender = 0
  let lastLog = started
  const rate = (events: number) => Math.round((events * 1000) / Math.max(1, Date.now() - started))
  const percent = (done: number) => (total === 0 ? 100 : Math.floor((done * 100) / total))
  return {
    update: (done, events) =>
      Effect.suspend(() => {
        const now = Date.now()
        if (tty) {
          if (now - lastRender < 100 && done < total) return Effect.void
          lastRender = now
          const line = `${label} ${bar(total === 0 ? 1 : done / total)} ${String(percent(done)).padStart(3)}% ${done}/${total} · ${events} events · ${rate(events)} events/s`
          return Effect.sync(() => process.stderr.write(`\r${line}\u001b[K`))
        }
        if (now - lastLog < logEvery) return Effect.void
        lastLog = now
        return Effect.logInfo(`${label} in progress`).pipe(
          Effect.annotateLogs({ done, total, percent: percent(done), events, eventsPerSecond: rate(events) })
        )
      }),
    finish: (summary) =>
      tty
        ? Effect.sync(() => process.stderr.write(`\r${label} ${bar(1)} 100% · ${summary}\u001b[K\n`))
        : Effect.logInfo(`${label} done: ${summary}`)
  }
}
