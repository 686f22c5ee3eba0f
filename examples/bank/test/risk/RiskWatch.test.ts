/**
 * The risk watch on real brokers and a real PostgreSQL: the bank's API appends transfers, the bank's relay publishes
 * their public facts to NATS JetStream (a stream and subject prefix of the test's own, deleted afterwards), and the
 * risk watch's inbox applies them to its own schema; the bank's `GET /risk/alerts` forwards its flags.
 *
 * - every fact applied exactly once although each first commit "loses" its acknowledgement (JetStream delivers every
 *   message again): the non-idempotent `facts` count of each transfer equals what the bank published, each flag once;
 * - the risk watch as a real child process, killed with SIGKILL while transfers keep coming and started again: every
 *   fact applied once, every flag once;
 * - with no risk watch, `GET /risk/alerts` is a 503 problem saying it is off.
 *
 * Without NATS the broker tests are skipped with one line (under CI=true they fail).
 */
import { assert, describe, layer } from "@effect/vitest"
import { Inbox, StorageError } from "@facta/core"
import { PgInboxStore } from "@facta/postgres"
import { Context, Effect, Layer, Option, References, Schedule, Stream } from "effect"
import { HttpServer } from "effect/http"
import * as Nats from "../../../../test/integration/support/nats.ts"
import * as Database from "../../../../test/support/database.ts"
import { RiskWatchUrl } from "../../src/api/Risk.ts"
import { Transfers } from "../../src/app/Aggregates.ts"
import * as TransferRelay from "../../src/app/TransferRelay.ts"
import type * as Broker from "../../src/integration/Broker.ts"
import * as RiskChild from "../../src/risk/Child.ts"
import * as RiskModel from "../../src/risk/RiskModel.ts"
import * as RiskWatch from "../../src/risk/RiskWatch.ts"
import { app, call, openFunded } from "../api/harness.ts"

const available = await Nats.natsAvailable()

/** Polls `check` until it holds, for at most 30 seconds. */
const eventually = <E, R>(what: string, check: Effect.Effect<boolean, E, R>) =>
  check.pipe(
    Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: (done) => done }),
    Effect.timeoutOrElse({ duration: "30 seconds", orElse: () => Effect.die(new Error(`not reached: ${what}`)) })
  )

/**
 * A `PgInboxStore` whose every first commit of a message is followed by a lost acknowledgement (the store answers as
 * if the connection dropped after the COMMIT), so the consumer does not acknowledge and JetStream delivers it again.
 */
class LostAcks extends Context.Service<LostAcks, { readonly ids: Set<string> }>()("test/LostAcks") {}

const lossyInboxStore = (schema: string, lost: Set<string>) =>
  Layer.effect(
    Inbox.InboxStore,
    Effect.gen(function* () {
      const real = yield* PgInboxStore.make({ schema })
      const failure = new StorageError.StorageError({
        store: "InboxStore",
        operation: "apply",
        retryable: true,
        cause: "connection lost after COMMIT"
      })
      const loseFirst = <A>(ids: ReadonlyArray<string>, result: A) =>
        ids.every((id) => lost.has(id))
          ? Effect.succeed(result)
          : Effect.andThen(
              Effect.sync(() => {
                for (const id of ids) lost.add(id)
              }),
              Effect.fail(failure)
            )
      return Inbox.InboxStore.of({
        ...real,
        apply: (inbox, id, work) => Effect.flatMap(real.apply(inbox, id, work), (result) => loseFirst([id], result)),
        applyAll: (inbox, messages) =>
          Effect.flatMap(real.applyAll(inbox, messages), (result) =>
            loseFirst(
              messages.map((m) => m.messageId),
              result
            )
          )
      })
    })
  )

/** The risk watch in this process (its own pool and schema), lossy; its URL and read model. */
class InProcessWatch extends Context.Service<
  InProcessWatch,
  { readonly url: string; readonly model: RiskModel.RiskModel["Service"] }
>()("test/InProcessWatch") {}

