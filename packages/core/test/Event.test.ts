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

describe("Event.makeEventIdUnsafe", () => {
  const timeOf = (id: string) => Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16)

  it("is a version 7 UUID with the RFC 9562 variant, carrying the current Unix milliseconds", () => {
    const before = Date.now()
    const id = Event.makeEventIdUnsafe()
    const after = Date.now()
    assert.isTrue(Schema.is(Event.EventId)(id))
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    assert.isAtLeast(timeOf(id), before)
    assert.isAtMost(timeOf(id), after + 1)
  })

  it("sorts in the order it was made and never repeats, beyond 4,096 ids in one millisecond", () => {
    // far more ids than the 12-bit counter holds in a millisecond: the order must survive its overflow
    const ids = Array.from({ length: 50_000 }, () => Event.makeEventIdUnsafe())
    for (let i = 1; i < ids.length; i++) {
      if (!(ids[i - 1]! < ids[i]!)) assert.fail(`id ${i} (${ids[i]}) does not sort after ${ids[i - 1]}`)
    }
    assert.strictEqual(new Set(ids).size, ids.length)
  })

  it("stays in order when the clock steps back", () => {
    const first = Event.makeEventIdUnsafe()
    const now = Date.now
    try {
      Date.now = () => now() - 60_000
      const later = Event.makeEventIdUnsafe()
      assert.isTrue(first < later, `${later} sorts before ${first}`)
    } finally {
      Date.now = now
    }
  })

  it("has 62 random bits: ids made in one millisecond differ beyond the counter", () => {
    const ids = Array.from({ length: 1_000 }, () => Event.makeEventIdUnsafe())
    const tails = new Set(ids.map((id) => id.slice(19)))
    assert.strictEqual(tails.size, ids.length)
    // each of the eight random bytes varies (the first keeps the variant's two bits, so it has 64 values)
    const hexTail = ids.map((id) => id.slice(19).replace("-", ""))
    for (let byte = 0; byte < 8; byte++) {
      const values = new Set(hexTail.map((tail) => tail.slice(byte * 2, byte * 2 + 2)))
      assert.isAbove(values.size, 32, `random byte ${byte} takes only ${values.size} values`)
    }
  })
})
