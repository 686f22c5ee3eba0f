import type { Vitest } from "@effect/vitest"
import { assert } from "@effect/vitest"
import { Event, EventStore, Position } from "@facta/core"
import type { Schema } from "effect"
import { Cause, Effect, Exit, Option, Stream } from "effect"

/** The test helpers of a conformance block: every case gets the store under test. */
export type It = Vitest.MethodsNonLive<EventStore.EventStore>

/** The resolved options of a conformance run. */
export interface ConformanceOptions {
  readonly raceFibers: number
}

/**
 * A category no other case, and no other run against the same database, uses. Cases keep their streams in such
 * categories so that a store shared by all cases (and by earlier runs) never leaks data from one case into another.
 */
export const uniqueCategory = (prefix = "Conf"): string => `${prefix}${Event.makeEventIdUnsafe().replaceAll("-", "")}`

/** A stream id in a fresh category. */
export const uniqueStream = (prefix = "Conf"): string => `${uniqueCategory(prefix)}-1`

/** An event with a fresh id. */
export const event = (
  type = "Happened",
  data: Schema.Json = { n: 1 },
  metadata?: Event.EventMetadata
): Event.EventData =>
  metadata === undefined
    ? { eventId: Event.makeEventIdUnsafe(), type, schemaVersion: 1, data }
    : { eventId: Event.makeEventIdUnsafe(), type, schemaVersion: 1, data, metadata }

/** `n` events with fresh ids, numbered in their data from 1. */
export const events = (n: number, type = "Happened"): Array<Event.EventData> =>
  Array.from({ length: n }, (_, i) => event(type, { n: i + 1 }))

const describeValue = (value: unknown): string => {
  try {
    return JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? `${v}n` : v))?.slice(0, 300) ?? "?"
  } catch {
    return String(value)
  }
}

/** Runs `self`, asserts that it fails with the error tagged `tag`, and returns that error. */
export const expectFailure = <A, E extends { readonly _tag: string }, R, const T extends E["_tag"]>(
  self: Effect.Effect<A, E, R>,
  tag: T
): Effect.Effect<Extract<E, { readonly _tag: T }>, never, R> =>
  Effect.map(Effect.exit(self), (exit) => {
    if (Exit.isSuccess(exit)) return assert.fail(`expected ${tag}, but it succeeded with ${describeValue(exit.value)}`)
    const error = Cause.findErrorOption(exit.cause)
    if (Option.isNone(error)) return assert.fail(`expected ${tag}, but it died: ${Cause.pretty(exit.cause)}`)
    assert.strictEqual(error.value._tag, tag, `expected ${tag}, but it failed with ${describeValue(error.value)}`)
    return error.value as Extract<E, { readonly _tag: T }>
  })

/** Asserts that a stream fails with the error tagged `tag` and returns that error. */
export const expectStreamFailure = <A, E extends { readonly _tag: string }, R, const T extends E["_tag"]>(
  self: Stream.Stream<A, E, R>,
  tag: T
): Effect.Effect<Extract<E, { readonly _tag: T }>, never, R> => expectFailure(Stream.runCollect(self), tag)

/** Reads a whole stream. */
export const readStream = (streamId: string, options?: EventStore.ReadOptions) =>
  EventStore.EventStore.use((store) => Stream.runCollect(store.read(streamId, options)))

/** Reads the events of the given categories from the global log. */
export const readCategories = (
  categories: ReadonlyArray<string>,
  options?: Omit<EventStore.ReadAllOptions, "categories">
) => EventStore.EventStore.use((store) => Stream.runCollect(store.readAll({ ...options, categories })))

/** Asserts that the stream does not exist: no info, and reading it fails with `StreamNotFound`. */
export const assertNoStream = Effect.fnUntraced(function* (streamId: string) {
  const store = yield* EventStore.EventStore
  const info = yield* store.streamInfo(streamId)
  assert.isTrue(Option.isNone(info), `stream ${streamId} should not exist`)
  const error = yield* expectStreamFailure(store.read(streamId), "StreamNotFound")
  assert.strictEqual(error.streamId, streamId)
})

/** Asserts that the stream exists at `version`, both by its info and by reading it. */
export const assertVersion = Effect.fnUntraced(function* (streamId: string, version: number) {
  const store = yield* EventStore.EventStore
  const info = yield* store.streamInfo(streamId)
  if (Option.isNone(info)) return assert.fail(`stream ${streamId} should exist`)
  assert.strictEqual(info.value.version, version, `stream ${streamId} version`)
  const read = yield* readStream(streamId)
  assert.deepStrictEqual(
    read.map((e) => e.version),
    Array.from({ length: version }, (_, i) => i + 1),
    `stream ${streamId} versions`
  )
})

/** Asserts that positions are strictly increasing. */
export const assertIncreasing = (positions: ReadonlyArray<Position.Position>, what = "positions"): void => {
  for (let i = 1; i < positions.length; i++) {
    assert.isTrue(
      Position.isBefore(positions[i - 1]!, positions[i]!),
      `${what}: ${Position.format(positions[i - 1]!)} should come before ${Position.format(positions[i]!)}`
    )
  }
}

/** Asserts that two position lists name the same places. */
export const assertSamePositions = (
  actual: ReadonlyArray<Position.Position>,
  expected: ReadonlyArray<Position.Position>,
  what = "positions"
): void => {
  assert.deepStrictEqual(actual.map(Position.format), expected.map(Position.format), what)
  for (let i = 0; i < actual.length; i++) assert.isTrue(Position.equals(actual[i]!, expected[i]!), what)
}

/** The ids of some events, in order. */
export const idsOf = (list: ReadonlyArray<{ readonly eventId: string }>): Array<string> => list.map((e) => e.eventId)
