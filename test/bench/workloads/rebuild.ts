/**
 * Rebuilding a real read model: the example bank's accounts and their movements, from an empty read model, over the
 * bank's Account log. Every system runs once (a rebuild of the full log is long, and the seeded log is the same for
 * all), raw SQL first: its result is what every other system's read model must equal.
 */
import { Effect } from "effect"
import { differences, type Fingerprint } from "../bankLog.ts"
import { rebuildSeconds, sizes } from "../config.ts"
import { now } from "../domain.ts"

export interface Rebuilder {
  readonly label: string
  /** Builds the read model from empty; true when the time budget stopped it. */
  readonly run: Effect.Effect<boolean, unknown>
  /** The fingerprint of what it built. */
  readonly fingerprint: Effect.Effect<Fingerprint, unknown>
  /** Whether its fingerprint includes the entries' log positions (and so compares with the reference's that do). */
  readonly positions: boolean
}

/** The raw floor, which also gives the expected read model for the first `upTo` events of the log. */
export interface Reference {
  readonly label: string
  readonly run: Effect.Effect<void, unknown>
  readonly fingerprint: (positions: boolean) => Effect.Effect<Fingerprint, unknown>
  /** Builds the expected read model of the log's first `upTo` events (elsewhere) and returns its fingerprint. */
  readonly prefix: (upTo: number, positions: boolean) => Effect.Effect<Fingerprint, unknown>
}

export interface RebuildResult {
  readonly handled: number
  readonly seconds: number
  /** events handled per second */
  readonly rate: number
  /** stopped by the time budget before the end of the log */
  readonly partial: boolean
}

class RebuildMismatch extends Error {}

const timed = <A>(effect: Effect.Effect<A, unknown>) =>
  Effect.gen(function* () {
    const start = now()
    const value = yield* effect
    return { value, seconds: (now() - start) / 1000 }
  })

/**
 * Runs the reference, then every system, and checks each system's read model against the reference's (or, for one
 * the time budget stopped, against the reference's read model of the same first events). A mismatch fails the bench.
 */
export const compareRebuilds = (reference: Reference, systems: ReadonlyArray<Rebuilder>) =>
  Effect.gen(function* () {
    const total = sizes.bankLog
    const results = new Map<string, RebuildResult>()
    const floor = yield* timed(reference.run)
    const expected = {
      withPositions: yield* reference.fingerprint(true),
      withoutPositions: yield* reference.fingerprint(false)
    }
    if (Number(expected.withPositions.handled) !== total) {
      return yield* Effect.die(
        new RebuildMismatch(`rebuild: ${reference.label} took in ${expected.withPositions.handled} of ${total} events`)
      )
    }
    results.set(reference.label, {
      handled: total,
      seconds: floor.seconds,
      rate: total / floor.seconds,
      partial: false
    })
    yield* Effect.logInfo(`rebuild: ${reference.label}`).pipe(
      Effect.annotateLogs({ events: total, ms: Math.round(floor.seconds * 1000), ...expected.withPositions })
    )

    for (const system of systems) {
      yield* Effect.logInfo(`rebuild: ${system.label} starting`)
      const { value: partial, seconds } = yield* timed(system.run)
      const actual = yield* system.fingerprint
      const handled = Number(actual.handled)
      if (!partial && handled !== total) {
        return yield* Effect.die(
          new RebuildMismatch(`rebuild: ${system.label} stopped after ${handled} of ${total} events, within its budget`)
        )
      }
      const wanted =
        handled === total
          ? system.positions
            ? expected.withPositions
            : expected.withoutPositions
          : yield* reference.prefix(handled, system.positions)
      const wrong = differences(actual, wanted)
      if (wrong.length > 0) {
        return yield* Effect.die(
          new RebuildMismatch(
            `rebuild: the read model ${system.label} built after ${handled} events differs from ${reference.label}'s: ` +
              wrong.join("; ")
          )
        )
      }
      const result = { handled, seconds, rate: handled / seconds, partial: handled < total }
      results.set(system.label, result)
      yield* Effect.logInfo(`rebuild: ${system.label} verified`).pipe(
        Effect.annotateLogs({
          handled,
          of: total,
          ms: Math.round(seconds * 1000),
          eventsPerSec: Math.round(result.rate),
          ...(result.partial ? { stoppedBy: `the ${rebuildSeconds} s budget` } : {})
        })
      )
    }
    return results
  })
