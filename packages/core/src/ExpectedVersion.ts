/**
 * What an append expects of its stream: the optimistic-concurrency check, with the meanings KurrentDB gives them.
 *
 * - `any`: no check; concurrent appends all succeed, one after another.
 * - `noStream`: the stream must not exist yet.
 * - `streamExists`: the stream must already hold at least one event.
 * - `exact(n)`: the stream's last version must be `n` (`exact(0)`: it holds no event).
 *
 * Versions are 1-based and contiguous, so a stream with three events is at version 3, and a stream holds at most
 * {@link maxVersion} events. An exact version must be an integer from 0 to {@link maxVersion}: every store refuses
 * any other number (negative, fractional, NaN, infinite, too large) with an `InvalidExpectedVersion`, before it
 * looks at the stream.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * The highest version a stream can reach (2,147,483,647, PostgreSQL's `integer`), and so the highest exact version
 * an append, an archive or a delete may expect. Both stores keep this limit.
 *
 * @example
 * ```ts
 * import { ExpectedVersion } from "@facta/core"
 *
 * ExpectedVersion.maxVersion // 2147483647
 * ```
 *
 * @category constants
 * @since 0.1.0
 */
export const maxVersion = 2_147_483_647

/**
 * No check.
 *
 * @example
 * ```ts
 * import { ExpectedVersion } from "@facta/core"
 *
 * ExpectedVersion.Any.make({}) // the same as ExpectedVersion.any
 * ```
 *
 * @category schemas
 * @since 0.1.0
 */
export const Any = Schema.TaggedStruct("Any", {})

/**
 * The stream must not exist.
 *
 * @example
 * ```ts
 * import { ExpectedVersion } from "@facta/core"
 *
 * ExpectedVersion.NoStream.make({}) // the same as ExpectedVersion.noStream
 * ```
 *
 * @category schemas
 * @since 0.1.0
 */
export const NoStream = Schema.TaggedStruct("NoStream", {})

/**
 * The stream must exist.
 *
 * @example
 * ```ts
 * import { ExpectedVersion } from "@facta/core"
 *
 * ExpectedVersion.StreamExists.make({}) // the same as ExpectedVersion.streamExists
 * ```
 *
 * @category schemas
 * @since 0.1.0
 */
export const StreamExists = Schema.TaggedStruct("StreamExists", {})

/**
 * The stream's last version must be exactly `version`. As a schema it accepts (decodes, and `make` builds) only an
 * integer from 0 to {@link maxVersion}.
 *
 * @example
 * ```ts
 * import { ExpectedVersion } from "@facta/core"
 *
 * ExpectedVersion.Exact.make({ version: 3 }) // the same as ExpectedVersion.exact(3)
 * ```
 *
 * @category schemas
 * @since 0.1.0
 */
export const Exact = Schema.TaggedStruct("Exact", {
  version: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(maxVersion))
})

/**
 * The four kinds of expectation, as a schema so errors that carry one stay serialisable.
 *
 * @example
 * ```ts
 * import { ExpectedVersion } from "@facta/core"
 *
 * const describe = (expected: ExpectedVersion.ExpectedVersion) =>
 *   ExpectedVersion.ExpectedVersion.match(expected, {
 *     Any: () => "anything goes",
 *     NoStream: () => "a new stream",
 *     StreamExists: () => "an existing stream",
 *     Exact: ({ version }) => `version ${version}`
 *   })
 * ```
 *
 * @category schemas
 * @since 0.1.0
 */
export const ExpectedVersion = Schema.Union([Any, NoStream, StreamExists, Exact]).pipe(Schema.toTaggedUnion("_tag"))

/**
 * @since 0.1.0
 */
export type ExpectedVersion = typeof ExpectedVersion.Type

