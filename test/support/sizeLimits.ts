import { assert, describe, layer } from "@effect/vitest"
import { Event, EventStore, StoreKit } from "@facta/core"
import { Effect, Exit, Layer, Option, Stream } from "effect"

/** The small limits the cases run with: an event of at most 1,000 bytes, an append of at most 2,500. */
export const smallLimits = { maxEventBytes: 1000, maxAppendBytes: 2500 } as const

const category = () => `Size${crypto.randomUUID().replaceAll("-", "")}`

/** Data `{"text": "xx…"}` whose event, with no metadata (`{}`, 2 bytes), takes exactly `bytes`. */
export const sized = (bytes: number, char = "x"): Event.EventData => {
  // {"text": ""} is 12 bytes, the metadata {} 2
  const data = { text: char.repeat(bytes - 14) }
  const size = StoreKit.jsonbBytes(JSON.stringify(data)) + 2
  assert.strictEqual(size, bytes, "the event built has the size asked for")
  return { eventId: Event.makeEventIdUnsafe(), type: "Sized", schemaVersion: 1, data }
}

const read = (streamId: string) => EventStore.EventStore.use((store) => Stream.runCollect(store.read(streamId)))

/** The size cases with {@link smallLimits}, against a store built with them. */
export const register = (name: string, store: Layer.Layer<EventStore.EventStore, unknown>): void =>
  layer(store, { excludeTestServices: true })(`size limits: ${name}`, (it) => {
    describe("maxEventBytes", () => {
      it.effect("an event of exactly maxEventBytes is stored and read back; a byte more fails typed", () =>
        Effect.gen(function* () {
          const store = yield* EventStore.EventStore
          const streamId = `${category()}-1`
          const fits = sized(smallLimits.maxEventBytes)
          yield* store.append(streamId, [fits])
          assert.deepStrictEqual(
            (yield* read(streamId)).map((e) => e.data),
            [fits.data]
          )
          const over = sized(smallLimits.maxEventBytes + 1)
          const error = yield* Effect.flip(store.append(streamId, [over]))
          assert.strictEqual(error._tag, "EventTooLarge")
          if (error._tag !== "EventTooLarge") return
          assert.deepStrictEqual(
            [error.streamId, error.eventId, error.limit, error.maxBytes, error.bytes],
            [streamId, over.eventId, "maxEventBytes", 1000, 1001]
          )
          assert.include(error.message, "maxEventBytes")
          assert.strictEqual((yield* read(streamId)).length, 1, "nothing was written")
        })
      )

      it.effect("control characters count as six-byte escapes, metadata counts with data", () =>
        Effect.gen(function* () {
          const store = yield* EventStore.EventStore
          const streamId = `${category()}-1`
          // n control characters: n characters of text, 6n bytes as printed (and 2 quotes, and 2 for the metadata {})
          const controls = (n: number) => ({
            eventId: Event.makeEventIdUnsafe(),
            type: "C",
            schemaVersion: 1,
            data: "\u0001".repeat(n)
          })
          const error = yield* Effect.flip(store.append(streamId, [controls(167)]))
          assert.strictEqual(error._tag, "EventTooLarge")
          if (error._tag === "EventTooLarge") assert.strictEqual(error.bytes, 2 + 167 * 6 + 2)
          const half = { ...sized(600), metadata: { actor: "a".repeat(500) } }
          const both = yield* Effect.flip(store.append(streamId, [half]))
          assert.strictEqual(both._tag, "EventTooLarge")
          if (both._tag === "EventTooLarge") assert.strictEqual(both.bytes, 598 + 513)
          assert.isTrue(Option.isNone(yield* store.streamInfo(streamId)))
          yield* store.append(streamId, [controls(166)])
          assert.deepStrictEqual(
            (yield* read(streamId)).map((e) => e.data),
            ["\u0001".repeat(166)]
          )
        })
      )
    })

    describe("maxAppendBytes", () => {
      it.effect("an append of exactly maxAppendBytes is stored, and its retry returns the original result", () =>
        Effect.gen(function* () {
          const store = yield* EventStore.EventStore
          const streamId = `${category()}-1`
          const events = [sized(1000), sized(1000), sized(500)]
          const first = yield* store.append(streamId, events)
          const retry = yield* store.append(streamId, events)
          assert.deepStrictEqual(retry, first)
          assert.strictEqual((yield* read(streamId)).length, 3)
        })
      )

      it.effect("a byte more is EventTooLarge naming the event that passed it, in append and appendMany", () =>
        Effect.gen(function* () {
          const store = yield* EventStore.EventStore
          const c = category()
          const events = [sized(1000), sized(1000), sized(501)]
          const error = yield* Effect.flip(store.append(`${c}-1`, events))
          assert.strictEqual(error._tag, "EventTooLarge")
          if (error._tag === "EventTooLarge") {
            assert.deepStrictEqual(
              [error.streamId, error.eventId, error.limit, error.maxBytes, error.bytes],
              [`${c}-1`, events[2]!.eventId, "maxAppendBytes", 2500, 2501]
            )
          }
          const many = yield* Effect.flip(
            store.appendMany([
              { streamId: `${c}-1`, events: events.slice(0, 2) },
              { streamId: `${c}-2`, events: events.slice(2) }
            ])
          )
          assert.strictEqual(many._tag, "EventTooLarge")
          if (many._tag === "EventTooLarge") assert.deepStrictEqual([many.streamId, many.bytes], [`${c}-2`, 2501])
          for (const streamId of [`${c}-1`, `${c}-2`]) {
            assert.isTrue(Option.isNone(yield* store.streamInfo(streamId)), `${streamId} was not written`)
          }
        })
      )
    })
  })

/** Asserts that building `store` dies with a defect whose message includes `text`. */
export const assertRefusedToStart = (store: Layer.Layer<EventStore.EventStore, unknown>, text: string) =>
  Effect.gen(function* () {
    const exit = yield* Effect.exit(Effect.scoped(Layer.build(store)))
    assert.isTrue(Exit.isFailure(exit), "the layer should not start")
    if (Exit.isFailure(exit)) assert.include(String(exit.cause), text)
  })
