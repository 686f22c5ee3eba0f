/**
 * The inbox's consumer for Redis Streams: a member of a consumer group reads a stream (`count` entries at most at a
 * time), hands what it read to `Inbox.receiveAll` (the handlers' writes and the messages' records in one commit) and
 * acknowledges them (`XACK`) after that commit; a parked message is acknowledged too (it is in the inbox's parked
 * table, with the reason). An entry whose commit failed stays pending and is read again (with every entry after it, in
 * order) after a delay. On start the consumer first reads its own pending entries (those a previous run of the same
 * consumer took and never acknowledged), and it claims (`XAUTOCLAIM`) the entries other consumers of the group left
 * pending for longer than `claimIdle` (a consumer that died). A redelivered entry whose record committed already is
 * acknowledged without being applied again.
 *
 * @since 0.1.0
 */
import { Inbox } from "@facta/core"
import { Cause, Clock, Duration, Effect, Exit } from "effect"
import { type Connection, duplicate, RedisClient, RedisError } from "./RedisClient.ts"
import { Fields } from "./RedisPublisher.ts"

const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/**
 * Where and how to consume: the stream's key, the consumer group (created at the stream's start when missing, with
 * the stream), this consumer's name in it (default `consumer`; give each process its own), how long one read
 * blocks (default 1 second), how long an entry must have been pending before another consumer claims it (default 30
 * seconds), and how long after a failed commit the entry is read again (default 1 second).
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  readonly key: string
  readonly group: string
  readonly consumer?: string | undefined
  readonly block?: Duration.Input | undefined
  readonly claimIdle?: Duration.Input | undefined
  readonly retryDelay?: Duration.Input | undefined
  /** Entries read at once (default 100). */
  readonly count?: number | undefined
}

