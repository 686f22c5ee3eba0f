/**
 * The bank's admin CLI (`pnpm --filter @facta/example-bank cli <command>`):
 *
 * - `migrate`: creates or upgrades the event store, checkpoint, snapshot and read-model tables.
 * - `seed [--transfers N] [--seed S]`: seeds the demo data (once; see `Seed`).
 * - `projections status [--json]`: each projection's checkpoint, lag (events and seconds), state and owner.
 * - `projections rebuild <name> [--wait D]`: clears a projection's read model and replays the log, with progress.
 *   When another instance (the running app) holds the projection's lease, it names the holder, says how to rebuild
 *   beside the live version instead (blue/green), waits at most `--wait` (default 5 seconds) for the lease and
 *   exits non-zero, read model untouched, if it is still held.
 * - `stream show <streamId> [--json]`: the events of a stream, archived streams included.
 * - `explain <accountId> [--json]`: the money movements of an account with the running balance.
 *
 * It works on the same database as the demo: `DATABASE_URL`, or the embedded server with its data in
 * `examples/bank/.data/`. Commands take the database from the layer given to {@link make}, built per command, so
 * `--help` starts nothing.
 */
import { type CheckpointStore, EventStore, Position, Projection, type Snapshot } from "@facta/core"
import { Console, DateTime, Duration, Effect, Fiber, type Layer, Option, Schedule, Stream } from "effect"
import { Argument, CliError, Command, Flag } from "effect/cli"
import type { SqlClient } from "effect/sql"
import type * as Aggregates from "../app/Aggregates.ts"
import * as TransferProcess from "../app/TransferProcess.ts"
import * as Money from "../domain/Money.ts"
import * as ReadModels from "../readmodels/ReadModels.ts"
import * as Progress from "../seed/Progress.ts"
import * as Seed from "../seed/Seed.ts"

/**
 * What the commands need: the stores, the command side, the read models and a SQL client.
 */
export type Services =
  | EventStore.EventStore
  | CheckpointStore.CheckpointStore
  | Snapshot.SnapshotStore
  | Aggregates.Accounts
  | Aggregates.Transfers
  | ReadModels.ReadModels
  | SqlClient.SqlClient

/**
 * A projection with its operations, so that projections of different event types sit in one list.
 */
export const entry = <E extends { readonly _tag: string }, R>(projection: Projection.Projection<E, R>) => ({
  name: projection.name,
  version: projection.version,
  status: Projection.status(projection),
  run: (options?: Projection.RunOptions) => Projection.run(projection, options),
  rebuild: (options?: Parameters<typeof Projection.rebuild>[1]) => Projection.rebuild(projection, options)
})

/**
 * Every projection of the bank, by name.
 */
export const projections = [
  entry(TransferProcess.TransferProcess),
  entry(ReadModels.projections.accounts),
  entry(ReadModels.projections.transfers)
] as const

/**
 * Lays rows out as a plain-text table with a header; columns are as wide as their widest cell.
 */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd()
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n")
}

/**
 * A signed amount of minor units as people read it: `-$20.00`, `$237.50`.
 */
export const formatSigned = (amount: number, currency: string): string => {
  const formatted = Money.format(Math.abs(amount) as Money.Amount, currency as Money.Currency)
  return amount < 0 ? `-${formatted}` : formatted
}

const json = Flag.Boolean("json").pipe(Flag.withDescription("Print JSON instead of a table"), Flag.withDefault(false))

const userError = (message: string) => new CliError.UserError({ cause: new Error(message), userMessage: message })

const isoOf = (utc: DateTime.Utc) => DateTime.formatIso(utc)

/** The owner the CLI's runs and rebuilds take leases as. */
const cliOwner = "bank-cli"

/** Whether some instance holds a live lease on the projection (the demo runs it). */
const isRunningElsewhere = (projection: (typeof projections)[number]) =>
  Effect.map(projection.status, (rows) =>
    rows.some(
      (row) =>
        row.key.version === projection.version &&
        row.state === "running" &&
        Option.isSome(row.owner) &&
        Option.match(row.leaseExpiresAt, {
          onNone: () => false,
          onSome: (expires) => expires.epochMilliseconds > Date.now()
        })
    )
  )

