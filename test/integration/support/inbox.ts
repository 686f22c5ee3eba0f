/** What the NATS and Redis inbox tests share: a table of applied messages and an inbox store that loses acks. */
import { Inbox, StorageError } from "@facta/core"
import { PgInboxStore } from "@facta/postgres"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"

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
    const lost = new StorageError.StorageError({
      store: "InboxStore",
      operation: "apply",
      retryable: true,
      cause: "connection lost after COMMIT"
    })
    /** Succeeds as the real commit did once every id has lost its acknowledgement already. */
    const loseFirstAck = <A>(ids: ReadonlyArray<string>, result: A) =>
      ids.every((id) => failedOnce.has(id))
        ? Effect.succeed(result)
        : Effect.andThen(
            Effect.sync(() => {
              for (const id of ids) failedOnce.add(id)
            }),
            Effect.fail(lost)
          )
    const store = Inbox.InboxStore.of({
      ...real,
      apply: (inbox, id, work) => Effect.flatMap(real.apply(inbox, id, work), (result) => loseFirstAck([id], result)),
      applyAll: (inbox, messages) =>
        Effect.flatMap(real.applyAll(inbox, messages), (result) =>
          loseFirstAck(
            messages.map((m) => m.messageId),
            result
          )
        )
    })
    const inbox = Inbox.make({
      name: "risk",
      handle: (event) =>
        sql`INSERT INTO ${sql(schema)}.applied (event_id, stream_id, version)
            VALUES (${event.eventId}, ${event.streamId}, ${event.version})`.pipe(Effect.asVoid)
    })
    return { store, inbox, failedOnce }
  })