/**
 * An entry as a delivery: its id is the `eventId` field (the event id the relay wrote; else `<key>:<entry id>`), its
 * subject the stream's key, its headers the entry's fields but `data`, and its body the integration event as JSON
 * (what `Inbox.make` decodes by default).
 *
 * @example
 * ```ts
 * import { RedisInbox } from "@facta/redis"
 *
 * const delivery = RedisInbox.toDelivery("facta:Account", "1700000000000-0", {
 *   eventId: "e-1",
 *   streamId: "Account-1",
 *   category: "Account",
 *   version: "1",
 *   position: "0.1.1",
 *   type: "Opened",
 *   schemaVersion: "1",
 *   recordedAt: "2026-01-01T00:00:00.000Z",
 *   data: "{\"owner\":\"ann\"}"
 * })
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const toDelivery = (key: string, entryId: string, fields: Readonly<Record<string, string>>): Inbox.Delivery => {
  const headers: Record<string, string> = { "Redis-Entry-Id": entryId }
  for (const [name, value] of Object.entries(fields)) if (name !== Fields.data) headers[name] = value
  const envelope: Record<string, unknown> = {}
  for (const name of [Fields.eventId, Fields.streamId, Fields.category, Fields.position, Fields.type] as const)
    if (fields[name] !== undefined) envelope[name] = fields[name]
  for (const name of [Fields.version, Fields.schemaVersion] as const)
    if (fields[name] !== undefined) envelope[name] = Number(fields[name])
  for (const name of [Fields.correlationId, Fields.causationId, Fields.recordedAt] as const)
    if (fields[name] !== undefined) envelope[name] = fields[name]
  // the data goes in as it is stored: a body that is not JSON is parked by the inbox as undecodable
  const head = JSON.stringify(envelope)
  const data = fields[Fields.data]
  const body = data === undefined ? head : `${head.slice(0, -1)}${head.length > 2 ? "," : ""}"data":${data}}`
  return {
    id: fields[Fields.eventId] ?? `${key}:${entryId}`,
    subject: key,
    headers,
    body: new TextEncoder().encode(body)
  }
}

/**
 * Creates the consumer group when missing (from the stream's first entry; the stream is created empty when missing).
 *
 * @example
 * ```ts
 * import { RedisInbox } from "@facta/redis"
 *
 * const ready = RedisInbox.ensureGroup({ key: "facta:Transfer", group: "risk" })
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const ensureGroup = Effect.fn("RedisInbox.ensureGroup")(function* (options: Options) {
  const client = yield* RedisClient
  yield* Effect.tryPromise({
    try: async () => {
      try {
        await client.connection.xGroupCreate(options.key, options.group, "0", { MKSTREAM: true })
      } catch (error) {
        if (errorText(error).startsWith("BUSYGROUP")) return
        throw error
      }
    },
    catch: (cause) => new RedisError({ operation: `create group ${options.group} on ${options.key}`, cause })
  })
})

interface Entry {
  readonly id: string
  readonly message: Record<string, string> | null
}

const entriesOf = (reply: unknown): ReadonlyArray<Entry> => {
  if (reply === null || !Array.isArray(reply)) return []
  const out: Array<Entry> = []
  for (const stream of reply as ReadonlyArray<{ readonly messages: ReadonlyArray<Entry | null> }>)
    for (const message of stream.messages) if (message !== null) out.push(message)
  return out
}

/**
 * Runs an inbox on a consumer group until interrupted: the entries of each read are received together by
 * `Inbox.receiveAll` (one commit), then acknowledged (applied, applied before, or parked), or left pending (the
 * commit failed for a retryable reason: read again after `retryDelay`, or by another consumer once it was idle for
 * `claimIdle`). Entries are handled in the stream's order. A Redis failure while consuming (a lost connection, a
 * restarting server) is retried with backoff for as long as it lasts; fails with a `RedisError` only when the group
 * cannot be created at the start.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Inbox } from "@facta/core"
 * import { RedisInbox } from "@facta/redis"
 *
 * const audit = Inbox.make({ name: "audit", handle: (event) => Effect.log(event.type) })
 * const program = RedisInbox.run(audit, { key: "facta:Account", group: "audit", consumer: "audit-1" })
 * ```
 *
 * @category running
 * @since 0.1.0
 */