/**
 * Append without a check.
 *
 * @example
 * ```ts
 * import { Event, EventStore, ExpectedVersion } from "@facta/core"
 *
 * const event = { eventId: Event.makeEventIdUnsafe(), type: "Opened", schemaVersion: 1, data: {} }
 * const append = EventStore.EventStore.use((store) =>
 *   store.append("Account-1", [event], { expectedVersion: ExpectedVersion.any })
 * )
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const any: ExpectedVersion = Any.make({})

/**
 * Append only if the stream does not exist.
 *
 * @example
 * ```ts
 * import { Event, EventStore, ExpectedVersion } from "@facta/core"
 *
 * const event = { eventId: Event.makeEventIdUnsafe(), type: "Opened", schemaVersion: 1, data: {} }
 * const append = EventStore.EventStore.use((store) =>
 *   store.append("Account-1", [event], { expectedVersion: ExpectedVersion.noStream })
 * )
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const noStream: ExpectedVersion = NoStream.make({})

/**
 * Append only if the stream exists.
 *
 * @example
 * ```ts
 * import { Event, EventStore, ExpectedVersion } from "@facta/core"
 *
 * const event = { eventId: Event.makeEventIdUnsafe(), type: "Opened", schemaVersion: 1, data: {} }
 * const append = EventStore.EventStore.use((store) =>
 *   store.append("Account-1", [event], { expectedVersion: ExpectedVersion.streamExists })
 * )
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const streamExists: ExpectedVersion = StreamExists.make({})

/**
 * Append only if the stream's last version is `version`.
 *
 * It does not check `version`, so that a number from outside (an HTTP `If-Match` header) needs no check of its own:
 * a store refuses an expectation whose version is not an integer from 0 to {@link maxVersion} with a typed
 * `InvalidExpectedVersion` (see {@link isValid}).
 *
 * @example
 * ```ts
 * import { ExpectedVersion } from "@facta/core"
 *
 * const expected = ExpectedVersion.exact(3)
 * ExpectedVersion.isSatisfiedBy(expected, 3) // true
 * ExpectedVersion.isValid(ExpectedVersion.exact(1.5)) // false: a store refuses it with InvalidExpectedVersion
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const exact = (version: number): ExpectedVersion => Exact.make({ version }, { disableChecks: true })

/**
 * Whether a store can check the expectation: `any`, `noStream`, `streamExists`, or an exact version that is an
 * integer from 0 to {@link maxVersion}. Anything else is refused with an `InvalidExpectedVersion`.
 *
 * @example
 * ```ts
 * import { ExpectedVersion } from "@facta/core"
 *
 * ExpectedVersion.isValid(ExpectedVersion.exact(0)) // true
 * ExpectedVersion.isValid(ExpectedVersion.exact(-1)) // false
 * ExpectedVersion.isValid(ExpectedVersion.exact(Number.NaN)) // false
 * ExpectedVersion.isValid(ExpectedVersion.exact(2 ** 31)) // false: above maxVersion
 * ```
 *
 * @see {@link StoreKit.checkExpectedVersion} the same check, as a typed failure
 * @category predicates
 * @since 0.1.0
 */
export const isValid = (expected: ExpectedVersion): boolean => {
  switch (expected._tag) {
    case "Any":
    case "NoStream":
    case "StreamExists":
      return true
    case "Exact":
      return isVersion(expected.version)
    default:
      return false
  }
}

/** An integer from 0 to `maxVersion`, whatever the caller passed in (an `Exact` built without its checks). */
const isVersion = (version: unknown): boolean =>
  typeof version === "number" && Number.isInteger(version) && version >= 0 && version <= maxVersion

/**
 * Whether a stream currently at `actual` (0 when it does not exist) satisfies the expectation.
 *
 * @example
 * ```ts
 * import { ExpectedVersion } from "@facta/core"
 *
 * ExpectedVersion.isSatisfiedBy(ExpectedVersion.noStream, 0) // true
 * ExpectedVersion.isSatisfiedBy(ExpectedVersion.streamExists, 0) // false
 * ```
 *
 * @category predicates
 * @since 0.1.0
 */
export const isSatisfiedBy = (expected: ExpectedVersion, actual: number): boolean => {
  switch (expected._tag) {
    case "Any":
      return true
    case "NoStream":
      return actual === 0
    case "StreamExists":
      return actual > 0
    case "Exact":
      return actual === expected.version
  }
}

/**
 * A readable form, for messages: `any`, `no stream`, `stream exists` or the version number.
 *
 * @example
 * ```ts
 * import { ExpectedVersion } from "@facta/core"
 *
 * ExpectedVersion.format(ExpectedVersion.exact(3)) // "version 3"
 * ```
 *
 * @category formatting
 * @since 0.1.0
 */
export const format = (expected: ExpectedVersion): string => {
  switch (expected._tag) {
    case "Any":
      return "any"
    case "NoStream":
      return "no stream"
    case "StreamExists":
      return "stream exists"
    case "Exact":
      return `version ${expected.version}`
  }
}
