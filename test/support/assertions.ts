import { assert } from "@effect/vitest"
import { CheckpointStore } from "@facta/core"
import { Effect } from "effect"
import { compareWithLog, outOfOrder, type ReadModel, readModelRows } from "./projection.ts"

/**
 * Asserts that the read model counted every committed event of `category` exactly once, in log order, and (when
 * `projection` names it) that the projection parked nothing. Gives the number of events counted.
 */
export const assertExactlyOnce = (
  model: ReadModel,
  category: string,
  options?: { readonly projection?: string; readonly label?: string }
) =>
  Effect.gen(function* () {
    const label = options?.label === undefined ? "" : `${options.label}: `
    const diff = yield* compareWithLog(model, category)
    assert.isAbove(diff.logSize, 0, `${label}events were appended`)
    assert.deepStrictEqual(diff.duplicates, [], `${label}no event counted twice`)
    assert.deepStrictEqual(diff.missing, [], `${label}no committed event missed`)
    assert.deepStrictEqual(diff.unexpected, [], `${label}nothing counted that is not in the log`)
    assert.deepStrictEqual(diff.countMismatches, [], `${label}per-stream counts and sums equal the fold of the log`)
    assert.strictEqual(diff.seenSize, diff.logSize)
    const { seen } = yield* readModelRows(model)
    assert.deepStrictEqual(outOfOrder(seen), [], `${label}events were handled in log order`)
    if (options?.projection !== undefined) {
      const name = options.projection
      const parked = yield* CheckpointStore.CheckpointStore.use((store) => store.parked(name))
      assert.deepStrictEqual(parked, [], `${label}nothing parked`)
    }
    return diff.seenSize
  })
