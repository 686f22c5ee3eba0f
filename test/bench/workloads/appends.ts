/** Appends: single events or 100-event batches with the exact expected version, one stream per writer. */
import { Effect } from "effect"
import { rounds } from "../config.ts"
import { eventData, now, range, type System } from "../domain.ts"
import { type Summary, summarize } from "../stats.ts"

export interface WriteResult {
  /** events per second, one sample per measured round */
  readonly rate: Summary
  /** milliseconds per append, every append of the measured rounds */
  readonly latency: Summary
}

/** A warm-up round, then `rounds` rounds, the systems' order reversed every other round. */
export const compareWrites = (
  name: string,
  systems: ReadonlyArray<System>,
  writerCount: number,
  appends: number,
  perAppend: number
) =>
  Effect.gen(function* () {
    const total = writerCount * appends * perAppend
    const rates = new Map(systems.map((s) => [s.label, [] as Array<number>]))
    const latencies = new Map(systems.map((s) => [s.label, [] as Array<number>]))
    for (let round = -1; round < rounds; round++) {
      const order = round % 2 === 0 ? systems : [...systems].reverse()
      for (const system of order) {
        const tag = `${name}${system.label.replace(/\W/g, "")}r${round + 1}`
        const ops: Array<number> = []
        const start = now()
        yield* Effect.forEach(
          range(writerCount),
          (w) =>
            Effect.gen(function* () {
              const streamId = `Bench-${tag}w${w}`
              for (let i = 0; i < appends; i++) {
                const events = range(perAppend).map((k) => eventData(i * perAppend + k + 1))
                const t = now()
                yield* system.append(streamId, i * perAppend, events)
                ops.push(now() - t)
              }
            }),
          { concurrency: writerCount, discard: true }
        )
        const elapsed = now() - start
        const perSecond = (total / elapsed) * 1000
        if (round >= 0) {
          rates.get(system.label)!.push(perSecond)
          latencies.get(system.label)!.push(...ops)
        }
        yield* Effect.logInfo(
          `${name}: ${system.label} ${round < 0 ? "warm-up" : `round ${round + 1}/${rounds}`}`
        ).pipe(Effect.annotateLogs({ events: total, ms: Math.round(elapsed), eventsPerSec: Math.round(perSecond) }))
      }
    }
    return new Map(
      systems.map((s) => [
        s.label,
        { rate: summarize(rates.get(s.label)!), latency: summarize(latencies.get(s.label)!) } satisfies WriteResult
      ])
    )
  })