/**
 * The leases another instance holds on the projection's live version, as lines that say who holds them and until when;
 * the leases of runs under `ownOwner` (this process's, see `Background.ProjectionControl`) are left out.
 */
export const leaseHolders = Effect.fnUntraced(function* (
  projection: (typeof projections)[number],
  now: number,
  ownOwner?: string
) {
  const rows = yield* projection.status
  return rows
    .filter(
      (row) =>
        row.key.version === projection.version &&
        Option.isSome(row.owner) &&
        (ownOwner === undefined || !row.owner.value.startsWith(`${ownOwner}/`)) &&
        Option.match(row.leaseExpiresAt, { onNone: () => false, onSome: (expires) => expires.epochMilliseconds > now })
    )
    .map(
      (row) =>
        `${projection.name} v${row.key.version} partition ${row.key.partition} is held by ${Option.getOrElse(row.owner, () => "-")} ` +
        `(${row.state}, checkpoint updated ${isoOf(row.updatedAt)}, lease until ${Option.match(row.leaseExpiresAt, { onNone: () => "-", onSome: isoOf })})`
    )
})

/** What to do instead of waiting for the running app: stop it, or build the next version beside the live one. */
export const blueGreenHint = (projection: (typeof projections)[number]) =>
  [
    `The running app holds ${projection.name}: a rebuild now would wait for it to stop. Either stop the app and run`,
    `this again, or rebuild blue/green without stopping it: build the next version beside the live one by giving the`,
    `projection version ${projection.version + 1} (Projection.make({ version: ${projection.version + 1} })) with its own tables and deploying it;`,
    `it replays the log beside v${projection.version}, which keeps serving, and is promoted (CheckpointStore.activeVersion) once`,
    `caught up; then retire v${projection.version}. See docs/operating-postgres.md, "Running several instances".`
  ].join("\n")

/**
 * Brings the read models up to date when nothing else runs them (the CLI used without the demo running): the
 * transfer process first (its commands add events), then the read models.
 */
const catchUpIfIdle = Effect.gen(function* () {
  for (const projection of projections) {
    if (yield* isRunningElsewhere(projection)) continue
    yield* projection.run({ untilCaughtUp: true, batchWindow: "1 millis", owner: cliOwner })
  }
})

/**
 * Rebuilds a projection, with a progress bar (or periodic log lines) computed from its status, next to the
 * projection's own progress logs.
 */
export const rebuildWithProgress = Effect.fnUntraced(function* (
  projection: (typeof projections)[number],
  options?: { readonly wait?: Duration.Input | undefined }
) {
  const wait = Duration.toMillis(options?.wait ?? "5 seconds")
  const deadline = Date.now() + wait
  let holders = yield* leaseHolders(projection, Date.now())
  if (holders.length > 0) {
    yield* Console.log(holders.join("\n"))
    yield* Console.log(blueGreenHint(projection))
    yield* Console.log(`Waiting at most ${Duration.format(Duration.millis(wait))} for the lease...`)
    while (holders.length > 0 && Date.now() < deadline) {
      yield* Effect.sleep(Duration.millis(Math.min(250, Math.max(1, deadline - Date.now()))))
      holders = yield* leaseHolders(projection, Date.now())
    }
    if (holders.length > 0) {
      return yield* userError(
        `${projection.name} not rebuilt: its lease is still held after ${Duration.format(Duration.millis(wait))} ` +
          `(${holders.join("; ")}); stop the app or rebuild the next version beside it (see above)`
      )
    }
    yield* Console.log(`The lease of ${projection.name} is free: rebuilding`)
  }
  const store = yield* EventStore.EventStore
  const total = Number((yield* store.head).sequence)
  const progress = Progress.make(`rebuild ${projection.name}`, total)
  const started = Date.now()
  const poll = Effect.gen(function* () {
    const rows = (yield* projection.status).filter((row) => row.key.version === projection.version)
    const behind = rows.reduce((max, row) => Math.max(max, row.eventsBehind), 0)
    const done = Math.max(0, total - behind)
    yield* progress.update(done, done)
  }).pipe(Effect.ignore, Effect.repeat(Schedule.spaced("250 millis")))
  const fiber = yield* Effect.forkChild(poll)
  yield* projection.rebuild({ owner: cliOwner, batchWindow: "1 millis" })
  yield* Fiber.interrupt(fiber)
  const seconds = (Date.now() - started) / 1000
  yield* progress.finish(`${projection.name} rebuilt from ${total} events in ${seconds.toFixed(1)} s`)
})

