/**
 * What the inbox tests share: an inbox store that loses acknowledgements, a table of applied messages, and the check
 * that a restarted consumer applies nothing twice.
 */

import { assert } from "@effect/vitest"
import { Inbox, StorageError } from "@facta/core"
import { PgInboxStore } from "@facta/postgres"
import { Effect, Fiber } from "effect"
import { SqlClient } from "effect/sql"

/**
 * `real` with every first commit of a message followed by a lost acknowledgement: the store answers as if the
 * connection dropped after the COMMIT (a retryable `StorageError`), so the consumer does not acknowledge and the broker
 * delivers the message again; later commits answer as `real` does. `lost` collects the ids that went through that.
 */
export const losingFirstAcks = (real: Inbox.InboxStore["Service"], lost: Set<string>): Inbox.InboxStore["Service"] => {
  const failure = new StorageError.StorageError({
    store: "InboxStore",
    operation: "apply",
    retryable: true,
    cause: "connection lost after COMMIT"
  })
  const loseFirst = <A>(ids: ReadonlyArray<string>, result: A) =>
    ids.every((id) => lost.has(id))
      ? Effect.succeed(result)
      : Effect.andThen(
          Effect.sync(() => {
            for (const id of ids) lost.add(id)
          }),
          Effect.fail(failure)
        )
  return Inbox.InboxStore.of({
    ...real,
    apply: (inbox, id, work) => Effect.flatMap(real.apply(inbox, id, work), (result) => loseFirst([id], result)),
    applyAll: (inbox, messages) =>
      Effect.flatMap(real.applyAll(inbox, messages), (result) =>
        loseFirst(
          messages.map((m) => m.messageId),
          result
        )
      )
  })
}

/**
 * An inbox `risk` that records each message it applies in `<schema>.applied`, and a `PgInboxStore` in `schema` whose
 * every message's first commit is followed by a lost acknowledgement: the store answers as if the connection dropped
 * after the COMMIT, so the consumer does not acknowledge and the broker delivers the message again. `failedOnce`
 * holds the ids that went through that.
 */
export const lossyRecordingInbox = (schema: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE ${sql(schema)}.applied (n serial PRIMARY KEY, event_id text NOT NULL, stream_id text NOT NULL, version int NOT NULL)`
    const real = yield* PgInboxStore.make({ schema })
    const failedOnce = new Set<string>()
    const store = losingFirstAcks(real, failedOnce)
    const inbox = Inbox.make({
      name: "risk",
      handle: (event) =>
        sql`INSERT INTO ${sql(schema)}.applied (event_id, stream_id, version)
            VALUES (${event.eventId}, ${event.streamId}, ${event.version})`.pipe(Effect.asVoid)
    })
    return { store, inbox, failedOnce }
  })

/**
 * Stops the inbox's consumer and runs it again for a moment, then checks what `lossyRecordingInbox`'s table holds:
 * `total` events, each once, in version order in each of the streams `Transfer-0` … `Transfer-<streams - 1>`, and the
 * one poison message `poison-1` parked as undecodable. The parked message, for the broker's own checks.
 */
export const appliedOnceAfterRestart = <E, R>(options: {
  readonly schema: string
  readonly store: Inbox.InboxStore["Service"]
  readonly consumer: Fiber.Fiber<void, E>
  readonly consume: Effect.Effect<void, E, R>
  readonly total: number
  readonly streams: number
}) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* Fiber.interrupt(options.consumer)
    const again = yield* Effect.forkChild(options.consume)
    yield* Effect.sleep("500 millis")
    yield* Fiber.interrupt(again)
    const rows = yield* sql<{ event_id: string; stream_id: string; version: number }>`
      SELECT event_id, stream_id, version FROM ${sql(options.schema)}.applied ORDER BY n`
    assert.strictEqual(rows.length, options.total)
    assert.strictEqual(new Set(rows.map((r) => r.event_id)).size, options.total)
    for (let s = 0; s < options.streams; s++) {
      const versions = rows.filter((r) => r.stream_id === `Transfer-${s}`).map((r) => r.version)
      assert.deepStrictEqual(
        versions,
        versions.map((_, i) => i + 1)
      )
    }
    const parked = yield* options.store.parked("risk")
    assert.strictEqual(parked.length, 1)
    assert.strictEqual(parked[0]!.messageId, "poison-1")
    assert.match(parked[0]!.error, /^undecodable/)
    return parked[0]!
  })
