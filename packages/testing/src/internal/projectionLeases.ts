import { assert, describe } from "@effect/vitest"
import type { Event } from "@facta/core"
import { Projection } from "@facta/core"
import { Clock, Effect, Fiber, Schedule } from "effect"
import type { Appended, Ev, It } from "./projectionHelpers.ts"
import {
  append,
  appendRoundRobin,
  assertExactlyOnce,
  assertReached,
  codec,
  counter,
  counters,
  makeModel,
  ownerOf,
  quiet,
  runCaughtUp,
  statusOf,
  uniqueCategory,
  uniqueName
} from "./projectionHelpers.ts"

const ids = (events: ReadonlyArray<{ readonly eventId: string }>) => events.map((e) => e.eventId)

/** Leases (one active instance at a time, hand-over) and partitions. */
export const register = (it: It): void => {
  describe("leases and partitions", () => {
    it.effect("two instances: one at a time holds the lease and handles, and the other takes over when it stops", () =>
      quiet(
        Effect.gen(function* () {
          const category = uniqueCategory("Lease")
          const name = uniqueName()
          const handled: Array<{ readonly owner: string; readonly eventId: string }> = []
          const violations: Array<string> = []
          let active = 0
          const instance = (owner: string) =>
            Projection.make({
              name,
              events: codec,
              categories: [category],
              handle: (event: Event.RecordedEvent<Ev>) =>
                Effect.gen(function* () {
                  active += 1
                  if (active > 1) violations.push(`${owner} handled ${event.eventId} while another handler ran`)
                  const row = (yield* statusOf(name)).find((r) => r.key.version === 1 && r.key.partition === 0)
                  const holder = row === undefined ? undefined : ownerOf(row)
                  if (holder !== owner) {
                    violations.push(`${owner} handled ${event.eventId} while the lease was held by ${holder}`)
                  }
                  yield* Effect.sleep("1 millis")
                  handled.push({ owner, eventId: event.eventId })
                }).pipe(
                  Effect.ensuring(
                    Effect.sync(() => {
                      active -= 1
                    })
                  )
                )
            })
          const options = (owner: string) =>
            ({ owner, leaseTtl: "300 millis", pollInterval: "50 millis", batchWindow: "10 millis" }) as const
          const owners: Array<string> = []
          yield* statusOf(name).pipe(
            Effect.tap((rows) =>
              Effect.sync(() => {
                const holder = rows.length === 0 ? undefined : ownerOf(rows[0]!)
                if (holder !== undefined && owners.at(-1) !== holder) owners.push(holder)
              })
            ),
            Effect.repeat(Schedule.spaced("5 millis")),
            Effect.forkScoped
          )
          const waitFor = (events: ReadonlyArray<Appended>, what: string) =>
            Projection.waitFor({ name, version: 1 }, events.at(-1)!.position, { timeout: "3 seconds" }).pipe(
              Effect.catchTag("ProjectionLagging", (e) => Effect.sync(() => assert.fail(`${what}: ${e.message}`)))
            )

          const first = yield* append(`${category}-1`, counters(6))
          const a = yield* Effect.forkChild(Projection.run(instance("a"), options("a")))
          yield* waitFor(first, "instance a catches up")
          const b = yield* Effect.forkChild(Projection.run(instance("b"), options("b")))
          yield* Effect.sleep("500 millis") // longer than the lease: a renews it, b stands by
          const second = yield* append(`${category}-2`, counters(6, 7))
          yield* waitFor(second, "instance a handles live events")
          const rows = yield* statusOf(name)
          assert.strictEqual(rows.length, 1)
          assert.strictEqual(ownerOf(rows[0]!), "a", "a still holds the lease")

          yield* Fiber.interrupt(a)
          const stopped = yield* Clock.currentTimeMillis
          const third = yield* append(`${category}-3`, counters(4, 13))
          yield* waitFor(third, "instance b takes over")
          const handover = (yield* Clock.currentTimeMillis) - stopped
          assert.isBelow(handover, 1500, `b took over after ${handover} ms (lease ttl 300 ms)`)
          assert.strictEqual(ownerOf((yield* statusOf(name))[0]!), "b", "b holds the lease")
          yield* Fiber.interrupt(b)

          assert.deepStrictEqual(violations, [], "only the lease holder handles, one at a time")
          assert.deepStrictEqual(owners, ["a", "b"], "the lease went from a to b, never back")
          assert.deepStrictEqual(
            handled.map((h) => h.eventId),
            ids([...first, ...second, ...third]),
            "every event handled once, in order"
          )
          assert.deepStrictEqual(
            handled.filter((h) => h.owner === "a").map((h) => h.eventId),
            ids([...first, ...second]),
            "a handled what came while it held the lease"
          )
        })
      )
    )

    it.effect("partitions: every event handled exactly once, each stream in version order, a checkpoint each", () =>
      quiet(
        Effect.gen(function* () {
          const category = uniqueCategory("Part")
          const model = makeModel()
          const projection = counter(model, { name: uniqueName(), category })
          const appended = yield* appendRoundRobin(category, 9, 4)
          const streams = [...new Set(appended.map((e) => e.streamId))]
          assert.isAbove(
            new Set(streams.map((s) => Projection.partitionOf(s, 3))).size,
            1,
            "the streams spread over several partitions"
          )
          yield* runCaughtUp(projection, { partitions: 3, batchSize: 5 })
          assertExactlyOnce(model, appended)
          for (const streamId of streams) {
            assert.deepStrictEqual(
              model.calls.filter((e) => e.streamId === streamId).map((e) => e.version),
              [1, 2, 3, 4],
              `stream ${streamId} handled in version order`
            )
          }
          const rows = (yield* statusOf(projection.name)).filter((r) => r.key.version === 1)
          assert.deepStrictEqual(rows.map((r) => r.key.partition).sort(), [0, 1, 2], "one checkpoint row per partition")
          for (const row of rows) {
            assertReached(row.checkpoint, appended.at(-1)!.position, `partition ${row.key.partition}'s checkpoint`)
          }
        })
      )
    )
  })
}
