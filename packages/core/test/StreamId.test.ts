import { assert, describe, it } from "@effect/vitest"
import { Position, StreamId } from "@facta/core"
import { Effect, Equal, Hash, Schema } from "effect"

describe("StreamId", () => {
  it.effect("accepts Category-id and splits it at the first dash", () =>
    Effect.gen(function* () {
      const id = yield* StreamId.parse("Order-42-a;'\"é")
      assert.strictEqual(StreamId.category(id), "Order")
      assert.strictEqual(StreamId.entityId(id), "42-a;'\"é")
      assert.strictEqual(yield* StreamId.make("Account", "7"), "Account-7")
    })
  )

  it.effect.each([
    ["", "empty"],
    ["Order", "no dash"],
    ["-42", "no category"],
    ["Order-", "no id"],
    ["Or der-1", "space in the category"],
    ["1Order-1", "category starting with a digit"],
    ["Order-\u0000", "NUL"],
    ["Order-a\nb", "newline"],
    [`Order-${"x".repeat(StreamId.maxLength)}`, "too long"]
  ] as const)("rejects %j (%s) with a typed error", ([input]) =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(StreamId.parse(input))
      assert.strictEqual(error._tag, "InvalidStreamId")
      assert.strictEqual(error.streamId, input)
      assert.isTrue(error.reason.length > 0)
    })
  )

  it("a category with a dash cannot be built", () => {
    const exit = Effect.runSyncExit(StreamId.make("Bank-Account", "1"))
    assert.strictEqual(exit._tag, "Failure")
  })

  it("the schema validates and brands", () => {
    assert.strictEqual(Schema.decodeUnknownSync(StreamId.StreamId)("Order-1"), "Order-1")
    assert.throws(() => Schema.decodeUnknownSync(StreamId.StreamId)("Order"))
  })
})

describe("Position", () => {
  it("orders by epoch, then commit, then sequence", () => {
    const sorted = [
      Position.make(2, 1n, 1n),
      Position.make(1, 5n, 9n),
      Position.make(1, 5n, 3n),
      Position.make(1, 2n, 100n),
      Position.start
    ].sort(Position.order)
    assert.deepStrictEqual(sorted.map(Position.format), ["0.0.0", "1.2.100", "1.5.3", "1.5.9", "2.1.1"])
  })

  it("make builds the instance the class builds: equal, encodable, a Position to the schema", () => {
    const made = Position.make(3, 18446744073709551615n, 42n)
    const constructed = new Position.Position({ epoch: 3, commit: 18446744073709551615n, sequence: 42n })
    assert.isTrue(Equal.equals(made, constructed))
    assert.strictEqual(Hash.hash(made), Hash.hash(constructed))
    assert.instanceOf(made, Position.Position)
    assert.isTrue(Schema.is(Position.Position)(made))
    assert.deepStrictEqual(
      Schema.encodeSync(Position.Position)(made),
      Schema.encodeSync(Position.Position)(constructed)
    )
    assert.deepStrictEqual({ ...made }, { ...constructed })
    assert.strictEqual(String(made), "3.18446744073709551615.42")
  })

  it("formats and parses checkpoints", () => {
    const p = Position.make(3, 18446744073709551615n, 42n)
    assert.isTrue(Position.equals(Position.parse(Position.format(p))!, p))
    assert.strictEqual(Position.parse("1.2"), undefined)
    assert.strictEqual(Position.parse("a.b.c"), undefined)
  })
})
