/**
 * The risk watch on Redis Streams (127.0.0.1:6379, or REDIS_URL), the bank's broker when NATS_URL is not set: the
 * relay appends the transfer facts to `<prefix>:Transfer` (the test's own prefix, deleted afterwards) and the watch's
 * consumer group applies each once, to the same flags as on NATS. Without Redis the file is skipped with one line
 * (under CI=true it fails).
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as Redis from "../../../../test/integration/support/redis.ts"
import * as Database from "../../../../test/support/database.ts"
import * as TransferRelay from "../../src/app/TransferRelay.ts"
import type * as Broker from "../../src/integration/Broker.ts"
import { app, call, openFunded } from "../api/harness.ts"
import { eventually, everyFactApplied, InProcessWatch, inProcessWatch, transfer } from "./support.ts"

const available = await Redis.redisAvailable()

const prefix = Redis.unique("bank")
const broker: Broker.Broker = { _tag: "Redis", url: Redis.redisUrl, prefix }

const environment = TransferRelay.layer(broker, { pollInterval: "20 millis" }).pipe(
  Layer.provideMerge(app("riskredis")),
  Layer.provideMerge(inProcessWatch(broker, Database.uniqueSchema("riskredis"))),
  Layer.provideMerge(Redis.clientWithPrefix(prefix))
)

describe.skipIf(!available)("Risk watch on Redis Streams (issue 23)", () => {
  layer(environment, { excludeTestServices: true, timeout: 90_000 })("the bank's transfer facts", (it) => {
    it.effect("reach the risk watch through a consumer group: a large and a near-threshold flag, each fact once", () =>
      Effect.gen(function* () {
        const watch = yield* InProcessWatch
        const alice = yield* openFunded("alice", { currency: "USD", initialDeposit: "10000.00" })
        const bob = yield* openFunded("bob", { currency: "USD", initialDeposit: "0" })
        const large = yield* transfer(alice, bob, "2500.00", "boat")
        const rejected = yield* call("POST", `/transfers/${large}/reject`, { as: "carol", body: { reason: "no" } })
        assert.strictEqual(rejected.status, 200, rejected.text)
        const near = [
          yield* transfer(alice, bob, "800.00", "one"),
          yield* transfer(alice, bob, "999.99", "two"),
          yield* transfer(alice, bob, "900.00", "three")
        ]
        const all = [large, ...near]
        yield* eventually("every fact applied", everyFactApplied(watch.model, all, { settled: true }))
        const flags = yield* watch.model.flags(10)
        assert.deepStrictEqual(
          flags.flags.map((flag) => [flag.transferId, flag.rule, flag.status]),
          [
            [near[2], "near-threshold", "Completed"],
            [large, "large", "Rejected"]
          ]
        )
        const relay = yield* (yield* TransferRelay.TransferRelay).status
        assert.match(relay.broker, /^Redis /)
      })
    )
  })
})