const inProcessWatch = (broker: Broker.Broker, schema: string, lost: Set<string>) =>
  Layer.effect(
    InProcessWatch,
    Effect.gen(function* () {
      const context = yield* Layer.build(
        RiskWatch.layer({
          broker,
          schema,
          port: 0,
          durable: "risk-test",
          inboxStore: lossyInboxStore(schema, lost)
        }).pipe(
          Layer.provideMerge(Database.dropSchemaOnRelease(schema).pipe(Layer.provideMerge(Database.client()))),
          // the access log of the watch's own routes is noise here
          Layer.provide(Layer.succeed(References.MinimumLogLevel, "Error"))
        )
      )
      const address = Context.get(context, HttpServer.HttpServer).address
      if (!("port" in address)) throw new Error("expected a TCP address")
      return { url: `http://127.0.0.1:${address.port}`, model: Context.get(context, RiskModel.RiskModel) }
    })
  )

/** How many public facts the bank published for a transfer (its events the relay maps to a fact). */
const publishedFacts = (transferId: string) =>
  Effect.flatMap(Effect.service(Transfers), (transfers) =>
    transfers.events(transferId).pipe(
      Stream.filter((event) => TransferRelay.toFact(event) !== undefined),
      Stream.runCount
    )
  )

const transfer = (from: string, to: string, amount: string, reference: string) =>
  Effect.map(call("POST", "/transfers", { as: "alice", body: { from, to, amount, reference } }), (reply) => {
    assert.strictEqual(reply.status, 201, reply.text)
    return reply.body.transferId as string
  })

const stream = Nats.unique("BANKRISK")
const prefix = Nats.unique("bank")
const broker: Broker.Broker = { _tag: "Nats", servers: Nats.natsUrl, stream, prefix }
const lost = new Set<string>()

const environment = TransferRelay.layer(broker, { pollInterval: "20 millis" }).pipe(
  Layer.provideMerge(
    Layer.unwrap(
      Effect.map(Effect.service(InProcessWatch), (watch) =>
        app("risk").pipe(Layer.provide(Layer.succeed(RiskWatchUrl, Option.some(watch.url))))
      )
    )
  ),
  Layer.provideMerge(inProcessWatch(broker, Database.uniqueSchema("risk"), lost)),
  Layer.provideMerge(Layer.succeed(LostAcks, { ids: lost })),
  Layer.provideMerge(Nats.stream(stream, prefix).pipe(Layer.provideMerge(Nats.client())))
)

