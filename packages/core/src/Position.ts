/**
 * A position in the global log: opaque to users, totally ordered, and safe to store as a checkpoint.
 *
 * A position is the triple `(epoch, commit, sequence)`, compared in that order. On PostgreSQL `commit` is the writing
 * transaction's id (`tx_id`) and `sequence` the row's `global_position`; the epoch leads so that a restore into a new
 * cluster, whose transaction ids start again, still sorts after everything before it. The in-memory store numbers its
 * appends and events the same way.
 *
 * @since 0.1.0
 */
import { Order, Schema } from "effect"

const encodedPattern = /^(\d+)\.(\d+)\.(\d+)$/

/**
 * A global-log position.
 *
 * @example
 * ```ts
 * import { Position } from "@facta/core"
 *
 * Position.isBefore(Position.start, Position.make(1, 7n, 12n)) // true
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export class Position extends Schema.Class<Position>("@facta/core/Position")({
  epoch: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  commit: Schema.BigInt.check(Schema.isGreaterThanOrEqualToBigInt(0n)),
  sequence: Schema.BigInt.check(Schema.isGreaterThanOrEqualToBigInt(0n))
}) {
  override toString(): string {
    return format(this)
  }
}

/**
 * Makes a position.
 *
 * @example
 * ```ts
 * import { Position } from "@facta/core"
 *
 * const position = Position.make(1, 7n, 12n) // epoch 1, commit 7, sequence 12
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (epoch: number, commit: bigint, sequence: bigint): Position =>
  new (Unchecked as unknown as new (epoch: number, commit: bigint, sequence: bigint) => Position)(
    epoch,
    commit,
    sequence
  )

// The same instance the class constructor builds, without parsing the three fields again: stores make one per event
// they read or append, from values they already hold as numbers (a plain constructor is about 4x faster than
// Object.assign onto Object.create).
function Unchecked(this: { epoch: number; commit: bigint; sequence: bigint }, e: number, c: bigint, s: bigint) {
  this.epoch = e
  this.commit = c
  this.sequence = s
}
Unchecked.prototype = Position.prototype

/**
 * The position before every event: reading the log after it reads from the beginning.
 *
 * @example
 * ```ts
 * import { Position } from "@facta/core"
 *
 * Position.format(Position.start) // "0.0.0"
 * ```
 *
 * @category constants
 * @since 0.1.0
 */
export const start: Position = make(0, 0n, 0n)

/**
 * The total order of positions.
 *
 * @example
 * ```ts
 * import { Array } from "effect"
 * import { Position } from "@facta/core"
 *
 * const sorted = Array.sort([Position.make(1, 9n, 2n), Position.make(1, 7n, 12n)], Position.order)
 * ```
 *
 * @category ordering
 * @since 0.1.0
 */
export const order: Order.Order<Position> = (a, b) => {
  if (a.epoch !== b.epoch) return a.epoch < b.epoch ? -1 : 1
  if (a.commit !== b.commit) return a.commit < b.commit ? -1 : 1
  if (a.sequence !== b.sequence) return a.sequence < b.sequence ? -1 : 1
  return 0
}

/**
 * `true` when `a` comes strictly before `b`.
 *
 * @example
 * ```ts
 * import { Position } from "@facta/core"
 *
 * Position.isBefore(Position.make(1, 7n, 12n), Position.make(1, 8n, 3n)) // true: the commit comes first
 * ```
 *
 * @category ordering
 * @since 0.1.0
 */
export const isBefore = (a: Position, b: Position): boolean => order(a, b) < 0

/**
 * `true` when both name the same place in the log.
 *
 * @example
 * ```ts
 * import { Position } from "@facta/core"
 *
 * Position.equals(Position.make(1, 7n, 12n), Position.parse("1.7.12")!) // true
 * ```
 *
 * @category ordering
 * @since 0.1.0
 */
export const equals = (a: Position, b: Position): boolean => order(a, b) === 0

/**
 * The later of two positions.
 *
 * @example
 * ```ts
 * import { Position } from "@facta/core"
 *
 * Position.max(Position.start, Position.make(1, 7n, 12n)) // 1.7.12
 * ```
 *
 * @category ordering
 * @since 0.1.0
 */
export const max = Order.max(order)

/**
 * The checkpoint text of a position: `epoch.commit.sequence`.
 *
 * @example
 * ```ts
 * import { Position } from "@facta/core"
 *
 * Position.format(Position.make(1, 7n, 12n)) // "1.7.12"
 * ```
 *
 * @category formatting
 * @since 0.1.0
 */
export const format = (p: Position): string => `${p.epoch}.${p.commit}.${p.sequence}`

/**
 * Parses the text written by {@link format}; `undefined` when it is not a position.
 *
 * @example
 * ```ts
 * import { Position } from "@facta/core"
 *
 * Position.parse("1.7.12") // Position 1.7.12
 * Position.parse("12") // undefined
 * ```
 *
 * @category parsing
 * @since 0.1.0
 */
export const parse = (text: string): Position | undefined => {
  const match = encodedPattern.exec(text)
  if (match === null) return undefined
  const epoch = Number(match[1])
  return Number.isSafeInteger(epoch) ? make(epoch, BigInt(match[2]!), BigInt(match[3]!)) : undefined
}
