import * as Result from "effect/Result"
import type { EventData } from "../Event.ts"
import { EventTooLarge, InvalidEvent } from "../EventStoreError.ts"
import type { Limits, PreparedEvent } from "../StoreKit.ts"

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

/** The largest event a store takes by default: 4 MiB of data and metadata. */
export const defaultMaxEventBytes = 4 * 1024 * 1024

/** The largest append a store takes by default: 64 MiB of data and metadata over all of its events. */
export const defaultMaxAppendBytes = 64 * 1024 * 1024

/** The default limits. */
export const defaultLimits: Limits = { maxEventBytes: defaultMaxEventBytes, maxAppendBytes: defaultMaxAppendBytes }

/**
 * The exact bytes a JSON text made by `JSON.stringify` takes as PostgreSQL's `jsonb` prints it (what a reader gets
 * back): UTF-8, the same escapes inside strings, a space after every `:` and `,` outside them, and numbers in plain
 * notation (`1e300` prints 301 digits, `1e-7` as `0.0000001`). One pass over the text.
 */
export const jsonbBytes = (json: string): number => {
  const n = json.length
  let bytes = 0
  let i = 0
  while (i < n) {
    const c = json.charCodeAt(i)
    if (c === 34) {
      // a string, escapes and all, printed as it is, in UTF-8
      bytes++
      i++
      while (i < n) {
        const d = json.charCodeAt(i)
        i++
        if (d === 34) {
          bytes++
          break
        }
        if (d === 92) {
          // \uXXXX (a control character) takes six bytes, every other escape two
          const six = json.charCodeAt(i) === 117
          bytes += six ? 6 : 2
          i += six ? 5 : 1
        } else if (d < 0x80) bytes++
        else if (d < 0x800 || (d >= 0xd800 && d <= 0xdfff))
          bytes += 2 // a surrogate pair: four bytes in all
        else bytes += 3
      }
    } else if (c === 58 || c === 44) {
      bytes += 2
      i++
    } else if (c === 45 || (c >= 48 && c <= 57)) {
      let end = i + 1
      while (end < n && isNumberPart(json.charCodeAt(end))) end++
      bytes += numberBytes(json, i, end)
      i = end
    } else {
      bytes++
      i++
    }
  }
  return bytes
}

const isNumberPart = (c: number) => (c >= 48 && c <= 57) || c === 46 || c === 101 || c === 69 || c === 43 || c === 45

/**
 * The bytes PostgreSQL's `numeric` prints for the JSON number `json[start, end)`: the text itself unless it has an
 * exponent; with one, the digits of the integer part (at least one), then `.` and the scale's digits if any.
 */
const numberBytes = (json: string, start: number, end: number): number => {
  let e = start
  while (e < end && json.charCodeAt(e) !== 101 && json.charCodeAt(e) !== 69) e++
  if (e === end) return end - start
  const sign = json.charCodeAt(start) === 45 ? 1 : 0
  const point = json.indexOf(".", start)
  const hasPoint = point !== -1 && point < e
  const intDigits = (hasPoint ? point : e) - start - sign
  const fracDigits = hasPoint ? e - point - 1 : 0
  const exponent = Number(json.slice(e + 1, end))
  const scale = Math.max(0, fracDigits - exponent)
  return sign + Math.max(1, intDigits + exponent) + (scale > 0 ? 1 + scale : 0)
}

/**
 * The most bytes one UTF-16 unit of `JSON.stringify`'s text prints as in `jsonb`: three in a string (a surrogate pair
 * prints four for two), two for a `:` or `,`, and up to 55 for a character of a number in exponent notation
 * (`5e-324`, six characters, prints 326 bytes). So `64 × length` bounds {@link jsonbBytes} without reading the text.
 */
const maxBytesPerChar = 64

// `JSON.stringify` writes a number in exponent notation as a digit, `e` and a sign (`1e+21`, `5e-324`)
const exponent = /\de[+-]/

/**
 * A bound of {@link jsonbBytes} that reads the text once, fast (a regular expression): three bytes a character when
 * the text holds nothing like a number in exponent notation; -1 when it may.
 */
const tightBound = (json: string): number => (exponent.test(json) ? -1 : 3 * json.length)

/**
 * Serialises a JSON value for storage: its JSON text, or an {@link InvalidReason} saying why it cannot be stored the
 * way PostgreSQL's `jsonb` would refuse it: NUL characters, non-finite numbers, values JSON has no form for.
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
    // set by the replacer before it throws, to stop `JSON.stringify`
    let refused: string | undefined
    try {
      json = JSON.stringify(value, (_key, v: unknown) => {
        if (typeof v === "number" && !Number.isFinite(v)) refused = `${what} holds a non-finite number`
        else if (typeof v === "bigint") refused = `${what} holds a bigint; encode it as a string`
        if (refused !== undefined) throw refused
        return v
      })
    } catch (error) {
      return {
        reason: refused ?? `${what} is not serialisable as JSON: ${error instanceof Error ? error.message : error}`
      }
    }
  }
  if (json === undefined) return { reason: `${what} is not a JSON value` }
  // both checks look for an escape sequence, which only the rare string with control or odd characters has
  if (json.includes("\\u")) {
    if (escapedNul.test(json)) return { reason: `${what} contains a NUL character, which cannot be stored` }
    if (escapedLoneSurrogate.test(json)) {
      return { reason: `${what} contains a lone UTF-16 surrogate, which is not valid Unicode` }
    }
  }
  return json
}

/** Why a value cannot be stored. */
export interface InvalidReason {
  readonly reason: string
}

