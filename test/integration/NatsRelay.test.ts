/**
 * The relay and the inbox on the real NATS JetStream broker (127.0.0.1:4222, or NATS_URL), each test in a stream and
 * under a subject prefix of its own. Without a broker the file is skipped with one line (under CI=true it fails).
 *
 * - every event published once per append under 8 concurrent writers, in order per stream, and nothing again after a
 *   restart of the relay (its checkpoint moved after the acknowledgements);
 * - category and type filters, the subject per category and type, the envelope's headers;
 * - a mapping to a public schema; an event it cannot encode is parked with the reason; an event larger than the
 *   broker's max_payload is a typed error naming both sizes, and the relay parks it;
 * - no checkpoint progress while the broker refuses the publishes (no stream for the subjects), then catching up;
 * - the inbox applies every message exactly once although every first commit "loses" its acknowledgement (the
 *   message is delivered again), and after its consumer is stopped and started again; a poison message is parked.
 */
import { assert, describe, it } from "@effect/vitest"
import { CheckpointStore, Event, EventStore, Inbox, IntegrationEvent, Position, Relay } from "@facta/core"
import { NatsClient, NatsInbox, NatsPublisher, NatsStream } from "@facta/nats"
import { Duration, Effect, Fiber, Layer, Option, Schedule, Schema, Stream } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../support/database.ts"
import { lossyRecordingInbox } from "./support/inbox.ts"
import * as Nats from "./support/nats.ts"

const available = await Nats.natsAvailable()

/** Appends one event; its id. */
const append = (streamId: string, type: string, data: Schema.Json) => {
  const eventId = Event.makeEventIdUnsafe()
  return EventStore.EventStore.use((store) =>
    Effect.as(store.append(streamId, [{ eventId, type, schemaVersion: 1, data }]), eventId as string)
  )
}

/** Polls `check` until it holds, for at most `timeout`. */
const eventually = <E, R>(check: Effect.Effect<boolean, E, R>, timeout: Duration.Input = "20 seconds") =>
  check.pipe(
    Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (done) => done }),
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () => Effect.die(new Error(`not reached within ${Duration.format(Duration.fromInputUnsafe(timeout))}`))
    })
  )

const messageCount = (stream: string) =>
  NatsClient.NatsClient.use((nats) =>
    Effect.promise(() => nats.manager.streams.info(stream)).pipe(Effect.map((info) => info.state.messages))
  )

/** A stream and a prefix of the test's own, on a client of its own, and the given stores. */
const broker = (name: string, prefix: string) => Nats.stream(name, prefix).pipe(Layer.provideMerge(Nats.client()))

const memoryStores = () =>
  Layer.mergeAll(
    Layer.fresh(EventStore.layerMemoryWith({ maxEventBytes: 4 * 1024 * 1024 })),
    Layer.fresh(CheckpointStore.layerMemory)
  )

