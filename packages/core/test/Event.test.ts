import { assert, describe, it } from "@effect/vitest"
import { Event } from "@facta/core"
import { Effect, Schema } from "effect"

describe("Event.deriveEventId", () => {
  it.effect("is a valid event id, the same for the same source and purpose, whatever the source's case", () =>
    Effect.gen(function* () {
      const source = Event.makeEventIdUnsafe()
      const id = yield* Event.deriveEventId(source, "debit")
      assert.isTrue(Schema.is(Event.EventId)(id))
      assert.strictEqual(id[14], "8", "a version 8 UUID")
      assert.strictEqual(yield* Event.deriveEventId(source.toUpperCase(), "debit"), id)
      assert.notStrictEqual(yield* Event.deriveEventId(source, "credit"), id)
      assert.notStrictEqual(yield* Event.deriveEventId(Event.makeEventIdUnsafe(), "debit"), id)
    })
  )
})
