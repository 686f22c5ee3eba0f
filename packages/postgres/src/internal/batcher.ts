/**
 * Group commit for independent requests. A request that finds fewer than `maxInFlight` runs going runs at once, in
 * its caller's fiber, as it would without the batcher. One that finds them all busy waits; when a run ends, the
 * requests waiting by then go together in the next one. A lone caller never waits, and concurrent callers share
 * round trips and commits instead of queueing for connections one by one.
 *
 * Requests that waited run in a fiber of the batcher's scope, under a root span of their own (`span`) linked to the
 * span each caller was in: a trace shows every batch a request went through, and no caller's trace shows the others'
 * work.
 */
import { Deferred, Effect, Exit, Option, type Scope, Tracer } from "effect"

interface Waiting<I, A, E> {
  readonly item: I
  readonly deferred: Deferred.Deferred<A, E>
  readonly caller: Option.Option<Tracer.AnySpan>
}

export const make = Effect.fnUntraced(function* <I, A, E>(options: {
  readonly maxInFlight: number
  readonly maxSize: number
  /** The name of the span each run of waiting requests gets. */
  readonly span: string
  /** Runs one request, in its caller's fiber when the caller did not wait. */
  readonly one: (item: I) => Effect.Effect<A, E>
  /** Runs several requests together; one exit per request, in order. */
  readonly many: (items: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<Exit.Exit<A, E>>>
}): Effect.fn.Return<(item: I) => Effect.Effect<A, E>, never, Scope.Scope> {
  const scope = yield* Effect.scope
  const waiting: Array<Waiting<I, A, E>> = []
  let inFlight = 0

  const runWaiting = (batch: ReadonlyArray<Waiting<I, A, E>>): Effect.Effect<void> => {
    const run =
      batch.length === 1
        ? Effect.map(Effect.exit(options.one(batch[0]!.item)), (exit) => [exit])
        : options.many(batch.map((w) => w.item))
    const links = batch.flatMap((w) => (Option.isSome(w.caller) ? [{ span: w.caller.value, attributes: {} }] : []))
    const traced = Effect.withSpan(run, options.span, { root: true, links, attributes: { requests: batch.length } })
    // a run that ends as a whole (a defect, or interrupted at shutdown) ends every request in it the same way
    return Effect.asVoid(
      Effect.onExit(traced, (exit) =>
        Effect.sync(() => {
          for (let i = 0; i < batch.length; i++) {
            Deferred.doneUnsafe(batch[i]!.deferred, Exit.isSuccess(exit) ? exit.value[i]! : Exit.failCause(exit.cause))
          }
        })
      )
    )
  }

  // the slot of a run that ends passes to the requests waiting by then, until none is left
  const release: Effect.Effect<void> = Effect.suspend(() => {
    if (waiting.length === 0) {
      inFlight--
      return Effect.void
    }
    return Effect.andThen(runWaiting(waiting.splice(0, options.maxSize)), release)
  })
  const releaseInBackground = Effect.forkIn(
    Effect.onInterrupt(release, () =>
      Effect.sync(() => {
        for (const w of waiting.splice(0)) Deferred.doneUnsafe(w.deferred, Exit.interrupt())
      })
    ),
    scope
  )

  return (item: I): Effect.Effect<A, E> =>
    Effect.suspend(() => {
      if (inFlight < options.maxInFlight) {
        inFlight++
        // the caller's own run; the next batch goes on in a fiber of the store's, so interrupting this caller
        // cannot abandon the requests that wait
        return Effect.ensuring(
          options.one(item),
          Effect.suspend(() => (waiting.length === 0 ? Effect.sync(() => void inFlight--) : releaseInBackground))
        )
      }
      // `serviceOption`, not `Effect.option(Effect.currentParentSpan)`: without a span that one builds an error,
      // and its stack trace, for every waiting request (docs/benchmarks.md, item 14)
      return Effect.flatMap(Effect.serviceOption(Tracer.ParentSpan), (caller) => {
        const waiter: Waiting<I, A, E> = { item, deferred: Deferred.makeUnsafe<A, E>(), caller }
        waiting.push(waiter)
        return Effect.onInterrupt(Deferred.await(waiter.deferred), () =>
          Effect.sync(() => {
            const at = waiting.indexOf(waiter)
            if (at >= 0) waiting.splice(at, 1)
          })
        )
      })
    })
})