describe.skipIf(!available)("Relay and inbox on NATS JetStream", () => {
  it.live(
    "publishes every event once under 8 concurrent writers, in order per stream; a restarted relay sends nothing again",
    () => {
      const name = Nats.unique("CONF")
      const prefix = Nats.unique("t")
      return Effect.gen(function* () {
        const publisher = yield* NatsPublisher.make({ subject: NatsPublisher.subject(prefix) })
        const relay = Relay.make({ name: "conformance", publisher })
        const fiber = yield* Effect.forkChild(Relay.run(relay, { pollInterval: "100 millis" }))
        const appended = yield* Effect.forEach(
          Array.from({ length: 8 }, (_, w) => w),
          (w) =>
            Effect.forEach(
              Array.from({ length: 25 }, (_, i) => i),
              (i) =>
                Effect.map(
                  append(`Account-w${w}s${i % 3}`, "Deposited", { writer: w, i }),
                  () => `Account-w${w}s${i % 3}`
                ),
              { discard: false }
            ),
          { concurrency: 8 }
        )
        const total = appended.flat().length
        yield* eventually(Effect.map(messageCount(name), (n) => n >= total))
        const messages = yield* Nats.readStream(name)
        assert.strictEqual(messages.length, total)
        const ids = new Set(messages.map((m) => m.headers["Nats-Msg-Id"]))
        assert.strictEqual(ids.size, total)
        const store = yield* EventStore.EventStore
        const stored = Array.from(yield* Stream.runCollect(store.readAll()))
        assert.deepStrictEqual([...ids].sort(), stored.map((e) => e.eventId as string).sort())
        // per-stream order: each stream's versions come 1, 2, 3... in the broker's order
        const versions = new Map<string, Array<number>>()
        for (const m of messages) {
          const list = versions.get(m.body.streamId) ?? []
          list.push(m.body.version)
          versions.set(m.body.streamId, list)
          assert.strictEqual(m.subject, `${prefix}.Account.Deposited`)
          assert.strictEqual(m.headers["Facta-Stream-Id"], m.body.streamId)
          assert.strictEqual(m.headers["Facta-Version"], String(m.body.version))
          assert.strictEqual(m.headers["Facta-Position"], m.body.position)
        }
        for (const list of versions.values())
          assert.deepStrictEqual(
            list,
            list.map((_, i) => i + 1)
          )
        yield* eventually(Effect.map(Relay.status(relay), (s) => Option.isSome(s) && s.value.eventsBehind === 0))
        yield* Fiber.interrupt(fiber)
        // the checkpoint moved past every acknowledged event: a new run publishes nothing again
        yield* Relay.run(relay, { untilCaughtUp: true })
        assert.strictEqual(yield* messageCount(name), total)
      }).pipe(
        Effect.provide(
          Layer.mergeAll(broker(name, prefix), Database.projectionStoresIn(Database.uniqueSchema("natsconf")))
        )
      )
    },
    60_000
  )

  it.live("filters by category and type, maps to a public schema, parks what it cannot encode or send", () => {
    const name = Nats.unique("MAP")
    const prefix = Nats.unique("t")
    return Effect.gen(function* () {
      const publisher = yield* NatsPublisher.make({ subject: NatsPublisher.subject(prefix) })
      const MoneyIn = Schema.TaggedStruct("MoneyIn", {
        account: Schema.String,
        cents: Schema.Int.check(Schema.isGreaterThan(0)),
        note: Schema.optionalKey(Schema.String)
      })
      const relay = Relay.make({
        name: "public",
        categories: ["Account"],
        types: ["Deposited"],
        publisher,
        map: Relay.mapTo(MoneyIn, (event) => {
          const data = event.data as { amount: number; note?: string }
          return MoneyIn.make(
            { account: event.streamId, cents: data.amount, ...(data.note === undefined ? {} : { note: data.note }) },
            { disableChecks: true }
          )
        })
      })
      const ok = yield* append("Account-1", "Deposited", { amount: 5 })
      yield* append("Account-1", "Withdrawn", { amount: 3 })
      yield* append("Order-1", "Deposited", { amount: 7 })
      const negative = yield* append("Account-2", "Deposited", { amount: -1 })
      const nats = yield* NatsClient.NatsClient
      // an event whose message is larger than the broker accepts (the store takes it: its limit is 4 MiB)
      const big = yield* append("Account-3", "Deposited", { amount: 9, note: "x".repeat(nats.maxPayload + 10) })
      yield* append("Account-1", "Deposited", { amount: 6 })
      yield* Relay.run(relay, { untilCaughtUp: true })
      const messages = yield* Nats.readStream(name)
      assert.deepStrictEqual(
        messages.map((m) => [m.subject, m.body.data]),
        [
          [`${prefix}.Account.MoneyIn`, { _tag: "MoneyIn", account: "Account-1", cents: 5 }],
          [`${prefix}.Account.MoneyIn`, { _tag: "MoneyIn", account: "Account-1", cents: 6 }]
        ]
      )
      assert.strictEqual(messages[0]!.body.eventId, ok)
      const decoded = Schema.decodeUnknownSync(MoneyIn)(messages[0]!.body.data)
      assert.strictEqual(decoded.cents, 5)
      const parked = yield* Relay.parked(relay)
      assert.deepStrictEqual(
        parked.map((p) => p.event.eventId),
        [negative, big]
      )
      assert.include(parked[0]!.error, "greater than 0")
      assert.match(
        parked[1]!.error,
        new RegExp(`nats message ${big} is \\d+ bytes, more than the broker's limit of ${nats.maxPayload} bytes`)
      )
    }).pipe(Effect.provide(Layer.mergeAll(broker(name, prefix), memoryStores())))
  })

  it.live("the publisher fails with MessageTooLarge naming both sizes, before it sends anything", () => {
    const name = Nats.unique("BIG")
    const prefix = Nats.unique("t")
    return Effect.gen(function* () {
      const nats = yield* NatsClient.NatsClient
      const publisher = yield* NatsPublisher.make({ subject: NatsPublisher.subject(prefix) })
      const event = (data: Schema.Json): IntegrationEvent.IntegrationEvent => ({
        eventId: Event.makeEventIdUnsafe(),
        streamId: "Account-1",
        category: "Account",
        version: 1,
        position: "0.1.1",
        type: "Deposited",
        schemaVersion: 1,
        data,
        recordedAt: new Date(0).toISOString()
      })
      const large = event({ note: "x".repeat(nats.maxPayload) })
      const error = yield* Effect.flip(publisher.publish([event({ amount: 1 }), large]))
      assert.isTrue(IntegrationEvent.isMessageTooLarge(error))
      if (!IntegrationEvent.isMessageTooLarge(error)) return
      assert.strictEqual(error.messageId, large.eventId)
      assert.strictEqual(error.limit, nats.maxPayload)
      assert.isAbove(error.size, nats.maxPayload)
      assert.include(error.message, `${error.size} bytes`)
      assert.include(error.message, `${error.limit} bytes`)
      assert.strictEqual(yield* messageCount(name), 0)
    }).pipe(Effect.provide(broker(name, prefix)))
  })

  it.live("moves no checkpoint while the broker refuses the publishes, then catches up", () => {
    const name = Nats.unique("LATE")
    const prefix = Nats.unique("t")
    return Effect.gen(function* () {
      const publisher = yield* NatsPublisher.make({ subject: NatsPublisher.subject(prefix) })
      const relay = Relay.make({ name: "late", publisher })
      yield* append("Account-1", "Deposited", { amount: 1 })
      yield* append("Account-2", "Deposited", { amount: 2 })
      const fiber = yield* Effect.forkChild(Relay.run(relay, { pollInterval: "50 millis" }))
      // no stream takes the subjects yet: every publish fails (no responders), retryably
      yield* eventually(
        Effect.map(
          Relay.status(relay),
          (s) => Option.isSome(s) && Option.getOrElse(s.value.error, () => "").includes("retrying after")
        ),
        "10 seconds"
      )
      yield* Effect.sleep("300 millis")
      const stuck = Option.getOrThrow(yield* Relay.status(relay))
      assert.deepStrictEqual(stuck.checkpoint, Position.start)
      assert.strictEqual(stuck.eventsBehind, 2)
      yield* NatsStream.ensure({ name, subjects: [`${prefix}.>`] })
      yield* eventually(Effect.map(messageCount(name), (n) => n === 2))
      yield* eventually(Effect.map(Relay.status(relay), (s) => Option.isSome(s) && s.value.eventsBehind === 0))
      assert.isTrue(Option.isNone(Option.getOrThrow(yield* Relay.status(relay)).error))
      yield* Fiber.interrupt(fiber)
      yield* NatsClient.NatsClient.use((nats) => Effect.promise(() => nats.manager.streams.delete(name)))
    }).pipe(Effect.provide(Layer.mergeAll(Nats.client(), memoryStores())))
  })

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
        yield* Fiber.interrupt(consumer)
        const again = yield* Effect.forkChild(consume)
        yield* Effect.sleep("500 millis")
        yield* Fiber.interrupt(again)
        const rows = yield* sql<{ event_id: string; stream_id: string; version: number }>`
          SELECT event_id, stream_id, version FROM ${sql(schema)}.applied ORDER BY n`
        assert.strictEqual(rows.length, 40)
        assert.strictEqual(new Set(rows.map((r) => r.event_id)).size, 40)
        for (let s = 0; s < 4; s++) {
          const versions = rows.filter((r) => r.stream_id === `Transfer-${s}`).map((r) => r.version)
          assert.deepStrictEqual(
            versions,
            versions.map((_, i) => i + 1)
          )
        }
        const parked = yield* lossy.parked("risk")
        assert.strictEqual(parked.length, 1)
        assert.strictEqual(parked[0]!.messageId, "poison-1")
        assert.match(parked[0]!.error, /^undecodable/)
        assert.isAtMost(parkedNow.length, 1)
      }).pipe(Effect.provide(Layer.mergeAll(broker(name, prefix), Database.projectionStoresIn(schema))))
    },
    60_000
  )
})