describe.skipIf(!available)("Risk watch on NATS JetStream (issue 23)", () => {
  layer(environment, { excludeTestServices: true, timeout: 90_000 })("the bank's transfer facts", (it) => {
    it.effect(
      "flags a large transfer and the third near-threshold one, each fact applied once though every message came twice",
      () =>
        Effect.gen(function* () {
          const watch = yield* InProcessWatch
          const alice = yield* openFunded("alice", { currency: "USD", initialDeposit: "10000.00" })
          const bob = yield* openFunded("bob", { currency: "USD", initialDeposit: "0" })
          const large = yield* transfer(alice, bob, "3000.00", "car")
          const approved = yield* call("POST", `/transfers/${large}/approve`, { as: "carol" })
          assert.strictEqual(approved.status, 200, approved.text)
          const near = [
            yield* transfer(alice, bob, "900.00", "part 1"),
            yield* transfer(alice, bob, "950.00", "part 2"),
            yield* transfer(alice, bob, "850.00", "part 3")
          ]
          const small = yield* transfer(alice, bob, "12.00", "coffee")
          const all = [large, ...near, small]
          // every transfer ends (completed), and the watch has applied every fact the bank published
          yield* eventually(
            "every fact applied",
            Effect.gen(function* () {
              for (const id of all) {
                const expected = yield* publishedFacts(id)
                if (expected < 2 || (yield* watch.model.factsOf(id)) !== expected) return false
              }
              return true
            })
          )
          const flags = yield* watch.model.flags(50)
          assert.deepStrictEqual(
            flags.flags.map((flag) => [flag.transferId, flag.rule, flag.status]),
            [
              [near[2], "near-threshold", "Completed"],
              [large, "large", "Completed"]
            ]
          )
          assert.match(flags.flags[1]!.reason, /3000\.00 USD is at or above the large-transfer threshold of 2500\.00/)
          assert.match(flags.flags[0]!.reason, /^3 transfers from/)
          assert.deepStrictEqual(flags.totals, { large: 1, nearThreshold: 1, transfersSeen: 5 })
          // every message's first commit lost its acknowledgement: each was delivered again, and applied once
          assert.isAtLeast((yield* LostAcks).ids.size, 11)

          // the bank's page reads them through the bank, under its auth
          const alerts = yield* call("GET", "/risk/alerts?limit=10", { as: "dave" })
          assert.strictEqual(alerts.status, 200, alerts.text)
          assert.deepStrictEqual(
            alerts.body.flags.map((flag: { transferId: string }) => flag.transferId),
            [near[2], large]
          )
          const refused = yield* call("GET", "/risk/alerts", { as: "alice" })
          assert.strictEqual(refused.status, 403)

          const relay = yield* (yield* TransferRelay.TransferRelay).status
          assert.strictEqual(relay.relay, TransferRelay.relayName)
          assert.strictEqual(relay.state, "running")
        })
    )

    it.effect(
      "the risk watch as a child process, killed with SIGKILL mid-stream and started again, applies each fact once",
      () =>
        Effect.gen(function* () {
          const schema = Database.uniqueSchema("riskchild")
          const start = RiskChild.start({
            databaseUrl: Database.databaseUrl(),
            broker,
            schema,
            durable: "risk-child",
            echo: false
          })
          const alice = yield* openFunded("alice", { currency: "USD", initialDeposit: "40000.00" })
          const bob = yield* openFunded("bob", { currency: "USD", initialDeposit: "0" })
          const seen = (url: string) =>
            Effect.promise(() =>
              fetch(`${url}/flags?limit=500`)
                .then((response) => response.json() as Promise<{ totals: { transfersSeen: number } }>)
                .then((body) => body.totals.transfersSeen)
                .catch(() => 0)
            )
          const ids: Array<string> = []
          yield* Effect.scoped(
            Effect.gen(function* () {
              const first = yield* start
              for (let i = 0; i < 10; i++)
                ids.push(yield* transfer(alice, bob, i % 4 === 0 ? "2600.00" : "900.00", `a${i}`))
              yield* eventually(
                "the child applied some",
                Effect.map(seen(first.url), (n) => n >= 3)
              )
              first.process.kill("SIGKILL")
              yield* Effect.promise(() => new Promise((resolve) => first.process.once("exit", resolve)))
            })
          )
          for (let i = 10; i < 16; i++)
            ids.push(yield* transfer(alice, bob, i % 4 === 0 ? "2600.00" : "900.00", `b${i}`))
          yield* Effect.scoped(
            Effect.gen(function* () {
              const second = yield* start
              const model = yield* RiskModel.make({ schema })
              yield* eventually(
                "the restarted child applied every fact",
                Effect.gen(function* () {
                  for (const id of ids) {
                    const expected = yield* publishedFacts(id)
                    if ((yield* model.factsOf(id)) !== expected) return false
                  }
                  return true
                })
              )
              const flags = yield* model.flags(500)
              const flagged = flags.flags.filter((flag) => ids.includes(flag.transferId))
              const keys = flagged.map((flag) => `${flag.transferId}/${flag.rule}`)
              assert.strictEqual(new Set(keys).size, keys.length, "each flag once")
              assert.strictEqual(flagged.filter((flag) => flag.rule === "large").length, 4)
              assert.isAbove(yield* seen(second.url), ids.length - 1)
            })
          )
          yield* Database.dropSchemaOnRelease(schema).pipe(Layer.build, Effect.scoped)
        }),
      120_000
    )
  })
})

layer(app("riskoff"), { excludeTestServices: true, timeout: 60_000 })("Risk watch off", (it) => {
  it.effect("GET /risk/alerts is a 503 problem saying the risk watch is off, for auditors; 403 for customers", () =>
    Effect.gen(function* () {
      const off = yield* call("GET", "/risk/alerts", { as: "dave" })
      assert.strictEqual(off.status, 503, off.text)
      assert.match(off.headers.get("content-type") ?? "", /application\/problem\+json/)
      assert.strictEqual(off.body.code, "RiskWatchOff")
      assert.match(off.body.detail, /risk watch is off/)
      assert.isNotNull(off.headers.get("retry-after"))
      const customer = yield* call("GET", "/risk/alerts", { as: "alice" })
      assert.strictEqual(customer.status, 403)
    })
  )
})
