import { NodeServices } from "@effect/platform-node"
import { assert, layer } from "@effect/vitest"
import { CheckpointStore, EventStore } from "@facta/core"
import { Cause, Console, Effect, Exit, Fiber, Layer, Option, References, Schedule } from "effect"
import { Command } from "effect/cli"
import { SqlClient } from "effect/sql"
import * as Database from "../../../../test/support/database.ts"
import type {} from "../../../../test/support/globalSetup.ts"
import * as Cli from "../../src/cli/Cli.ts"
import * as Infra from "../../src/infra/Database.ts"
import * as ReadModels from "../../src/readmodels/ReadModels.ts"
import * as Plan from "../../src/seed/Plan.ts"
import * as Seed from "../../src/seed/Seed.ts"

const storeSchema = Database.uniqueSchema("bankclistore")
const bankSchema = Database.uniqueSchema("bankclirm")
const transfers = 120

const Live = Layer.mergeAll(
  Infra.layerStores({ storeSchema, bankSchema }),
  Database.dropSchemaOnRelease(storeSchema),
  Database.dropSchemaOnRelease(bankSchema),
  NodeServices.layer,
  Layer.succeed(References.MinimumLogLevel, "Warn")
).pipe(Layer.provideMerge(Database.client()))

/** Runs the CLI with `argv` on the test's services and returns what it printed and how it ended. */
const cliExit = (argv: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const services = yield* Effect.context<Cli.Services>()
    const lines: Array<string> = []
    const capture = (...args: ReadonlyArray<unknown>) => {
      lines.push(args.map(String).join(" "))
    }
    const exit = yield* Command.runWith(Cli.make(Layer.succeedContext(services)), { version: "test" })(argv).pipe(
      Effect.provideService(Console.Console, { ...globalThis.console, log: capture, info: capture }),
      Effect.exit
    )
    return { output: lines.join("\n"), exit }
  })

/** Runs the CLI with `argv` on the test's services and returns what it printed. */
const cli = (argv: ReadonlyArray<string>) =>
  Effect.flatMap(cliExit(argv), ({ exit, output }) => Effect.as(exit, output))

const eventCount = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const [row] = yield* sql<{ n: bigint }>`SELECT count(*) AS n FROM ${sql(storeSchema)}.events`
  return Number(row?.n)
})

