/** Appends: single events or 100-event batches with the exact expected version, one stream per writer. */
import { Effect } from "effect"
import { rounds, slices } from "../config.ts"
import { eventData, now, range, rotated, type System } from "../domain.ts"
import { type Summary, summarize } from "../stats.ts"

export interface WriteResult {
  /** events per second, one sample per measured round, in round order (so systems compare round by round) */
  readonly rates: ReadonlyArray<number>
  /** milliseconds per append, every append of the measured rounds */
  readonly latency: Summary
}

/**
 * A warm-up round, then `rounds` rounds. A round is cut into `slices` turns, and in every turn each system makes its
 * share of the round's appends, the systems' order rotating from turn to turn: every system's round spans the same
 * stretch of time, so drift on a noisy machine (seconds long, up to 2x) hits all of them alike.
 */
export const compareWrites = (
  name: string,
  systems: ReadonlyArray<System>,
  writerCount: number,
  appends: number,
  perAppend: number
) =>
  Effect.gen(function* () {
    const total = writerCount * appends * perAppend
    const turns = Math.min(slices, appends)
    const rates = new Map(systems.map((s) => [s.label, [] as Array<number>]))
    const latencies = new Map(systems.map((s) => [s.label, [] as Array<number>]))
    for (let round = -1; round < rounds; round++) {
      const elapsed = new Map(systems.map((s) => [s.label, 0]))
      const ops = new Map(systems.map((s) => [s.label, [] as Array<number>]))
      for (let turn = 0; turn < turns; turn++) {
        const from = Math.floor((turn * appends) / turns)
        const to = Math.floor(((turn + 1) * appends) / turns)
        for (const system of rotated(systems, (round + 1) * turns + turn)) {
          const tag = `${name}${system.label.replace(/\W/g, "")}r${round + 1}`
          const start = now()
          yield* Effect.forEach(
            range(writerCount),
            (w) =>
              Effect.gen(function* () {
                const streamId = `Bench-${tag}w${w}`
                for (let i = from; i < to; i++) {
                  const events = range(perAppend).map((k) => eventData(i * perAppend + k + 1))
                  const t = now()
                  yield* system.append(streamId, i * perAppend, events)
                  ops.get(system.label)!.push(now() - t)
                }
              }),
            { concurrency: writerCount, discard: true }
          )
          elapsed.set(system.label, elapsed.get(system.label)! + now() - start)
        }
      }
      for (const system of systems) {
        const ms = elapsed.get(system.label)!
        const perSecond = (total / ms) * 1000
        if (round >= 0) {
          rates.get(system.label)!.push(perSecond)
          latencies.get(system.label)!.push(...ops.get(system.label)!)
        }
        yield* Effect.logInfo(
          `${name}: ${system.label} ${round < 0 ? "warm-up" : `round ${round + 1}/${rounds}`}`
        ).pipe(Effect.annotateLogs({ events: total, ms: Math.round(ms), eventsPerSec: Math.round(perSecond) }))
      }
    }
    return new Map(
      systems.map((s) => [
        s.label,
        { rates: rates.get(s.label)!, latency: summarize(latencies.get(s.label)!) } satisfies WriteResult
      ])
    )
  })
