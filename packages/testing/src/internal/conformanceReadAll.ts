import { assert, describe } from "@effect/vitest"
import { EventStore, Position } from "@facta/core"
import { DateTime, Effect, Stream } from "effect"
import type { It } from "./conformanceHelpers.ts"
import {
  assertIncreasing,
  assertSamePositions,
  event,
  events,
  idsOf,
  readCategories,
  readStream,
  uniqueCategory,
  uniqueStream
} from "./conformanceHelpers.ts"

/** The position of a marker event appended now, in a stream of its own: a checkpoint before anything written next. */
const checkpoint = Effect.gen(function* () {
  const store = yield* EventStore.EventStore
  const result = yield* store.append(uniqueStream("Marker"), [event("Marker")])
  return result.positions[0]!
})

/** Reading the global log. */
export const register = (it: It): void => {
  describe("readAll", () => {
    it.effect("reads the log in strictly increasing position order, every event once", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const appended: Array<{ readonly eventId: string }> = []
        const positions: Array<Position.Position> = []
        for (const [stream, n] of [
          ["a", 2],
          ["b", 1],
          ["a", 3],
          ["c", 2],
          ["b", 1]
        ] as const) {
          const batch = events(n)
          const result = yield* store.append(`${category}-${stream}`, batch)
          appended.push(...batch)
          positions.push(...result.positions)
        }
        const logged = yield* readCategories([category])
        assert.deepStrictEqual(idsOf(logged), idsOf(appended))
        assertIncreasing(logged.map((e) => e.position))
        assertSamePositions(
          logged.map((e) => e.position),
          positions
        )
        assert.strictEqual(new Set(idsOf(logged)).size, appended.length)
      })
    )

    it.effect("gives each event exactly as reading its stream does", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const streamId = `${category}-1`
        yield* store.append(streamId, [event("A", { a: [1, { b: null }] }, { actor: "ann", attributes: { k: "v" } })], {
          metadata: { correlationId: "c" }
        })
        yield* store.append(streamId, [{ ...event("B", "text"), schemaVersion: 4 }])
        const fromStream = yield* readStream(streamId)
        const fromLog = yield* readCategories([category])
        assert.strictEqual(fromLog.length, 2)
        for (let i = 0; i < 2; i++) {
          const a = fromLog[i]!
          const b = fromStream[i]!
          assert.strictEqual(a.eventId, b.eventId)
          assert.strictEqual(a.streamId, b.streamId)
          assert.strictEqual(a.version, b.version)
          assert.isTrue(Position.equals(a.position, b.position))
          assert.strictEqual(a.type, b.type)
          assert.strictEqual(a.schemaVersion, b.schemaVersion)
          assert.deepStrictEqual(a.data, b.data)
          assert.deepStrictEqual(a.metadata, b.metadata)
          assert.isTrue(DateTime.isDateTime(a.recordedAt) && DateTime.isUtc(a.recordedAt))
          assert.strictEqual(DateTime.toEpochMillis(a.recordedAt), DateTime.toEpochMillis(b.recordedAt))
        }
      })
    )

    it.effect("after resumes strictly after a checkpoint", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const appended = [...events(2), ...events(1), ...events(2)]
        yield* store.append(`${category}-a`, appended.slice(0, 2))
        yield* store.append(`${category}-b`, appended.slice(2, 3))
        yield* store.append(`${category}-a`, appended.slice(3))
        const logged = yield* readCategories([category])
        for (let i = 0; i < logged.length; i++) {
          const rest = yield* readCategories([category], { after: logged[i]!.position })
          assert.deepStrictEqual(idsOf(rest), idsOf(appended).slice(i + 1), `after event ${i + 1}`)
          for (const e of rest) assert.isTrue(Position.isBefore(logged[i]!.position, e.position))
        }
      })
    )

    it.effect("a checkpoint inside one append's events resumes at the next event of that append", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const batch = events(3)
        const result = yield* store.append(`${category}-1`, batch)
        const rest = yield* readCategories([category], { after: result.positions[1]! })
        assert.deepStrictEqual(idsOf(rest), [batch[2]!.eventId])
        const fromFirst = yield* readCategories([category], { after: result.positions[0]! })
        assert.deepStrictEqual(idsOf(fromFirst), idsOf(batch.slice(1)))
      })
    )

    it.effect("after the last event reads nothing, then exactly what is appended later", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const first = yield* store.append(`${category}-1`, events(2))
        const tip = first.positions[1]!
        assert.deepStrictEqual(yield* readCategories([category], { after: tip }), [])
        const later = events(2)
        yield* store.append(`${category}-2`, later.slice(0, 1))
        yield* store.append(`${category}-1`, later.slice(1))
        const tail = yield* readCategories([category], { after: tip })
        assert.deepStrictEqual(idsOf(tail), idsOf(later))
      })
    )

    it.effect("after Position.start reads from the beginning", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const batch = events(3)
        yield* store.append(`${category}-1`, batch)
        const fromStart = yield* readCategories([category], { after: Position.start })
        assert.deepStrictEqual(idsOf(fromStart), idsOf(batch))
      })
    )

    it.effect("without filters, after a checkpoint, yields every later event in order, ours among them", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const since = yield* checkpoint
        const ours = [...events(2), ...events(3)]
        yield* store.append(`${category}-a`, ours.slice(0, 2))
        yield* store.append(`${category}-b`, ours.slice(2))
        const logged = yield* Stream.runCollect(store.readAll({ after: since }))
        for (const e of logged) assert.isTrue(Position.isBefore(since, e.position), "only events after the checkpoint")
        assertIncreasing(logged.map((e) => e.position))
        const mine = logged.filter((e) => e.streamId.startsWith(`${category}-`))
        assert.deepStrictEqual(idsOf(mine), idsOf(ours))
      })
    )

    it.effect("filters by category exactly, with no prefix or wildcard matching", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const base = uniqueCategory()
        const categories = [base, `${base}X`, `${base}_a`, `${base}Xa`, `${base}.b`, `${base}:c`]
        const byCategory = new Map<string, string>()
        for (const category of categories) {
          const e = event()
          yield* store.append(`${category}-1`, [e])
          byCategory.set(category, e.eventId)
        }
        for (const category of categories) {
          const logged = yield* readCategories([category])
          assert.deepStrictEqual(idsOf(logged), [byCategory.get(category)!], `category ${category}`)
        }
        assert.deepStrictEqual(yield* readCategories([base.toLowerCase()]), [])
        assert.deepStrictEqual(yield* readCategories([`${base}%`]), [])
      })
    )

    it.effect("filters by several categories at once, keeping log order", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const [a, b, c] = [uniqueCategory(), uniqueCategory(), uniqueCategory()]
        const ea = event()
        const eb = event()
        const ec = event()
        const ea2 = event()
        yield* store.append(`${a}-1`, [ea])
        yield* store.append(`${b}-1`, [eb])
        yield* store.append(`${c}-1`, [ec])
        yield* store.append(`${a}-2`, [ea2])
        const logged = yield* readCategories([a, c])
        assert.deepStrictEqual(idsOf(logged), [ea.eventId, ec.eventId, ea2.eventId])
      })
    )

    it.effect("filters by type exactly, alone or with categories", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const other = uniqueCategory()
        const alpha = `Alpha${category}`
        const batch = [event(alpha), event(`${alpha}Beta`), event(alpha.toLowerCase()), event("Gamma"), event(alpha)]
        const since = yield* checkpoint
        yield* store.append(`${category}-1`, batch)
        const elsewhere = event(alpha)
        yield* store.append(`${other}-1`, [elsewhere])
        const typed = yield* Stream.runCollect(store.readAll({ after: since, types: [alpha] }))
        assert.deepStrictEqual(idsOf(typed), [batch[0]!.eventId, batch[4]!.eventId, elsewhere.eventId])
        const both = yield* readCategories([category], { types: [alpha, "Gamma"] })
        assert.deepStrictEqual(idsOf(both), [batch[0]!.eventId, batch[3]!.eventId, batch[4]!.eventId])
        const combined = yield* readCategories([other], { types: [alpha] })
        assert.deepStrictEqual(idsOf(combined), [elsewhere.eventId])
        assert.deepStrictEqual(yield* readCategories([other], { types: ["Gamma"] }), [])
      })
    )

    it.effect("a small batch size reads the same events as a large one, filtered or not", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const other = uniqueCategory()
        const since = yield* checkpoint
        for (let i = 0; i < 4; i++) {
          yield* store.append(`${category}-${i % 2}`, [event("Kept"), event("Skipped"), event("Skipped")])
          yield* store.append(`${other}-1`, [event("Kept")])
        }
        const all = yield* readCategories([category], { batchSize: 1000 })
        const kept = yield* readCategories([category], { types: ["Kept"], batchSize: 1000 })
        const unfiltered = (yield* Stream.runCollect(store.readAll({ after: since, batchSize: 1000 }))).filter(
          (e) => e.streamId.startsWith(`${category}-`) || e.streamId.startsWith(`${other}-`)
        )
        assert.strictEqual(all.length, 12)
        assert.strictEqual(kept.length, 4)
        assert.strictEqual(unfiltered.length, 16)
        for (const batchSize of [1, 2, 3]) {
          assert.deepStrictEqual(idsOf(yield* readCategories([category], { batchSize })), idsOf(all))
          assert.deepStrictEqual(idsOf(yield* readCategories([category], { types: ["Kept"], batchSize })), idsOf(kept))
          const small = (yield* Stream.runCollect(store.readAll({ after: since, batchSize }))).filter(
            (e) => e.streamId.startsWith(`${category}-`) || e.streamId.startsWith(`${other}-`)
          )
          assert.deepStrictEqual(idsOf(small), idsOf(unfiltered), `unfiltered, batch size ${batchSize}`)
          const resumed = yield* readCategories([category], { after: all[4]!.position, batchSize })
          assert.deepStrictEqual(idsOf(resumed), idsOf(all.slice(5)), `resumed, batch size ${batchSize}`)
          // pages of several categories interleave them in log order
          assert.deepStrictEqual(
            idsOf(yield* readCategories([other, category], { batchSize })),
            idsOf(unfiltered),
            `two categories, batch size ${batchSize}`
          )
        }
      })
    )
  })
}
