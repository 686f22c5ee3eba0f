/**
 * The codec between an aggregate's events (an Effect Schema union of tagged structs) and the JSON the store keeps.
 *
 * The tag is the stored event type and is not repeated inside the data. Data is validated by the schema on the way
 * in and on the way out. Each event type has a schema version: 1, plus one for every upcaster registered for it.
 * Stored events keep the version they were written with; reading an older one runs it through the upcasters until
 * it has the current shape.
 *
 * @since 0.1.0
 */
import { Effect, Result, Schema, SchemaAST } from "effect"
import type { EventData, EventId, EventMetadata, RecordedEvent } from "./Event.ts"
import { makeEventId } from "./Event.ts"

/**
 * A stored event could not be decoded: unknown type, newer schema version than this codec knows, or data that does
 * not fit the schema. Names the event's place so the row can be found.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { EventCodec, EventStore } from "@facta/core"
 *
 * declare const codec: EventCodec.EventCodec<{ readonly _tag: "Deposited"; readonly amount: number }>
 * const events = EventStore.readEvents(codec, "Account-1").pipe(
 *   Stream.runCollect,
 *   Effect.catchTag("EventDecodeError", (error) => Effect.die(error.message)) // names the stream, version and event
 * )
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class EventDecodeError extends Schema.TaggedError<EventDecodeError>("@facta/core/EventDecodeError")(
  "EventDecodeError",
  {
    streamId: Schema.String,
    version: Schema.Int,
    eventId: Schema.String,
    type: Schema.String,
    schemaVersion: Schema.Int,
    issue: Schema.String
  }
) {
  override get message() {
    return `Cannot decode ${this.type} v${this.schemaVersion} at ${this.streamId}@${this.version}: ${this.issue}`
  }
}

/**
 * An event did not pass its schema on the way into the store.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { EventCodec } from "@facta/core"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int.check(Schema.isGreaterThan(0)) })
 * const codec = EventCodec.make(Deposited)
 * const refused = Effect.runSync(Effect.flip(codec.encode({ _tag: "Deposited", amount: -1 })))
 * refused._tag // "EventEncodeError"
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class EventEncodeError extends Schema.TaggedError<EventEncodeError>("@facta/core/EventEncodeError")(
  "EventEncodeError",
  { type: Schema.String, issue: Schema.String }
) {
  override get message() {
    return `Cannot encode ${this.type}: ${this.issue}`
  }
}

/**
 * One step of an event type's history: decodes the stored data of version `k` with `from` and maps it to the JSON
 * data of version `k + 1`.
 *
 * @category models
 * @since 0.1.0
 */
export interface Upcaster {
  readonly step: (data: unknown) => Result.Result<Schema.Json, string>
}

/**
 * Declares an upcaster. `from` describes the old data (without the tag); `to` returns the next version's data.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { EventCodec } from "@facta/core"
 *
 * // version 1 stored a single `tracking` field; version 2 splits it
 * const ShippedV1 = Schema.Struct({ tracking: Schema.String })
 * const v1ToV2 = EventCodec.upcast(ShippedV1, (v1) => ({ trackingNumber: v1.tracking, carrier: "unknown" }))
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const upcast = <From extends Schema.Top>(
  from: From & Schema.Codec<From["Type"], unknown, never, never>,
  to: (data: From["Type"]) => Schema.Json
): Upcaster => {
  const decode = Schema.decodeUnknownResult(Schema.toCodecJson(from))
  return {
    step: (data) => {
      const decoded = decode(data)
      return Result.isSuccess(decoded) ? Result.succeed(to(decoded.success)) : Result.fail(decoded.failure.message)
    }
  }
}

/**
 * An event encoded for the store, before it is given an id.
 *
 * @category models
 * @since 0.1.0
 */
export interface Encoded {
  readonly type: string
  readonly schemaVersion: number
  readonly data: Schema.Json
}

/**
 * The codec of one aggregate's events.
 *
 * @category models
 * @since 0.1.0
 */
export interface EventCodec<A extends { readonly _tag: string }> {
  readonly schema: Schema.Codec<A, unknown>
  /** Every event type this codec knows. */
  readonly types: ReadonlyArray<A["_tag"]>
  /** The schema version new events of `type` are written with. */
  readonly currentVersion: (type: A["_tag"]) => number
  readonly encode: (event: A) => Effect.Effect<Encoded, EventEncodeError>
  readonly decode: (recorded: RecordedEvent) => Effect.Effect<RecordedEvent<A>, EventDecodeError>
  /**
   * Decodes stored data of `type` at `schemaVersion` (upcasting it), synchronously: the hot path of folds, which
   * build no envelope. The failure says why, for an {@link EventDecodeError}.
   */
  readonly decodeStored: (type: string, schemaVersion: number, data: unknown) => Result.Result<A, string>
}

/**
 * Any event codec.
 *
 * @category models
 * @since 0.1.0
 */
// biome-ignore lint/suspicious/noExplicitAny: the variance of A has to be erased here
export type Any = EventCodec<any>

/**
 * The event type of a codec.
 *
 * @category models
 * @since 0.1.0
 */
export type EventOf<C> = C extends EventCodec<infer A> ? A : never

// biome-ignore lint/suspicious/noExplicitAny: a member's own type is irrelevant to the lookup
type Member = Schema.Codec<any, any>

const tagOf = (member: Member): string | undefined => {
  const ast = SchemaAST.toType(member.ast)
  if (ast._tag !== "Objects") return undefined
  const tag = ast.propertySignatures.find((p) => p.name === "_tag")
  return tag !== undefined && tag.type._tag === "Literal" && typeof tag.type.literal === "string"
    ? tag.type.literal
    : undefined
}

