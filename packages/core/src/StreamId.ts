/**
 * Stream ids name an event stream. They follow the `Category-id` convention: everything before the first `-` is the
 * stream's category (`Order-42` belongs to `Order`), which the global log can be filtered by.
 *
 * An id is validated once, here, and carried as a branded string afterwards, so an invalid id is a typed
 * {@link InvalidStreamId} and never reaches storage.
 *
 * @since 0.1.0
 */
import { Effect, Schema } from "effect"

/**
 * The longest stream id accepted, in UTF-16 code units.
 *
 * @example
 * ```ts
 * import { StreamId } from "@facta/core"
 *
 * StreamId.validate(`Order-${"x".repeat(StreamId.maxLength)}`) // "a stream id must be at most 255 characters (got 261)"
 * ```
 *
 * @category constants
 * @since 0.1.0
 */
export const maxLength = 255

const categoryPattern = /^[A-Za-z][A-Za-z0-9_.:]*$/
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is rejected
const controlCharacters = /[\u0000-\u001f\u007f]/

/**
 * Why `input` is not a valid stream id, or `undefined` when it is.
 *
 * @example
 * ```ts
 * import { StreamId } from "@facta/core"
 *
 * StreamId.validate("Order-42") // undefined
 * StreamId.validate("order42") // "a stream id must look like `Category-id`"
 * ```
 *
 * @see {@link parse} the same check, as an effect
 * @category validation
 * @since 0.1.0
 */
export const validate = (input: string): string | undefined => {
  if (input.length === 0) return "a stream id must not be empty"
  if (input.length > maxLength) return `a stream id must be at most ${maxLength} characters (got ${input.length})`
  if (controlCharacters.test(input)) return "a stream id must not contain control characters"
  if (!input.isWellFormed()) return "a stream id must be valid Unicode (no lone surrogates)"
  const dash = input.indexOf("-")
  if (dash <= 0) return "a stream id must look like `Category-id`"
  if (dash === input.length - 1) return "a stream id needs an id after its category"
  if (!categoryPattern.test(input.slice(0, dash))) {
    return "a category must start with a letter and hold only letters, digits, `_`, `.` and `:`"
  }
  return undefined
}

/**
 * A validated stream id such as `Order-42`.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { StreamId } from "@facta/core"
 *
 * const id = Schema.decodeUnknownSync(StreamId.StreamId)("Order-42")
 * ```
 *
 * @category schemas
 * @since 0.1.0
 */
export const StreamId = Schema.String.pipe(
  Schema.check(Schema.makeFilter((s: string) => validate(s) ?? true)),
  Schema.brand("@facta/StreamId")
)

/**
 * @since 0.1.0
 */
export type StreamId = typeof StreamId.Type

/**
 * A stream id failed validation; `reason` says why.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { StreamId } from "@facta/core"
 *
 * const error = Effect.runSync(Effect.flip(StreamId.parse("nope")))
 * error.reason // "a stream id must look like `Category-id`"
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class InvalidStreamId extends Schema.TaggedError<InvalidStreamId>("@facta/core/InvalidStreamId")(
  "InvalidStreamId",
  { streamId: Schema.String, reason: Schema.String }
) {
  override get message() {
    return `Invalid stream id ${JSON.stringify(this.streamId.slice(0, 80))}: ${this.reason}`
  }
}

/**
 * Validates a raw string as a stream id.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { StreamId } from "@facta/core"
 *
 * const id = Effect.runSync(StreamId.parse("Order-42")) // "Order-42"
 * ```
 *
 * @category parsing
 * @since 0.1.0
 */
export const parse = (input: string): Effect.Effect<StreamId, InvalidStreamId> => {
  const reason = validate(input)
  return reason === undefined
    ? Effect.succeed(input as StreamId)
    : Effect.fail(new InvalidStreamId({ streamId: input, reason }))
}

/**
 * Builds `Category-id` from a category and an entity id, validating the result.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { StreamId } from "@facta/core"
 *
 * const id = Effect.runSync(StreamId.make("Order", "42")) // "Order-42"
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (category: string, id: string): Effect.Effect<StreamId, InvalidStreamId> =>
  category.includes("-")
    ? Effect.fail(new InvalidStreamId({ streamId: `${category}-${id}`, reason: "a category must not contain `-`" }))
    : parse(`${category}-${id}`)

/**
 * Validates synchronously and throws {@link InvalidStreamId}; for constants in tests and examples.
 *
 * @example
 * ```ts
 * import { StreamId } from "@facta/core"
 *
 * const id = StreamId.makeUnsafe("Order-42")
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const makeUnsafe = (input: string): StreamId => {
  const reason = validate(input)
  if (reason !== undefined) throw new InvalidStreamId({ streamId: input, reason })
  return input as StreamId
}

/**
 * The category of a stream id: the part before the first `-`.
 *
 * @example
 * ```ts
 * import { StreamId } from "@facta/core"
 *
 * StreamId.category(StreamId.makeUnsafe("Order-42-a")) // "Order"
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const category = (id: StreamId): string => id.slice(0, id.indexOf("-"))

/**
 * The entity part of a stream id: everything after the first `-`.
 *
 * @example
 * ```ts
 * import { StreamId } from "@facta/core"
 *
 * StreamId.entityId(StreamId.makeUnsafe("Order-42-a")) // "42-a"
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const entityId = (id: StreamId): string => id.slice(id.indexOf("-") + 1)
