/** Aggregate loads: every contender loads the same-sized stream, `loadsPerRound` times a round, the order rotating. */
import { Effect } from "effect"
import { loadsPerRound, rounds } from "../config.ts"
import { rotated, timed } from "../domain.ts"
import { ms, type Summary, summarize } from "../stats.ts"

export interface Contender {
  readonly label: string
  /** Loads the aggregate and returns how many events it folded (checked against `folded`, when set). */
  readonly load: Effect.Effect<number, unknown>
  readonly folded?: number | undefined
}

export interface LoadResult {
  /** milliseconds per load */
  readonly latency: Summary
  readonly folded: number
}

export const compareLoads = (name: string, contenders: ReadonlyArray<Contender>) =>
  Effect.gen(function* () {
    const samples = new Map(contenders.map((c) => [c.label, [] as Array<number>]))
    const folded = new Map<string, number>()
    for (let round = -1; round < rounds; round++) {
      const order = rotated(contenders, round + 1)
      for (const contender of order) {
        for (let i = 0; i < loadsPerRound; i++) {
          const { value, ms: elapsed } = yield* timed(contender.load)
          if (contender.folded !== undefined && value !== contender.folded) {
            return yield* Effect.die(new Error(`${name} ${contender.label}: folded ${value}, not ${contender.folded}`))
          }
          folded.set(contender.label, value)
          if (round >= 0) samples.get(contender.label)!.push(elapsed)
        }
      }
    }
    const results = new Map<string, LoadResult>()
    for (const c of contenders) {
      const latency = summarize(samples.get(c.label)!)
      results.set(c.label, { latency, folded: folded.get(c.label) ?? 0 })
      yield* Effect.logInfo(`${name}: ${c.label}`).pipe(
        Effect.annotateLogs({ folded: folded.get(c.label), medianMs: ms(latency.median), p99Ms: ms(latency.p99) })
      )
    }
    return results
  })
