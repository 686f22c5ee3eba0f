/**
 * Integration events out of the log (issue 23), for each broker of systems/brokers.ts:
 *
 * - relay throughput: a log of `sizes.relayLog` events over `relayStreams` streams, generated on the server, relayed
 *   from its start by `Relay.run(..., { untilCaughtUp: true })` with PgCheckpointStore (lease, checkpoint after each
 *   page's acknowledgements) into a fresh destination; beside it the direct-publish baseline, the same messages
 *   published straight to the broker on the same client (no log, no checkpoint). `relayRounds` rounds of each,
 *   alternating which goes first; every round's destination must then hold exactly the log's events.
 * - append → inbox-handled lag: the relay tails the log live (on from the last throughput round's checkpoint, at the
 *   end of the log) into a fresh destination, an inbox (the broker's consumer with PgInboxStore) reads it, and
 *   `relayRate` single-event appends a second run for `relaySeconds`; the lag of an event is the time from its append
 *   being acknowledged to the inbox's handler call. Every appended event must reach the handler exactly once, or the
 *   workload fails.
 */
import { CheckpointStore, EventStore, Inbox, IntegrationEvent, Relay } from "@facta/core"
import { PgCheckpointStore, PgInboxStore } from "@facta/postgres"
import { Effect, Fiber, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { relayRate, relayRounds, relaySeconds, relayStreams, sizes } from "../config.ts"
import { eventData, now, type System } from "../domain.ts"
import { ms, rate, type Summary, summarize } from "../stats.ts"
import type { Broker } from "../systems/brokers.ts"

export interface RelayThroughput {
  readonly events: number
  /** events/s of each round */
  readonly relayRates: ReadonlyArray<number>
  readonly baselineRates: ReadonlyArray<number>
}

export interface RelayLag {
  /** milliseconds from an append's acknowledgement to the inbox handler's call, every appended event */
  readonly lag: Summary
  readonly appended: number
  readonly delivered: number
  readonly beforeAck: number
  readonly achievedRate: number
}

export type RelayResult =
  | { readonly label: string; readonly skipped: string }
  | { readonly label: string; readonly throughput: RelayThroughput; readonly lag: RelayLag }

/** The log of the throughput test: `n` events over `streams` streams, in 100,000-row transactions. */
const seedLog = Effect.fnUntraced(function* (schema: string, n: number, streams: number) {
  const sql = yield* SqlClient.SqlClient
  const s = sql(schema)
  yield* sql.unsafe(`TRUNCATE ${schema}.events, ${schema}.streams, ${schema}.snapshots RESTART IDENTITY`)
  for (let from = 1; from <= n; from += 100_000) {
    const to = Math.min(n, from + 100_000 - 1)
    yield* sql`
      INSERT INTO ${s}.events (epoch, stream_id, category, version, event_id, type, schema_version, data, metadata)
      SELECT 1, 'Seed-' || ((g - 1) % ${streams}), 'Seed', ((g - 1) / ${streams})::integer + 1,
        gen_random_uuid(), 'Deposited', 1, jsonb_build_object('amount', g), '{}'::jsonb
      FROM generate_series(${from}::bigint, ${to}::bigint) AS g`
  }
  yield* sql`
    INSERT INTO ${s}.streams (stream_id, category, version)
    SELECT stream_id, 'Seed', max(version) FROM ${s}.events GROUP BY stream_id`
  yield* sql.unsafe(`VACUUM (ANALYZE) ${schema}.events`)
  yield* sql.unsafe(`VACUUM (ANALYZE) ${schema}.streams`)
})

const die = (message: string) => Effect.die(new Error(message))

export const compareRelays = (schema: string, system: System, brokers: ReadonlyArray<Broker | string>) =>
  Effect.gen(function* () {
    const store = yield* EventStore.EventStore
    const checkpoints = yield* PgCheckpointStore.make({ schema, migrate: false })
    const inboxStore = yield* PgInboxStore.make({ schema })
    const stamp = Date.now().toString(36)
    const results: Array<RelayResult> = []

    for (const broker of brokers) {
      if (typeof broker === "string") {
        console.error(`relay: ${broker}: skipped`)
        results.push({ label: broker.split(" at ")[0]!, skipped: broker })
        continue
      }
      const n = sizes.relayLog
      yield* Effect.logInfo(`relay: ${broker.label}: seeding the log`).pipe(
        Effect.annotateLogs({ events: n, streams: relayStreams })
      )
      yield* seedLog(schema, n, relayStreams)
      const messages = Array.from(yield* Stream.runCollect(store.readAll({ batchSize: 1000 }))).map(
        IntegrationEvent.fromRecorded
      )
      if (messages.length !== n) return yield* die(`relay: the seeded log holds ${messages.length} events, not ${n}`)

      // --- throughput ---------------------------------------------------------------------------------------------
      const relayRates: Array<number> = []
      const baselineRates: Array<number> = []
      let relayName = ""
      const relayRound = (round: number) =>
        Effect.scoped(
          Effect.gen(function* () {
            const destination = yield* broker.destination(`r${round}`)
            relayName = `bench-relay-${broker.key}-${stamp}-r${round}`
            const relay = Relay.make({ name: relayName, publisher: destination.publisher })
            const start = now()
            yield* Relay.run(relay, { untilCaughtUp: true }).pipe(
              Effect.provideService(CheckpointStore.CheckpointStore, checkpoints)
            )
            const seconds = (now() - start) / 1000
            const stored = yield* destination.stored
            if (stored !== n)
              return yield* die(`relay: ${broker.label} holds ${stored} messages after the relay, not ${n}`)
            relayRates.push(n / seconds)
            yield* Effect.logInfo(`relay: ${broker.label} Relay.run round ${round + 1}/${relayRounds}`).pipe(
              Effect.annotateLogs({ events: n, seconds: seconds.toFixed(2), eventsPerSec: rate(n / seconds) })
            )
          })
        )
      const baselineRound = (round: number) =>
        Effect.scoped(
          Effect.gen(function* () {
            const destination = yield* broker.destination(`b${round}`)
            const start = now()
            yield* destination.direct(messages)
            const seconds = (now() - start) / 1000
            const stored = yield* destination.stored
            if (stored !== n)
              return yield* die(`relay: ${broker.label} holds ${stored} messages after the direct publish, not ${n}`)
            baselineRates.push(n / seconds)
            yield* Effect.logInfo(`relay: ${broker.label} direct publish round ${round + 1}/${relayRounds}`).pipe(
              Effect.annotateLogs({ events: n, seconds: seconds.toFixed(2), eventsPerSec: rate(n / seconds) })
            )
          })
        )
      for (let round = 0; round < relayRounds; round++) {
        if (round % 2 === 0) {
          yield* baselineRound(round)
          yield* relayRound(round)
        } else {
          yield* relayRound(round)
          yield* baselineRound(round)
        }
      }

      // --- append → inbox-handled lag -----------------------------------------------------------------------------
      const lag = yield* Effect.scoped(
        Effect.gen(function* () {
          const destination = yield* broker.destination("lag")
          const category = `RelayLag${broker.key}`
          const acked = new Map<number, number>()
          const handledAt = new Map<number, number>()
          let duplicates = 0
          let ready = false
          const inbox = Inbox.make({
            name: `bench-lag-${broker.key}-${stamp}`,
            handle: (event) =>
              Effect.sync(() => {
                const at = now()
                if (event.streamId.startsWith(`${category}-ready`)) ready = true
                else {
                  const amount = (event.data as { readonly amount: number }).amount
                  if (handledAt.has(amount)) duplicates++
                  else handledAt.set(amount, at)
                }
              })
          })
          yield* Effect.forkScoped(
            destination.consume(inbox, category).pipe(Effect.provideService(Inbox.InboxStore, inboxStore))
          )
          // the relay of the last throughput round, on from its checkpoint at the end of the log
          yield* Effect.forkScoped(
            Relay.run(Relay.make({ name: relayName, publisher: destination.publisher })).pipe(
              Effect.provideService(CheckpointStore.CheckpointStore, checkpoints)
            )
          )
          for (let i = 0; !ready; i++) {
            if (i >= 60) return yield* die(`relay: ${broker.label}: the inbox never received a marker`)
            yield* system.append(`${category}-ready${i}`, 0, [eventData(0)])
            for (let j = 0; j < 20 && !ready; j++) yield* Effect.sleep("50 millis")
          }
          const total = Math.max(1, Math.round(relayRate * relaySeconds))
          const interval = 1000 / relayRate
          const start = now()
          const fibers: Array<Fiber.Fiber<void, unknown>> = []
          for (let i = 1; i <= total; i++) {
            const wait = start + (i - 1) * interval - now()
            if (wait > 0) yield* Effect.sleep(`${wait} millis`)
            fibers.push(
              yield* Effect.forkChild(
                Effect.map(system.append(`${category}-${i}`, 0, [eventData(i)]), () => {
                  acked.set(i, now())
                })
              )
            )
          }
          yield* Fiber.joinAll(fibers)
          const achievedRate = (total / (now() - start)) * 1000
          const deadline = now() + 30_000
          while (handledAt.size < total && now() < deadline) yield* Effect.sleep("20 millis")
          // a message delivered twice would come soon after: give it the time
          yield* Effect.sleep("500 millis")
          const lags: Array<number> = []
          let beforeAck = 0
          for (const [i, at] of handledAt) {
            const ack = acked.get(i)
            if (ack === undefined) continue
            if (at < ack) beforeAck++
            lags.push(Math.max(0, at - ack))
          }
          const summary = summarize(lags)
          yield* Effect.logInfo(`relay: ${broker.label} append → inbox lag`).pipe(
            Effect.annotateLogs({
              appended: total,
              acknowledged: acked.size,
              delivered: handledAt.size,
              duplicates,
              appendsPerSec: Math.round(achievedRate),
              p50Ms: ms(summary.median),
              p99Ms: ms(summary.p99),
              maxMs: ms(summary.max)
            })
          )
          if (acked.size !== total || handledAt.size !== total || duplicates > 0)
            return yield* die(
              `relay: ${broker.label}: ${total} events appended, ${acked.size} acknowledged, ${handledAt.size} ` +
                `delivered to the inbox's handler, ${duplicates} deliveries more than once (each must be delivered once)`
            )
          return {
            lag: summary,
            appended: total,
            delivered: handledAt.size,
            beforeAck,
            achievedRate
          } satisfies RelayLag
        })
      )
      results.push({ label: broker.label, throughput: { events: n, relayRates, baselineRates }, lag })
    }
    return results
  })
