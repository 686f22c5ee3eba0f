import { assert, describe, it } from "@effect/vitest"
import { ExpectedVersion } from "@facta/core"
import { Exit, Schema } from "effect"

const notVersions = [-1, -0.5, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 2 ** 31, 2 ** 53]

describe("ExpectedVersion", () => {
  it("exact does not throw for a number that is not a version; isValid tells (a store refuses it, typed)", () => {
    for (const version of notVersions) {
      const expected = ExpectedVersion.exact(version)
      assert.strictEqual(expected._tag, "Exact")
      assert.isFalse(ExpectedVersion.isValid(expected), `${version}`)
    }
    for (const version of [0, 1, 42, ExpectedVersion.maxVersion]) {
      assert.isTrue(ExpectedVersion.isValid(ExpectedVersion.exact(version)), `${version}`)
    }
    for (const expected of [ExpectedVersion.any, ExpectedVersion.noStream, ExpectedVersion.streamExists]) {
      assert.isTrue(ExpectedVersion.isValid(expected))
    }
    assert.strictEqual(ExpectedVersion.maxVersion, 2_147_483_647)
  })

  it("the schema decodes exactly the valid expectations: an exact version from 0 to maxVersion", () => {
    const decode = Schema.decodeUnknownExit(ExpectedVersion.ExpectedVersion)
    for (const version of [...notVersions, "1", null]) {
      assert.isTrue(Exit.isFailure(decode({ _tag: "Exact", version })), `${version} is refused`)
    }
    for (const version of [0, 7, ExpectedVersion.maxVersion]) {
      assert.deepStrictEqual(decode({ _tag: "Exact", version }), Exit.succeed(ExpectedVersion.exact(version)))
    }
    assert.deepStrictEqual(decode({ _tag: "Any" }), Exit.succeed(ExpectedVersion.any))
    assert.throws(() => ExpectedVersion.Exact.make({ version: 1.5 }))
    assert.throws(() => ExpectedVersion.Exact.make({ version: ExpectedVersion.maxVersion + 1 }))
  })
})
