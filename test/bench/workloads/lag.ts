/**
 * Append-to-projection lag: a projection tails the log live while `lagRate` single-event appends a second (each to a
 * new stream, expected version 0) run for `lagSeconds`; the lag of an event is the time from its append being
 * acknowledged to its handler call (0 when the handler ran before the acknowledgement reached the writer).
 */
import { Effect, Fiber } from "effect"
import { lagRate, lagRounds, lagSeconds } from "../config.ts"
import { eventData, now, type System, type Tail } from "../domain.ts"
import { ms, type Summary, summarize } from "../stats.ts"

export interface Contender {
  readonly system: System
  readonly tail: (round: number) => Tail
}

export interface LagResult {
  /** milliseconds from acknowledgement to handler, every event of every round */
  readonly lag: Summary
  /** the per-round medians, for the spread */
  readonly roundMedians: Summary
  readonly events: number
  readonly beforeAck: number
  readonly lost: number
  readonly achievedRate: number
}

const oneRound = (contender: Contender, round: number) =>
  Effect.scoped(
    Effect.gen(function* () {
      const prefix = `Lag${contender.system.label.replace(/\W/g, "")}r${round}`
      const acked = new Map<number, number>()
      const handledAt = new Map<number, number>()
      let ready = false
      yield* contender.tail(round)((streamId, amount) => {
        if (!streamId.startsWith(prefix)) return
        if (streamId.startsWith(`${prefix}-ready`)) ready = true
        else if (!handledAt.has(amount)) handledAt.set(amount, now())
      })
      // the tail has caught up once it handles a marker appended after it started (retried: a tail that starts
      // "from the end" may not have read the end yet when the first marker lands)
      for (let i = 0; !ready; i++) {
        if (i >= 120) return yield* Effect.die(new Error(`${prefix}: the tail never caught up`))
        yield* contender.system.append(`${prefix}-ready${i}`, 0, [eventData(1)])
        for (let j = 0; j < 20 && !ready; j++) yield* Effect.sleep("50 millis")
      }
      const total = Math.max(1, Math.round(lagRate * lagSeconds))
      const interval = 1000 / lagRate
      const start = now()
      const fibers: Array<Fiber.Fiber<void, unknown>> = []
      for (let i = 1; i <= total; i++) {
        const wait = start + (i - 1) * interval - now()
        if (wait > 0) yield* Effect.sleep(`${wait} millis`)
        const fiber = yield* Effect.forkChild(
          Effect.map(contender.system.append(`${prefix}-${i}`, 0, [eventData(i)]), () => {
            acked.set(i, now())
          })
        )
        fibers.push(fiber)
      }
      yield* Fiber.joinAll(fibers)
      const achievedRate = (total / (now() - start)) * 1000
      const deadline = now() + 10_000
      while (handledAt.size < total && now() < deadline) yield* Effect.sleep("20 millis")
      const lags: Array<number> = []
      let beforeAck = 0
      for (const [i, at] of handledAt) {
        const ack = acked.get(i)!
        if (at < ack) beforeAck++
        lags.push(Math.max(0, at - ack))
      }
      const summary = summarize(lags)
      yield* Effect.logInfo(`lag: ${contender.system.label} round ${round + 1}/${lagRounds}`).pipe(
        Effect.annotateLogs({
          events: total,
          handled: handledAt.size,
          appendsPerSec: Math.round(achievedRate),
          p50Ms: ms(summary.median),
          p99Ms: ms(summary.p99)
        })
      )
      return { lags, beforeAck, lost: total - handledAt.size, achievedRate, total }
    })
  )

export const compareLag = (contenders: ReadonlyArray<Contender>) =>
  Effect.gen(function* () {
    const results = new Map<string, LagResult>()
    const all = new Map(
      contenders.map((c) => [c.system.label, [] as Array<Effect.Success<ReturnType<typeof oneRound>>>])
    )
    for (let round = 0; round < lagRounds; round++) {
      const order = round % 2 === 0 ? contenders : [...contenders].reverse()
      for (const contender of order) all.get(contender.system.label)!.push(yield* oneRound(contender, round))
    }
    for (const [label, runs] of all) {
      results.set(label, {
        lag: summarize(runs.flatMap((r) => r.lags)),
        roundMedians: summarize(runs.map((r) => summarize(r.lags).median)),
        events: runs.reduce((n, r) => n + r.total, 0),
        beforeAck: runs.reduce((n, r) => n + r.beforeAck, 0),
        lost: runs.reduce((n, r) => n + r.lost, 0),
        achievedRate: summarize(runs.map((r) => r.achievedRate)).median
      })
    }
    return results
  })
