/**
 * The relay and the inbox on the real NATS JetStream broker (127.0.0.1:4222, or NATS_URL), each test in a stream and
 * under a subject prefix of its own. Without a broker the file is skipped with one line (under CI=true it fails).
 *
 * - the relay conformance suite (@facta/testing's RelayConformance, the cases every broker passes) on PostgreSQL
 *   stores: every event once under 8 concurrent writers, in order per stream and as stored, nothing again after a
 *   restart; filters; a mapping to a public schema, an unencodable event parked; an event over the broker's
 *   max_payload a typed MessageTooLarge naming both sizes, and parked; no checkpoint progress while no stream takes
 *   the subjects, then catching up;
 * - what is NATS's own: the subject per category and type (of the mapped type too) and the envelope's headers;
 * - the inbox applies every message exactly once although every first commit "loses" its acknowledgement (the
 *   message is delivered again), and after its consumer is stopped and started again; a poison message is parked.
 */
import { assert, describe, it } from "@effect/vitest"
import { CheckpointStore, EventStore, Inbox, Relay } from "@facta/core"
import { NatsClient, NatsInbox, NatsPublisher } from "@facta/nats"
import { RelayConformance } from "@facta/testing"
import { Effect, Fiber, Layer, Schema } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../support/database.ts"
import { appliedOnceAfterRestart, lossyRecordingInbox } from "./support/inbox.ts"
import { append, eventually } from "./support/log.ts"
import * as Nats from "./support/nats.ts"

const available = await Nats.natsAvailable()

/** A stream and a prefix of the test's own, on a client of its own, and the given stores. */
const broker = (name: string, prefix: string) => Nats.stream(name, prefix).pipe(Layer.provideMerge(Nats.client()))

const memoryStores = () => Layer.mergeAll(Layer.fresh(EventStore.layerMemory), Layer.fresh(CheckpointStore.layerMemory))

if (available) {
  RelayConformance.run(
    "NATS JetStream",
    Layer.mergeAll(Nats.client(), Database.projectionStoresIn(Database.uniqueSchema("natsconf"))),
    { broker: "nats", destination: Nats.destination }
  )
}

