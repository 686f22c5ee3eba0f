/** The benchmark's events, aggregate and small helpers, shared by every system and workload. */
import { Aggregate, Decider, Event } from "@facta/core"
import type { Scope } from "effect"
import { Effect, Schema } from "effect"
import { snapshotEvery } from "./config.ts"

export const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int })
export type Deposited = typeof Deposited.Type
export const AccountState = Schema.Struct({ balance: Schema.Int, deposits: Schema.Int })
export type AccountState = typeof AccountState.Type

const decider = Decider.make({
  initialState: { balance: 0, deposits: 0 } as AccountState,
  decide: (amount: number, _state: AccountState) =>
    Effect.succeed<ReadonlyArray<Deposited>>([Deposited.make({ amount })]),
  evolve: (state: AccountState, event: Deposited): AccountState => ({
    balance: state.balance + event.amount,
    deposits: state.deposits + 1
  })
})
export const Plain = Aggregate.make({ category: "Account", events: Deposited, decider })
export const Snapshotted = Aggregate.make({
  category: "Account",
  events: Deposited,
  decider,
  snapshot: { schema: AccountState, version: 1, every: snapshotEvery }
})

/** The same fold as the decider's, for the systems that hand back plain JSON. */
export const evolveJson = (state: AccountState, data: { readonly amount: number }): AccountState => ({
  balance: state.balance + data.amount,
  deposits: state.deposits + 1
})

export const now = () => performance.now()

export const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const start = now()
    const value = yield* effect
    return { value, ms: now() - start }
  })

export const range = (n: number) => Array.from({ length: n }, (_, i) => i)

/**
 * The systems' order in turn `k`: rotated by `k`, so that over as many turns as there are systems each one runs in
 * every place once and none runs twice in a row across turns (a reversal runs the first and the last twice in a row,
 * and measured them up to 9% faster than the same code in between).
 */
export const rotated = <A>(items: ReadonlyArray<A>, k: number): ReadonlyArray<A> => {
  const at = k % items.length
  return [...items.slice(at), ...items.slice(0, at)]
}

/** A `Deposited` event whose amount doubles as a sequence number the lag test reads back. */
export const eventData = (amount: number): Event.EventData => ({
  eventId: Event.makeEventIdUnsafe(),
  type: "Deposited",
  schemaVersion: 1,
  data: { amount }
})

/** What every system offers the workloads. */
export interface System {
  readonly label: string
  /** One append with the exact expected version (0 = a new stream). */
  readonly append: (
    streamId: string,
    expected: number,
    events: ReadonlyArray<Event.EventData>
  ) => Effect.Effect<void, unknown>
}

/** Tails the log live from about now, calling `handled` with each event's stream and amount. */
export type Tail = (handled: (streamId: string, amount: number) => void) => Effect.Effect<void, unknown, Scope.Scope>