/**
 * Validates an append's events for storage: well-formed ids, unique within the append, sane types and versions, and
 * storable data. Shared by every store so that they refuse exactly the same input.
 */
export const validateEvents = (
  streamId: string,
  events: ReadonlyArray<EventData>,
  metadataFor: (event: EventData) => unknown,
  limits: Limits = defaultLimits
): Result.Result<ReadonlyArray<PreparedEvent>, InvalidEvent | EventTooLarge> => {
  const seen = new Set<string>()
  const valid: Array<PreparedEvent> = []
  const maxEventBytes = limits.maxEventBytes
  // most events of an append share one metadata object (the request's) and one type: each is checked once
  let lastMetadata: unknown
  let lastMetadataJson: string | undefined
  // the metadata's tight bound and exact size, each found at most once (-2, -1: not yet)
  let lastMetadataBound = -2
  let lastMetadataExact = -1
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
    if (typeof dataJson !== "string") return refuse(streamId, event, dataJson.reason)
    const metadata = metadataFor(event)
    if (lastMetadataJson === undefined || metadata !== lastMetadata) {
      const metadataJson = serialize(metadata, "event metadata")
      if (typeof metadataJson !== "string") return refuse(streamId, event, metadataJson.reason)
      lastMetadata = metadata
      lastMetadataJson = metadataJson
      lastMetadataBound = -2
      lastMetadataExact = -1
    }
    // the size, by the cheapest measure that settles it: the length alone (almost every event), one fast read of
    // the text, the exact count
    let bytes = maxBytesPerChar * (dataJson.length + lastMetadataJson.length)
    let bytesExact = false
    if (bytes > maxEventBytes) {
      if (lastMetadataBound === -2) lastMetadataBound = tightBound(lastMetadataJson)
      const dataBound = lastMetadataBound < 0 ? -1 : tightBound(dataJson)
      bytes = dataBound < 0 ? -1 : dataBound + lastMetadataBound
      if (bytes < 0 || bytes > maxEventBytes) {
        if (lastMetadataExact < 0) lastMetadataExact = jsonbBytes(lastMetadataJson)
        bytes = jsonbBytes(dataJson) + lastMetadataExact
        bytesExact = true
        if (bytes > maxEventBytes) {
          return Result.fail(
            new EventTooLarge({ streamId, eventId, limit: "maxEventBytes", maxBytes: maxEventBytes, bytes })
          )
        }
      }
    }
    valid.push({
      event: eventId === id ? event : { ...event, eventId: eventId as never },
      dataJson,
      metadataJson: lastMetadataJson,
      bytes,
      bytesExact
    })
  }
  return Result.succeed(valid)
}

/**
 * Checks the events of one append (of every request of an `appendMany`) against `maxAppendBytes`: by their bounds
 * first, then by tighter ones, exactly only when those pass the limit. Names the event at which the exact total
 * passes it.
 */
export const checkAppendSize = (
  requests: ReadonlyArray<{ readonly streamId: string; readonly events: ReadonlyArray<PreparedEvent> }>,
  limits: Limits = defaultLimits
): EventTooLarge | undefined => {
  const maxAppendBytes = limits.maxAppendBytes
  let total = 0
  for (const request of requests) for (const e of request.events) total += e.bytes
  if (total <= maxAppendBytes) return undefined
  for (const exact of [false, true]) {
    total = 0
    let lastMetadataJson: string | undefined
    let lastMetadataBytes = 0
    for (const request of requests) {
      for (const e of request.events) {
        if (e.bytesExact) {
          total += e.bytes
        } else {
          if (e.metadataJson !== lastMetadataJson) {
            lastMetadataJson = e.metadataJson
            lastMetadataBytes = exact ? jsonbBytes(e.metadataJson) : tightBound(e.metadataJson)
          }
          const dataBytes = exact ? jsonbBytes(e.dataJson) : tightBound(e.dataJson)
          // no tight bound (a number in exponent notation): the exact size
          total +=
            dataBytes < 0 || lastMetadataBytes < 0
              ? jsonbBytes(e.dataJson) + jsonbBytes(e.metadataJson)
              : dataBytes + lastMetadataBytes
        }
        if (exact && total > maxAppendBytes) {
          return new EventTooLarge({
            streamId: request.streamId,
            eventId: e.event.eventId,
            limit: "maxAppendBytes",
            maxBytes: maxAppendBytes,
            bytes: total
          })
        }
      }
    }
    if (total <= maxAppendBytes) return undefined
  }
  return undefined
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
  Result.fail(
    new InvalidEvent({
      streamId,
      ...(typeof event?.eventId === "string" ? { eventId: event.eventId } : {}),
      reason
    })
  )

/** Structural equality of two JSON values, key order aside (as `jsonb` compares them). */
export const jsonEquals = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!jsonEquals(a[i], b[i])) return false
    return true
  }
  if (Array.isArray(b)) return false
  const ra = a as Record<string, unknown>
  const rb = b as Record<string, unknown>
  const keys = Object.keys(ra)
  if (keys.length !== Object.keys(rb).length) return false
  for (const key of keys) if (!Object.hasOwn(rb, key) || !jsonEquals(ra[key], rb[key])) return false
  return true
}
