/**
 * The old home of `checkExpectedVersion`, kept (and not exported from the package) only while `CommandHandler.ts`
 * still imports it from here; the kit is `StoreKit` now. Delete this module with that import.
 *
 * @internal
 */
import type { InvalidExpectedVersion } from "./EventStoreError.ts"
import type * as ExpectedVersion from "./ExpectedVersion.ts"
import * as StoreKit from "./StoreKit.ts"

/** @internal */
export const checkExpectedVersion = (
  streamId: string,
  expected: ExpectedVersion.ExpectedVersion
): InvalidExpectedVersion | undefined => {
  const checked = StoreKit.checkExpectedVersion(streamId, expected)
  return checked._tag === "Failure" ? checked.failure : undefined
}