layer(Live, { excludeTestServices: true, timeout: 60_000 })("bank seed and admin CLI on PostgreSQL", (it) => {
  it.effect(
    "seeds deterministically through the command side, once",
    () =>
      Effect.gen(function* () {
        const first = yield* Seed.run({ transfers, progress: false })
        assert.strictEqual(first._tag, "Seeded")
        if (first._tag !== "Seeded") return
        const { outcomes } = first
        assert.strictEqual(
          outcomes.completed + outcomes.failed + outcomes.compensated + outcomes.rejected + outcomes.awaitingApproval,
          transfers
        )
        assert.strictEqual(outcomes.compensated, 1, "the transfer to the closed account is compensated")
        assert.strictEqual(outcomes.awaitingApproval, 2, "two large transfers wait for an approver")
        assert.isAbove(outcomes.completed, transfers / 2)
        const events = yield* eventCount
        assert.isAbove(events, transfers * 4)
        assert.strictEqual(first.events, events - 2, "the seed counts what it wrote but its first and last marks")

        const second = yield* Seed.run({ transfers, progress: false })
        assert.strictEqual(second._tag, "AlreadySeeded")
        assert.strictEqual(yield* eventCount, events, "a second seed adds nothing")
        assert.isTrue(yield* Seed.isSeeded)
      }),
    60_000
  )

  it.effect(
    "explain, projections status and rebuild, stream show, seed",
    () =>
      Effect.gen(function* () {
        // explain catches the read models up when no other process runs them
        const explained = yield* cli(["explain", "alice-checking"])
        const models = yield* ReadModels.ReadModels
        const account = Option.getOrThrow(yield* models.account("alice-checking"))
        const balance = Cli.formatSigned(account.balance, "USD")
        assert.include(explained, `alice-checking (alice, USD, Active): balance ${balance}`)
        assert.include(explained, `movement(s) explain the balance of ${balance}`)
        assert.include(explained, "AccountOpened")
        assert.include(explained, "$5000.00", "the opening deposit")
        const explanation = Option.getOrThrow(yield* models.explain("alice-checking"))
        assert.isTrue(explanation.consistent)

        const status = yield* cli(["projections", "status"])
        for (const name of ["transfer-process", "bank-accounts", "bank-transfers"]) assert.include(status, name)
        const head = yield* EventStore.EventStore.use((store) => store.head)
        assert.include(status, `${head.sequence}`, "caught up with the head of the log")
        const json = JSON.parse(yield* cli(["projections", "status", "--json"])) as ReadonlyArray<{
          name: string
          eventsBehind: number
        }>
        assert.deepStrictEqual(
          json.map((row) => [row.name, row.eventsBehind]),
          [
            ["transfer-process", 0],
            ["bank-accounts", 0],
            ["bank-transfers", 0]
          ]
        )

        yield* cli(["projections", "rebuild", "bank-accounts"])
        assert.deepStrictEqual(
          Option.getOrThrow(yield* models.explain("alice-checking")),
          explanation,
          "a rebuild gives the same read model"
        )

        const compensated = (yield* models.transfers({ account: Plan.closedAccount })).map((t) => t.transferId)
        assert.strictEqual(compensated.length, 1)
        const shown = yield* cli(["stream", "show", `Transfer-${compensated[0]}`])
        for (const type of ["TransferInitiated", "TransferDebited", "TransferCreditFailed", "TransferCompensated"]) {
          assert.include(shown, type)
        }
        const events = JSON.parse(
          yield* cli(["stream", "show", `Transfer-${compensated[0]}`, "--json"])
        ) as ReadonlyArray<{
          type: string
        }>
        assert.strictEqual(events.length, 4)

        assert.include(yield* cli(["seed", "--transfers", "10"]), "already seeded")
      }),
    60_000
  )

  it.effect(
    "projections rebuild names the instance holding the lease, offers blue/green and gives up after --wait",
    () =>
      Effect.gen(function* () {
        const models = yield* ReadModels.ReadModels
        const explanation = Option.getOrThrow(yield* models.explain("alice-checking"))
        const checkpoints = yield* CheckpointStore.CheckpointStore
        const live = Cli.projections.find((p) => p.name === "bank-accounts")!
        // the running app: it holds the lease of bank-accounts and tails the log
        const app = yield* Effect.forkChild(live.run({ owner: "bank-app-1", pollInterval: "100 millis" }))
        yield* Effect.gen(function* () {
          const rows = yield* checkpoints.status("bank-accounts")
          if (!rows.some((row) => Option.getOrElse(row.owner, () => "").startsWith("bank-app-1/")))
            return yield* Effect.fail("not yet")
        }).pipe(Effect.retry(Schedule.spaced("50 millis")), Effect.timeout("10 seconds"))
        const before = yield* checkpoints.status("bank-accounts")

        const started = Date.now()
        const { exit, output } = yield* cliExit(["projections", "rebuild", "bank-accounts", "--wait", "300 millis"])
        assert.isTrue(Exit.isFailure(exit), "exits non-zero")
        assert.isBelow(Date.now() - started, 10_000, "a bounded wait")
        assert.include(output, "bank-accounts v1 partition 0 is held by bank-app-1/")
        assert.include(output, "lease until ")
        assert.include(output, "blue/green")
        assert.include(output, "version 2")
        const error = Exit.isFailure(exit) ? String(Cause.squash(exit.cause)) : ""
        assert.include(error, "not rebuilt")

        const after = yield* checkpoints.status("bank-accounts")
        assert.deepStrictEqual(
          after.map((row) => [row.key.version, Option.getOrUndefined(row.owner), row.state]),
          before.map((row) => [row.key.version, Option.getOrUndefined(row.owner), row.state]),
          "the live checkpoint is untouched"
        )
        assert.deepStrictEqual(Option.getOrThrow(yield* models.explain("alice-checking")), explanation, "nor its rows")
        yield* Fiber.interrupt(app)
      }),
    60_000
  )
})