/**
 * The CLI's root command; every command runs on the services `layer` provides (built for that command only).
 */
export const make = <E>(layer: Layer.Layer<Services, E>) => {
  const provided = <A, E2, R>(effect: Effect.Effect<A, E2, R>) => Effect.provide(effect, layer)

  const migrate = Command.make("migrate", {}, () =>
    provided(Console.log("migrated: event store, snapshots, checkpoints and read models are up to date"))
  ).pipe(Command.withDescription("Create or upgrade the tables of the event store, checkpoints and read models"))

  const seed = Command.make(
    "seed",
    {
      transfers: Flag.Int("transfers").pipe(Flag.withDescription("How many transfers"), Flag.withDefault(2000)),
      seed: Flag.Int("seed").pipe(Flag.withDescription("The random seed (same seed, same data)"), Flag.withDefault(42))
    },
    ({ seed, transfers }) =>
      provided(
        Effect.gen(function* () {
          const result = yield* Seed.run({ seed, transfers })
          yield* Console.log(Seed.describe(result))
        })
      )
  ).pipe(Command.withDescription("Seed the demo data through the command side (does nothing when already seeded)"))

  const status = Command.make("status", { json }, ({ json }) =>
    provided(
      Effect.gen(function* () {
        const rows = yield* Effect.forEach(projections, (projection) =>
          Effect.map(projection.status, (statuses) => ({ projection, statuses }))
        )
        const flat = rows.flatMap(
          ({
            projection,
            statuses
          }): ReadonlyArray<{ name: string; status: Projection.ProjectionStatus | undefined }> =>
            statuses.length === 0
              ? [{ name: projection.name, status: undefined }]
              : statuses.map((status) => ({ name: projection.name, status }))
        )
        if (json) {
          yield* Console.log(
            JSON.stringify(
              flat.map(({ name, status }) =>
                status === undefined
                  ? { name, state: "never run" }
                  : {
                      name,
                      version: status.key.version,
                      partition: status.key.partition,
                      checkpoint: Position.format(status.checkpoint),
                      eventsBehind: status.eventsBehind,
                      secondsBehind: status.secondsBehind,
                      state: status.state,
                      owner: Option.getOrNull(status.owner),
                      error: Option.getOrNull(status.error),
                      updatedAt: isoOf(status.updatedAt)
                    }
              ),
              null,
              2
            )
          )
          return
        }
        yield* Console.log(
          table(
            ["projection", "v", "part", "checkpoint", "behind (events)", "behind (s)", "state", "owner", "error"],
            flat.map(({ name, status }) =>
              status === undefined
                ? [name, "-", "-", "-", "-", "-", "never run", "-", ""]
                : [
                    name,
                    String(status.key.version),
                    String(status.key.partition),
                    Position.format(status.checkpoint),
                    String(status.eventsBehind),
                    status.secondsBehind.toFixed(1),
                    status.state,
                    Option.getOrElse(status.owner, () => "-"),
                    Option.getOrElse(status.error, () => "")
                  ]
            )
          )
        )
      })
    )
  ).pipe(Command.withDescription("Show each projection's checkpoint, lag, state and owner"))

  const rebuild = Command.make(
    "rebuild",
    {
      name: Argument.Literals(
        "name",
        projections.map((p) => p.name)
      ).pipe(Argument.withDescription("The projection to rebuild")),
      wait: Flag.String("wait").pipe(
        Flag.withDescription(
          "How long to wait for the lease when the running app holds it, e.g. '30 seconds' (then exit non-zero)"
        ),
        Flag.withDefault("5 seconds")
      )
    },
    ({ name, wait }) =>
      provided(
        Effect.gen(function* () {
          const duration = Duration.fromInput(wait as Duration.Input)
          if (Option.isNone(duration)) return yield* userError(`--wait: not a duration: ${wait} (try '30 seconds')`)
          yield* rebuildWithProgress(projections.find((p) => p.name === name)!, { wait: duration.value })
        })
      )
  ).pipe(
    Command.withDescription(
      "Clear a projection's read model and replay the whole log; when the running app holds the projection, say who and how to rebuild beside it, and wait at most --wait"
    )
  )

  const projectionsCommand = Command.make("projections").pipe(
    Command.withDescription("Inspect and rebuild projections"),
    Command.withSubcommands([status, rebuild])
  )

  const show = Command.make(
    "show",
    {
      streamId: Argument.String("streamId").pipe(
        Argument.withDescription("A stream id such as Account-alice-checking")
      ),
      json
    },
    ({ json, streamId }) =>
      provided(
        Effect.gen(function* () {
          const store = yield* EventStore.EventStore
          const events = yield* store.read(streamId, { includeArchived: true }).pipe(
            Stream.runCollect,
            Effect.catchTag("StreamNotFound", () => Effect.fail(userError(`No stream ${streamId}`))),
            Effect.catchTag("StreamDeleted", () => Effect.fail(userError(`The stream ${streamId} was deleted`)))
          )
          const info = yield* store.streamInfo(streamId)
          if (json) {
            yield* Console.log(
              JSON.stringify(
                Array.from(events, (e) => ({
                  eventId: e.eventId,
                  version: e.version,
                  position: Position.format(e.position),
                  type: e.type,
                  schemaVersion: e.schemaVersion,
                  data: e.data,
                  metadata: e.metadata,
                  recordedAt: isoOf(e.recordedAt)
                })),
                null,
                2
              )
            )
            return
          }
          const archived = Option.flatMap(info, (i) => i.archivedAt)
          yield* Console.log(
            `${streamId}: ${events.length} event(s)${Option.isSome(archived) ? `, archived at ${isoOf(archived.value)}` : ""}`
          )
          yield* Console.log(
            table(
              ["version", "position", "recorded at", "type", "actor", "correlation", "data"],
              Array.from(events, (e) => [
                String(e.version),
                Position.format(e.position),
                isoOf(e.recordedAt),
                e.type,
                e.metadata.actor ?? "",
                e.metadata.correlationId ?? "",
                JSON.stringify(e.data)
              ])
            )
          )
        })
      )
  ).pipe(Command.withDescription("Show the events of a stream (archived streams included)"))

  const stream = Command.make("stream").pipe(
    Command.withDescription("Inspect streams"),
    Command.withSubcommands([show])
  )

  const explain = Command.make(
    "explain",
    {
      accountId: Argument.String("accountId").pipe(Argument.withDescription("An account id such as alice-checking")),
      json
    },
    ({ accountId, json }) =>
      provided(
        Effect.gen(function* () {
          yield* catchUpIfIdle
          const models = yield* ReadModels.ReadModels
          const found = yield* models.explain(accountId)
          if (Option.isNone(found)) return yield* userError(`No account ${accountId}`)
          const { account, consistent, entries } = found.value
          if (json) {
            yield* Console.log(JSON.stringify(found.value, null, 2))
            return
          }
          const money = (amount: number) => formatSigned(amount, account.currency)
          yield* Console.log(
            `${account.accountId} (${account.owner}, ${account.currency}, ${account.status}): balance ${money(account.balance)}`
          )
          yield* Console.log(
            table(
              ["version", "recorded at", "movement", "amount", "balance", "transfer", "actor", "reference"],
              entries.map((e) => [
                String(e.version),
                e.recordedAt,
                e.type,
                money(e.amount),
                money(e.balanceAfter),
                e.transferId ?? "",
                e.actor ?? "",
                e.reference ?? e.reason ?? ""
              ])
            )
          )
          yield* Console.log(
            consistent
              ? `${entries.length} movement(s) explain the balance of ${money(account.balance)}`
              : `INCONSISTENT: the movements add up to ${money(entries.at(-1)?.balanceAfter ?? 0)}, the balance is ${money(account.balance)}`
          )
        })
      )
  ).pipe(Command.withDescription("Explain an account's balance: its money movements with the running balance"))

  return Command.make("bank").pipe(
    Command.withDescription("Admin commands of the Facta example bank"),
    Command.withSubcommands([migrate, seed, projectionsCommand, stream, explain])
  )
}