export const run = Effect.fn("RedisInbox.run")(function* <A, R>(
  inbox: Inbox.Inbox<A, R>,
  options: Options
): Effect.fn.Return<void, RedisError, RedisClient | Inbox.InboxStore | R> {
  const client = yield* RedisClient
  yield* ensureGroup(options)
  const consumer = options.consumer ?? "consumer"
  const block = Duration.toMillis(Duration.fromInputUnsafe(options.block ?? "1 second"))
  const claimIdle = Duration.toMillis(Duration.fromInputUnsafe(options.claimIdle ?? "30 seconds"))
  const retryDelay = Duration.fromInputUnsafe(options.retryDelay ?? "1 second")
  const count = Math.max(1, options.count ?? 100)
  const { key, group } = options

  // a command waits for its answer at most the client's timeout (past a blocking read's own wait): a connection
  // being re-established queues commands, and a stop must not wait for it
  const call = <T>(operation: string, f: () => Promise<T>, waits = 0) =>
    Effect.tryPromise({ try: f, catch: (cause) => new RedisError({ operation, cause }) }).pipe(
      Effect.timeoutOrElse({
        duration: client.timeout + waits,
        orElse: () => Effect.fail(new RedisError({ operation, cause: `no answer within ${client.timeout + waits} ms` }))
      })
    )

  /**
   * Receives entries in order with one commit (`Inbox.receiveAll`) and acknowledges them with one `XACK`: `false`
   * when the commit failed and they stay pending.
   */
  const handleAll = (
    connection: Connection,
    entries: ReadonlyArray<Entry>
  ): Effect.Effect<boolean, RedisError, Inbox.InboxStore | R> => {
    if (entries.length === 0) return Effect.succeed(true)
    // an entry trimmed away while pending has nothing to apply, and is acknowledged with the rest
    const present = entries.filter((entry) => entry.message !== null)
    const ids = entries.map((entry) => entry.id)
    return Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(
        Effect.exit(
          restore(
            Inbox.receiveAll(
              inbox,
              present.map((entry) => toDelivery(key, entry.id, entry.message!))
            )
          )
        ),
        (exit) => {
          if (Exit.isSuccess(exit))
            return Effect.as(
              call("XACK", () => connection.xAck(key, group, ids)),
              true
            )
          return Cause.hasInterruptsOnly(exit.cause)
            ? Effect.failCause(exit.cause as Cause.Cause<never>)
            : Effect.as(
                Effect.logWarning("inbox could not commit a batch; it will be read again").pipe(
                  Effect.annotateLogs({
                    inbox: inbox.name,
                    key,
                    entries: entries.length,
                    error: errorText(Cause.squash(exit.cause))
                  })
                ),
                false
              )
        }
      )
    )
  }

  /** This consumer's own pending entries, oldest first, all of them: `false` when one failed again. */
  const drainPending = (connection: Connection) =>
    Effect.gen(function* () {
      let after = "0"
      while (true) {
        const entries = entriesOf(
          yield* call("XREADGROUP", () => connection.xReadGroup(group, consumer, { key, id: after }, { COUNT: count }))
        )
        if (entries.length === 0) return true
        if (!(yield* handleAll(connection, entries))) return false
        after = entries[entries.length - 1]!.id
      }
    })

  /** The entries other consumers left pending for longer than `claimIdle`, now this consumer's. */
  const claim = (connection: Connection) =>
    Effect.gen(function* () {
      let start = "0-0"
      while (true) {
        const reply = yield* call("XAUTOCLAIM", () =>
          connection.xAutoClaim(key, group, consumer, claimIdle, start, { COUNT: count })
        )
        const entries = (reply.messages as ReadonlyArray<Entry | null>).filter((m): m is Entry => m !== null)
        if (entries.length > 0 && !(yield* handleAll(connection, entries))) return false
        if (reply.nextId === "0-0" || entries.length === 0) return true
        start = reply.nextId
      }
    })

  yield* Effect.scoped(
    Effect.gen(function* () {
      const connection = yield* duplicate
      let lastClaim = 0
      let pending = true
      let failures = 0
      const step = Effect.gen(function* () {
        if (pending) {
          if (!(yield* drainPending(connection))) return yield* Effect.sleep(retryDelay)
          pending = false
        }
        const now = yield* Clock.currentTimeMillis
        if (now - lastClaim >= Math.max(100, claimIdle / 2)) {
          lastClaim = now
          if (!(yield* claim(connection))) {
            pending = true
            return yield* Effect.sleep(retryDelay)
          }
        }
        const entries = entriesOf(
          yield* call(
            "XREADGROUP",
            () => connection.xReadGroup(group, consumer, { key, id: ">" }, { COUNT: count, BLOCK: block }),
            block
          )
        )
        if (!(yield* handleAll(connection, entries))) {
          pending = true
          yield* Effect.sleep(retryDelay)
        }
      })
      while (true) {
        const exit = yield* Effect.exit(step)
        if (Exit.isSuccess(exit)) {
          failures = 0
          continue
        }
        if (Cause.hasInterruptsOnly(exit.cause)) return yield* Effect.failCause(exit.cause)
        // Redis failed (a lost connection, a server restarting): the entries read meanwhile are pending, read again
        pending = true
        yield* Effect.logWarning("inbox could not read from Redis; retrying").pipe(
          Effect.annotateLogs({ inbox: inbox.name, key, error: errorText(Cause.squash(exit.cause)) })
        )
        yield* Effect.sleep(Math.min(5000, 100 * 2 ** Math.min(failures++, 6)))
      }
    })
  )
})