const membersOf = (schema: Member): ReadonlyArray<Member> =>
  "members" in schema && Array.isArray(schema.members) ? (schema.members as ReadonlyArray<Member>) : [schema]

interface TypeCodec {
  readonly version: number
  readonly upcasters: ReadonlyArray<Upcaster>
  readonly decode: (u: unknown) => Result.Result<unknown, Schema.SchemaError>
  readonly encode: (a: unknown) => Result.Result<unknown, Schema.SchemaError>
}

const isJsonObject = (u: unknown): u is Record<string, Schema.Json> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

/**
 * Makes the codec of a union of tagged structs (or of a single tagged struct).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { EventCodec } from "@facta/core"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int })
 * const Withdrawn = Schema.TaggedStruct("Withdrawn", { amount: Schema.Int })
 * const codec = EventCodec.make(Schema.Union([Deposited, Withdrawn]))
 * codec.currentVersion("Deposited") // 1
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = <S extends Schema.Top & { readonly Type: { readonly _tag: string } }>(
  schema: S & Schema.Codec<S["Type"], S["Encoded"], never, never>,
  options?: {
    /** For each event type whose shape changed, its upcasters in order: `[v1 -> v2, v2 -> v3, ...]`. */
    readonly upcasters?: { readonly [T in S["Type"]["_tag"]]?: ReadonlyArray<Upcaster> }
  }
): EventCodec<S["Type"]> => {
  type A = S["Type"]
  const byType = new Map<string, TypeCodec>()
  for (const member of membersOf(schema as Member)) {
    const tag = tagOf(member)
    if (tag === undefined) throw new Error("EventCodec.make: every event must be a tagged struct")
    const upcasters: ReadonlyArray<Upcaster> =
      (options?.upcasters as Record<string, ReadonlyArray<Upcaster>> | undefined)?.[tag] ?? []
    const json = Schema.toCodecJson(member)
    byType.set(tag, {
      version: upcasters.length + 1,
      upcasters,
      decode: Schema.decodeUnknownResult(json),
      encode: Schema.encodeUnknownResult(json)
    })
  }

  const encode = (event: A): Effect.Effect<Encoded, EventEncodeError> => {
    const codec = byType.get(event._tag)
    if (codec === undefined) {
      return Effect.fail(new EventEncodeError({ type: String(event._tag), issue: "not an event of this codec" }))
    }
    const encoded = codec.encode(event)
    if (Result.isFailure(encoded)) {
      return Effect.fail(new EventEncodeError({ type: event._tag, issue: encoded.failure.message }))
    }
    const { _tag, ...data } = encoded.success as Record<string, Schema.Json>
    return Effect.succeed({ type: event._tag, schemaVersion: codec.version, data })
  }

  const decodeStored = (type: string, schemaVersion: number, stored: unknown): Result.Result<A, string> => {
    const codec = byType.get(type)
    if (codec === undefined) return Result.fail("unknown event type")
    if (!Number.isInteger(schemaVersion) || schemaVersion < 1) return Result.fail("schema versions start at 1")
    if (schemaVersion > codec.version) {
      return Result.fail(`written by a newer schema (this codec knows up to v${codec.version})`)
    }
    let data = stored
    for (let v = schemaVersion; v < codec.version; v++) {
      const next = codec.upcasters[v - 1]!.step(data)
      if (Result.isFailure(next)) return Result.fail(`upcasting v${v} -> v${v + 1}: ${next.failure}`)
      data = next.success
    }
    if (!isJsonObject(data)) return Result.fail("event data must be a JSON object")
    const decoded = codec.decode({ ...data, _tag: type })
    return Result.isSuccess(decoded) ? Result.succeed(decoded.success as A) : Result.fail(decoded.failure.message)
  }

  const decode = (recorded: RecordedEvent): Effect.Effect<RecordedEvent<A>, EventDecodeError> => {
    const decoded = decodeStored(recorded.type, recorded.schemaVersion, recorded.data)
    return Result.isSuccess(decoded)
      ? Effect.succeed({ ...recorded, data: decoded.success })
      : Effect.fail(
          new EventDecodeError({
            streamId: recorded.streamId,
            version: recorded.version,
            eventId: recorded.eventId,
            type: recorded.type,
            schemaVersion: recorded.schemaVersion,
            issue: decoded.failure
          })
        )
  }

  return {
    schema: schema as Schema.Codec<A, unknown>,
    types: [...byType.keys()] as Array<A["_tag"]>,
    currentVersion: (type) => byType.get(type)?.version ?? 0,
    encode,
    decode,
    decodeStored
  }
}

/**
 * Encodes a domain event into an {@link EventData} ready to append, with a fresh UUIDv7 id unless one is given.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { EventCodec } from "@facta/core"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int })
 * const codec = EventCodec.make(Deposited)
 * const data = Effect.runSync(EventCodec.toEventData(codec, Deposited.make({ amount: 5 })))
 * data.type // "Deposited"
 * ```
 *
 * @category encoding
 * @since 0.1.0
 */
export const toEventData = <A extends { readonly _tag: string }>(
  codec: EventCodec<A>,
  event: A,
  options?: { readonly eventId?: EventId | undefined; readonly metadata?: EventMetadata | undefined }
): Effect.Effect<EventData, EventEncodeError> =>
  Effect.flatMap(codec.encode(event), (encoded) =>
    Effect.map(
      options?.eventId === undefined ? makeEventId : Effect.succeed(options.eventId),
      (eventId): EventData => ({ ...encoded, eventId, metadata: options?.metadata })
    )
  )
