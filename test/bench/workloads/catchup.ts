/** Catching up with the whole log: every reader from the start, `readRounds` times, order rotating. */
import { Effect, Stream } from "effect"
import { readRounds, readSeconds, sizes } from "../config.ts"
import { now } from "../domain.ts"
import { type Summary, summarize } from "../stats.ts"

export interface Reader {
  readonly label: string
  /** Reads the log from its start and returns the rows it handled within `readSeconds`. */
  readonly run: (round: number) => Effect.Effect<number, unknown>
}

export interface CatchUpResult {
  /** rows per second, one sample per round */
  readonly rate: Summary
  /** the fewest rows a round managed, when a round ran out of its time budget */
  readonly partial: number | undefined
}

/** A stream read to its end, or until the time budget runs out. */
export const drain = (stream: Stream.Stream<unknown, unknown>, limit?: number) =>
  Effect.gen(function* () {
    let rows = 0
    const deadline = now() + readSeconds * 1000
    yield* (limit === undefined ? stream : Stream.take(stream, limit)).pipe(
      Stream.takeWhile(() => now() < deadline),
      Stream.runForEachArray((batch) =>
        Effect.sync(() => {
          rows += batch.length
        })
      )
    )
    return rows
  })

export const compareCatchUps = (readers: ReadonlyArray<Reader>) =>
  Effect.gen(function* () {
    const rates = new Map(readers.map((r) => [r.label, [] as Array<number>]))
    const partial = new Map<string, number>()
    for (let round = 0; round < readRounds; round++) {
      const k = round % readers.length
      for (const reader of [...readers.slice(k), ...readers.slice(0, k)]) {
        const start = now()
        const rows = yield* reader.run(round)
        const elapsed = now() - start
        const perSecond = (rows / elapsed) * 1000
        rates.get(reader.label)!.push(perSecond)
        if (rows < sizes.log) {
          partial.set(reader.label, Math.min(partial.get(reader.label) ?? Number.POSITIVE_INFINITY, rows))
        }
        yield* Effect.logInfo(`catch-up: ${reader.label} round ${round + 1}/${readRounds}`).pipe(
          Effect.annotateLogs({
            rows,
            of: sizes.log,
            ms: Math.round(elapsed),
            rowsPerSec: Math.round(perSecond),
            ...(rows < sizes.log ? { stoppedBy: `the ${readSeconds} s budget` } : {})
          })
        )
      }
    }
    return new Map(
      readers.map((r) => [
        r.label,
        { rate: summarize(rates.get(r.label)!), partial: partial.get(r.label) } satisfies CatchUpResult
      ])
    )
  })