describe.skipIf(!available)("Relay and inbox on NATS JetStream", () => {
  it.live(
    "publishes to a subject per category and type (the mapped type for a mapped event), with the envelope in headers",
    () => {
      const name = Nats.unique("SUBJ")
      const prefix = Nats.unique("t")
      const mappedName = Nats.unique("SUBJ")
      const mappedPrefix = Nats.unique("t")
      return Effect.gen(function* () {
        const deposited = yield* append(
          "Account-1",
          "Deposited",
          { amount: 5 },
          { correlationId: "c-1", causationId: "k-1" }
        )
        const withdrawn = yield* append("Account-1", "Withdrawn", { amount: 3 })
        const placed = yield* append("Order.x-1", "Placed", {})
        const publisher = yield* NatsPublisher.make({ subject: NatsPublisher.subject(prefix) })
        yield* Relay.run(Relay.make({ name: "layout", publisher }), { untilCaughtUp: true })
        const messages = yield* Nats.readStream(name)
        // events of different streams may be stored in any order
        assert.deepStrictEqual(
          messages.map((m) => [m.subject, m.headers["Nats-Msg-Id"], m.headers["Facta-Type"]]).sort(),
          [
            [`${prefix}.Account.Deposited`, deposited, "Deposited"],
            [`${prefix}.Account.Withdrawn`, withdrawn, "Withdrawn"],
            // a dot in a token would make another subject level: it becomes an underscore
            [`${prefix}.Order_x.Placed`, placed, "Placed"]
          ].sort()
        )
        for (const m of messages) {
          assert.strictEqual(m.headers["Facta-Stream-Id"], m.body.streamId)
          assert.strictEqual(m.headers["Facta-Version"], String(m.body.version))
          assert.strictEqual(m.headers["Facta-Position"], m.body.position)
          assert.strictEqual(m.headers["Facta-Schema-Version"], "1")
          const traced = m.body.eventId === deposited
          assert.strictEqual(m.headers["Facta-Correlation-Id"], traced ? "c-1" : undefined)
          assert.strictEqual(m.headers["Facta-Causation-Id"], traced ? "k-1" : undefined)
        }
        // a mapped event goes to the subject of its public type
        const MoneyIn = Schema.TaggedStruct("MoneyIn", { cents: Schema.Int })
        const mapped = Relay.make({
          name: "public",
          types: ["Deposited"],
          publisher: yield* NatsPublisher.make({ subject: NatsPublisher.subject(mappedPrefix) }),
          map: Relay.mapTo(MoneyIn, (event) => MoneyIn.make({ cents: (event.data as { amount: number }).amount }))
        })
        yield* Relay.run(mapped, { untilCaughtUp: true })
        const public_ = yield* Nats.readStream(mappedName)
        assert.deepStrictEqual(
          public_.map((m) => [m.subject, m.headers["Nats-Msg-Id"], m.headers["Facta-Type"]]),
          [[`${mappedPrefix}.Account.MoneyIn`, deposited, "MoneyIn"]]
        )
      }).pipe(
        Effect.provide(
          Layer.mergeAll(Nats.stream(name, prefix), Nats.stream(mappedName, mappedPrefix), memoryStores()).pipe(
            Layer.provideMerge(Nats.client())
          )
        )
      )
    }
  )

  it.live(
    "the inbox applies each message exactly once when acknowledgements are lost, and parks a poison message",
    () => {
      const name = Nats.unique("INBOX")
      const prefix = Nats.unique("t")
      const schema = Database.uniqueSchema("natsinbox")
      return Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const { store: lossy, inbox, failedOnce } = yield* lossyRecordingInbox(schema)
        const consume = NatsInbox.run(inbox, {
          stream: name,
          durable: "risk",
          ackWait: "5 seconds",
          retryDelay: "20 millis"
        }).pipe(Effect.provideService(Inbox.InboxStore, lossy))
        const consumer = yield* Effect.forkChild(consume)

        const publisher = yield* NatsPublisher.make({ subject: NatsPublisher.subject(prefix) })
        const relay = Relay.make({ name: "to-risk", publisher })
        for (let i = 0; i < 40; i++) yield* append(`Transfer-${i % 4}`, "Sent", { i })
        yield* Relay.run(relay, { untilCaughtUp: true })
        const nats = yield* NatsClient.NatsClient
        yield* Effect.promise(() =>
          nats.jetstream.publish(`${prefix}.Junk.Poison`, new TextEncoder().encode("{not json"), { msgID: "poison-1" })
        )
        const count = sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql(schema)}.applied`.pipe(
          Effect.map((rows) => rows[0]!.n)
        )
        yield* eventually(Effect.map(count, (n) => n >= 40 && failedOnce.size >= 40))
        const parkedNow = yield* lossy.parked("risk")
        yield* eventually(Effect.map(lossy.parked("risk"), (p) => p.length === 1))
        // stop the consumer and start it again: nothing is applied twice
        yield* appliedOnceAfterRestart({ schema, store: lossy, consumer, consume, total: 40, streams: 4 })
        assert.isAtMost(parkedNow.length, 1)
      }).pipe(Effect.provide(Layer.mergeAll(broker(name, prefix), Database.projectionStoresIn(schema))))
    },
    60_000
  )

  it.live(
    "a stopped consumer hands back what it had fetched: another takes nearly all of it at once, not after the ack wait",
    () => {
      const name = Nats.unique("HANDBACK")
      const prefix = Nats.unique("t")
      return Effect.gen(function* () {
        const handled: Array<number> = []
        const inbox = Inbox.make({
          name: "handback",
          // slow enough that most of the 300 are fetched, not handled, when the first consumer stops
          handle: (event) =>
            Effect.andThen(
              Effect.sleep("2 millis"),
              Effect.sync(() => void handled.push((event.data as { readonly i: number }).i))
            )
        })
        const options = {
          stream: name,
          durable: "handback",
          ackWait: "10 seconds",
          prefetch: 200,
          batchSize: 5
        } as const
        const publisher = yield* NatsPublisher.make({ subject: NatsPublisher.subject(prefix) })
        for (let i = 0; i < 300; i++) yield* append(`Transfer-${i % 10}`, "Sent", { i })
        yield* Relay.run(Relay.make({ name: "handback", publisher }), { untilCaughtUp: true })
        const first = yield* Effect.forkChild(NatsInbox.run(inbox, options))
        yield* eventually(Effect.sync(() => handled.length >= 20))
        yield* Fiber.interrupt(first)
        const stoppedAt = handled.length
        assert.isBelow(stoppedAt, 100)
        const second = yield* Effect.forkChild(NatsInbox.run(inbox, options))
        // what the first consumer had fetched comes back well before its ack wait of 10 s; only the few messages
        // still on the wire when it stopped wait for it
        yield* eventually(
          Effect.sync(() => new Set(handled).size >= 290),
          "5 seconds"
        )
        yield* eventually(
          Effect.sync(() => new Set(handled).size === 300),
          "30 seconds"
        )
        yield* Fiber.interrupt(second)
        // the inbox store saw each message once: nothing handled twice
        assert.strictEqual(handled.length, 300)
      }).pipe(Effect.provide(Layer.mergeAll(broker(name, prefix), memoryStores(), Inbox.layerMemory)))
    },
    60_000
  )
})
