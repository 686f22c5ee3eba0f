import { assert, describe } from "@effect/vitest"
import type { Event } from "@facta/core"
import { Position, Subscription } from "@facta/core"
import { Effect, Queue, Stream } from "effect"
import type { It } from "./projectionHelpers.ts"
import { append, counters, Noted, quiet, uniqueCategory } from "./projectionHelpers.ts"

/** Reads pages until the subscription reports it has caught up, failing after 5 seconds. */
const untilCaughtUp = (options: Subscription.Options) =>
  Subscription.pages(options).pipe(
    Stream.takeUntil((page) => page.caughtUp),
    Stream.runCollect,
    Effect.timeoutOrElse({
      duration: "5 seconds",
      orElse: () => Effect.sync(() => assert.fail("the subscription did not report caughtUp within 5 seconds"))
    })
  )

const ids = (events: ReadonlyArray<{ readonly eventId: string }>) => events.map((e) => e.eventId)

/** Subscriptions: catch-up from a checkpoint, live delivery through wake-ups, and filters. */
export const register = (it: It): void => {
  describe("subscribe", () => {
    it.effect("catches up from a checkpoint: only the events after it, in order", () =>
      quiet(
        Effect.gen(function* () {
          const category = uniqueCategory("Sub")
          const appended = yield* append(`${category}-1`, counters(5))
          const pages = yield* untilCaughtUp({ after: appended[1]!.position, categories: [category], batchSize: 2 })
          const events = pages.flatMap((page) => page.events)
          assert.deepStrictEqual(ids(events), ids(appended.slice(2)), "the events after the checkpoint")
          const last = pages.at(-1)!
          assert.isTrue(last.caughtUp)
          assert.isFalse(
            Position.isBefore(last.checkpoint, appended[4]!.position),
            "the last page's checkpoint is at or after the last event"
          )
          for (let i = 1; i < pages.length; i++) {
            assert.isTrue(
              Position.isBefore(pages[i - 1]!.checkpoint, pages[i]!.checkpoint),
              "page checkpoints move forward"
            )
          }
        })
      )
    )

    it.effect("delivers events appended later live, woken up long before the poll interval", () =>
      quiet(
        Effect.gen(function* () {
          const category = uniqueCategory("Sub")
          const before = yield* append(`${category}-1`, counters(2))
          const received = yield* Queue.unbounded<Event.RecordedEvent>()
          yield* Subscription.subscribe({ categories: [category], pollInterval: "10 seconds" }).pipe(
            Stream.runForEach((event) => Queue.offer(received, event)),
            Effect.forkScoped
          )
          const take = (what: string) =>
            Queue.take(received).pipe(
              Effect.timeoutOrElse({
                duration: "2 seconds",
                orElse: () =>
                  Effect.sync(() =>
                    assert.fail(
                      `${what} was not delivered within 2 seconds (the poll interval is 10 seconds): ` +
                        "the store's wake-ups do not reach subscribers"
                    )
                  )
              })
            )
          assert.deepStrictEqual(ids([yield* take("catch-up 1"), yield* take("catch-up 2")]), ids(before))
          // the subscriber has caught up and now idles until a wake-up (or 10 seconds)
          yield* Effect.sleep("300 millis")
          const [later] = yield* append(`${category}-1`, counters(1, 3))
          assert.strictEqual((yield* take("the first live event")).eventId, later!.eventId)
          yield* Effect.sleep("100 millis")
          const more = yield* append(`${category}-2`, counters(2, 4))
          assert.deepStrictEqual(ids([yield* take("live event 2"), yield* take("live event 3")]), ids(more))
          assert.strictEqual(yield* Queue.size(received), 0, "nothing else is delivered")
        })
      )
    )

    it.effect("filters by category", () =>
      quiet(
        Effect.gen(function* () {
          const a = uniqueCategory("SubA")
          const b = uniqueCategory("SubB")
          const a1 = yield* append(`${a}-1`, counters(2))
          const b1 = yield* append(`${b}-1`, counters(2))
          const a2 = yield* append(`${a}-2`, counters(1))
          const b2 = yield* append(`${b}-2`, counters(1))
          const onlyA = (yield* untilCaughtUp({ categories: [a] })).flatMap((page) => page.events)
          assert.deepStrictEqual(ids(onlyA), ids([...a1, ...a2]), "category A only")
          const both = (yield* untilCaughtUp({ categories: [a, b], batchSize: 4 })).flatMap((page) => page.events)
          assert.deepStrictEqual(ids(both), ids([...a1, ...b1, ...a2, ...b2]), "categories A and B, in log order")
        })
      )
    )

    it.effect("filters by event type", () =>
      quiet(
        Effect.gen(function* () {
          const category = uniqueCategory("SubT")
          const appended = yield* append(`${category}-1`, [
            ...counters(1),
            Noted.make({ text: "one" }),
            ...counters(1, 2),
            Noted.make({ text: "two" })
          ])
          const notes = (yield* untilCaughtUp({ categories: [category], types: ["Noted"] })).flatMap(
            (page) => page.events
          )
          assert.deepStrictEqual(ids(notes), ids([appended[1]!, appended[3]!]), "only the Noted events")
          assert.deepStrictEqual(
            notes.map((e) => e.type),
            ["Noted", "Noted"]
          )
          const all = (yield* untilCaughtUp({ categories: [category], types: ["Counted", "Noted"] })).flatMap(
            (page) => page.events
          )
          assert.deepStrictEqual(ids(all), ids(appended), "both types")
        })
      )
    )
  })
}
