import type { Schema } from "effect"
import type { EventData } from "../Event.ts"
import { InvalidEvent } from "../EventStoreError.ts"

// hex digits by character code: 1 lower-case or a digit, 2 upper-case
const hexDigits = new Uint8Array(128)
for (const c of "0123456789abcdef") hexDigits[c.charCodeAt(0)] = 1
for (const c of "ABCDEF") hexDigits[c.charCodeAt(0)] = 2

/**
 * Whether `id` is a UUID in its text form (8-4-4-4-12 hex digits): 0 if not, 1 if it is lower-case already, 2 if it
 * has upper-case digits. A loop over character codes, a third faster than the equivalent regular expression and
 * without a `toLowerCase` copy for ids that need none.
 */
const uuidForm = (id: string): 0 | 1 | 2 => {
  if (id.length !== 36) return 0
  let seen = 0
  for (let i = 0; i < 36; i++) {
    const code = id.charCodeAt(i)
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (code !== 45) return 0
    } else {
      const kind = code < 128 ? hexDigits[code]! : 0
      if (kind === 0) return 0
      seen |= kind
    }
  }
  return seen >= 2 ? 2 : 1
}
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is rejected
const controlCharacters = /[\u0000-\u001f\u007f]/
// An escaped NUL that is not itself an escaped backslash followed by "u0000".
const escapedNul = /(?<!\\)(?:\\\\)*\\u0000/
// JSON.stringify escapes lone surrogates (and only those) as \udXXX; jsonb cannot hold them.
const escapedLoneSurrogate = /(?<!\\)(?:\\\\)*\\ud[89a-f][0-9a-f]{2}/i

/** The longest event type name accepted. */
export const maxTypeLength = 255

/** An event checked for storage, with its data and metadata serialised once. */
export interface ValidEvent {
  readonly event: EventData
  readonly dataJson: string
  readonly metadataJson: string
}

/**
 * Serialises a JSON value for storage, or says why it cannot be stored the way PostgreSQL's `jsonb` would refuse it:
 * NUL characters, non-finite numbers, values JSON has no form for.
 */
export const serialize = (value: unknown, what: string): string | InvalidReason => {
  let json: string | undefined
  try {
    // the plain call is several times faster than one with a replacer; it only hides non-finite numbers (as null)
    // and fails on bigints, so the checking replacer runs only when the output has a null or the call threw
    json = JSON.stringify(value)
  } catch {
    json = undefined
  }
  if (json === undefined || json.includes("null")) {
    try {
      json = JSON.stringify(value, (_key, v: unknown) => {
        if (typeof v === "number" && !Number.isFinite(v)) throw new InvalidReason(`${what} holds a non-finite number`)
        if (typeof v === "bigint") throw new InvalidReason(`${what} holds a bigint; encode it as a string`)
        return v
      })
    } catch (error) {
      if (error instanceof InvalidReason) return error
      return new InvalidReason(`${what} is not serialisable as JSON: ${error instanceof Error ? error.message : error}`)
    }
  }
  if (json === undefined) return new InvalidReason(`${what} is not a JSON value`)
  // both checks look for an escape sequence, which only the rare string with control or odd characters has
  if (json.includes("\\u")) {
    if (escapedNul.test(json)) return new InvalidReason(`${what} contains a NUL character, which cannot be stored`)
    if (escapedLoneSurrogate.test(json)) {
      return new InvalidReason(`${what} contains a lone UTF-16 surrogate, which is not valid Unicode`)
    }
  }
  return json
}

/** A reason a value was refused; a class so it can travel through `JSON.stringify`'s replacer. */
export class InvalidReason {
  readonly reason: string
  constructor(reason: string) {
    this.reason = reason
  }
}

/**
 * Validates an append's events for storage: well-formed ids, unique within the append, sane types and versions, and
 * storable data. Shared by every store so that they refuse exactly the same input.
 */
export const validateEvents = (
  streamId: string,
  events: ReadonlyArray<EventData>,
  metadataFor: (event: EventData) => unknown
): ReadonlyArray<ValidEvent> | InvalidEvent => {
  const seen = new Set<string>()
  const valid: Array<ValidEvent> = []
  // most events of an append share one metadata object (the request's) and one type: each is checked once
  let lastMetadata: unknown
  let lastMetadataJson: string | undefined
  let lastType: string | undefined
  for (const event of events) {
    if (typeof event !== "object" || event === null) return refuse(streamId, event, "an event must be an object")
    const id = event.eventId
    const form = typeof id === "string" ? uuidForm(id) : 0
    if (form === 0) return refuse(streamId, event, "an event id must be a UUID")
    const eventId = form === 2 ? id.toLowerCase() : id
    const before = seen.size
    if (seen.add(eventId).size === before) {
      return refuse(streamId, event, "the same event id appears twice in one append")
    }
    const type = event.type
    if (type !== lastType) {
      const reason = typeProblem(type)
      if (reason !== undefined) return refuse(streamId, event, reason)
      lastType = type
    }
    const schemaVersion = event.schemaVersion
    if (!Number.isSafeInteger(schemaVersion) || schemaVersion < 1 || schemaVersion > 32767) {
      return refuse(streamId, event, "a schema version must be an integer from 1 to 32767")
    }
    const dataJson = serialize(event.data, "event data")
    if (dataJson instanceof InvalidReason) return refuse(streamId, event, dataJson.reason)
    const metadata = metadataFor(event)
    if (lastMetadataJson === undefined || metadata !== lastMetadata) {
      const metadataJson = serialize(metadata, "event metadata")
      if (metadataJson instanceof InvalidReason) return refuse(streamId, event, metadataJson.reason)
      lastMetadata = metadata
      lastMetadataJson = metadataJson
    }
    valid.push({
      event: eventId === id ? event : { ...event, eventId: eventId as never },
      dataJson,
      metadataJson: lastMetadataJson
    })
  }
  return valid
}

/** Why an event type cannot be stored, if it cannot. */
const typeProblem = (type: unknown): string | undefined => {
  if (typeof type !== "string" || type.length === 0) return "an event type must not be empty"
  if (type.length > maxTypeLength) return `an event type must be at most ${maxTypeLength} characters`
  if (controlCharacters.test(type)) return "an event type must not contain control characters"
  if (!type.isWellFormed()) return "an event type must be valid Unicode"
  return undefined
}

const refuse = (streamId: string, event: EventData | null | undefined, reason: string) =>
  new InvalidEvent({
    streamId,
    ...(typeof event?.eventId === "string" ? { eventId: event.eventId } : {}),
    reason
  })

/** Structural equality of two JSON values, key order aside (as `jsonb` compares them). */
export const jsonEquals = (a: Schema.Json | undefined, b: Schema.Json | undefined): boolean => {
  if (a === b) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!jsonEquals(a[i], b[i])) return false
    return true
  }
  if (Array.isArray(b)) return false
  const ra = a as Record<string, Schema.Json>
  const rb = b as Record<string, Schema.Json>
  const keys = Object.keys(ra)
  if (keys.length !== Object.keys(rb).length) return false
  for (const key of keys) if (!Object.hasOwn(rb, key) || !jsonEquals(ra[key], rb[key])) return false
  return true
}
