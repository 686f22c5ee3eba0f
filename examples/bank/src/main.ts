#!/usr/bin/env node
/**
 * The demo (`pnpm demo`): the bank on a real PostgreSQL, with no set-up.
 *
 * 1. Database: `DATABASE_URL` when set, otherwise an embedded PostgreSQL with its data in `examples/bank/.data/`
 *    (kept, so the next run finds the same bank).
 * 2. Migrates the event store, checkpoints, snapshots and read models.
 * 3. Seeds the demo data when the database has none (with a progress bar).
 * 4. Runs the transfer process, the read-model projections and the expiry sweep in the background, each starting
 *    again by itself after a storage outage (`app/Background.ts`); the server gets their control, so that the
 *    console's Rebuild rebuilds a read model in this process while the demo runs.
 * 5. When a broker is configured (`NATS_URL`, else `REDIS_URL`; see `integration/Broker.ts`), relays the transfer
 *    facts to it in the background (`app/TransferRelay.ts`) and starts the risk watch (`risk/main.ts`) as a child
 *    process on the same database, which the page's risk panel reads through `GET /risk/alerts`; otherwise it says
 *    that the risk watch is off, and the bank runs as it always does.
 * 6. Serves the HTTP API, its docs and the page on `PORT` (default 3000, or a free port when it is taken), at once
 *    (`GET /health` says whether the read models have caught up), and once the read models have caught up prints the
 *    URLs, the demo tokens (also at `GET /demo/users`, in demo mode only) and example requests. Every request answers
 *    within `BANK_REQUEST_TIMEOUT` (default 10 seconds) and every storage call within `BANK_STORAGE_TIMEOUT` (default
 *    3 seconds): a stalled database gives 503 problems with `Retry-After`, and the bank recovers by itself when the
 *    database is back (`infra/Deadlines.ts`). Every request writes one access-log line (`infra/HttpEdges.ts`).
 *
 * Ctrl-C stops the server, the risk watch, the relay, the projections and then the database, in that order, and the demo exits with 0. When the
 * embedded server cannot run here, the demo prints why and what to do in one line and exits with 1.
 */
import * as net from "node:net"
import { NodeRuntime } from "@effect/platform-node"
import { EmbeddedPostgres } from "@facta/embedded-postgres"
import { Config, Console, Context, Effect, Layer, Logger, Option, Redacted, Runtime } from "effect"
import { HttpServer } from "effect/http"
import { Tokens } from "./api/Auth.ts"
import * as Demo from "./api/Demo.ts"
import { RiskWatchUrl } from "./api/Risk.ts"
import * as Server from "./api/Server.ts"
import * as Background from "./app/Background.ts"
import * as TransferRelay from "./app/TransferRelay.ts"
import * as Database from "./infra/Database.ts"
import * as Broker from "./integration/Broker.ts"
import * as RiskChild from "./risk/Child.ts"
import * as Plan from "./seed/Plan.ts"
import * as Seed from "./seed/Seed.ts"

/** Whether `port` can be listened on at 127.0.0.1 and every interface. */
const isFree = (port: number) =>
  Effect.promise(
    () =>
      new Promise<boolean>((resolve) => {
        const server = net.createServer()
        server.once("error", () => resolve(false))
        server.listen(port, () => server.close(() => resolve(true)))
      })
  )

const databaseLine = (database: EmbeddedPostgres.Database["Service"]): string => {
  switch (database._tag) {
    case "External":
      return "PostgreSQL from DATABASE_URL"
    case "Shared":
      return `embedded PostgreSQL already running on ${database.dataDir}`
    case "Embedded":
      return `embedded PostgreSQL on port ${database.server.port}, data in ${database.server.dataDir}`
  }
}

const examples = (base: string, tokens: Tokens["Service"], pending: ReadonlyArray<string>): string => {
  const token = (name: string) => Option.getOrElse(tokens.tokenOf(name), () => "<token>")
  const lines = [
    `  export ALICE=${token("alice")} BOB=${token("bob")} CAROL=${token("carol")} DAVE=${token("dave")} ADMIN=${token("admin")}`,
    "",
    "  # alice's accounts, and why her checking account holds its balance",
    `  curl -s ${base}/accounts -H "Authorization: Bearer $ALICE"`,
    `  curl -s ${base}/accounts/alice-checking/explain -H "Authorization: Bearer $ALICE"`,
    "",
    "  # a transfer from alice to bob (the transfer process moves the money)",
    `  curl -s -X POST ${base}/transfers -H "Authorization: Bearer $ALICE" -H "content-type: application/json" \\`,
    `    -H "idempotency-key: demo-1" -d '{"from":"alice-checking","to":"bob-checking","amount":"25.00","reference":"lunch"}'`,
    "",
    "  # transfers above $1000.00 wait for an approver: carol lists and approves them",
    `  curl -s "${base}/transfers?status=AwaitingApproval" -H "Authorization: Bearer $CAROL"`,
    ...(pending.length > 0
      ? [`  curl -s -X POST ${base}/transfers/${pending[0]}/approve -H "Authorization: Bearer $CAROL"`]
      : []),
    "",
    "  # the compensated transfer to a closed account, and the audit trail (auditor dave)",
    `  curl -s "${base}/transfers?account=oscar-old" -H "Authorization: Bearer $DAVE"`,
    `  curl -s ${base}/accounts/oscar-old/audit -H "Authorization: Bearer $DAVE"`
  ]
  return lines.join("\n")
}

/**
 * Waits until the read models have caught up with the log, saying on stderr how far behind they are every few
 * seconds; gives up waiting (and says so) after a minute, or when the storage does not answer.
 */
const awaitReadModels = (base: string) =>
  Effect.gen(function* () {
    let reported = -Infinity
    const started = Date.now()
    while (true) {
      const status = yield* Demo.readModelsStatus
      if (status.caughtUp) return
      if (Date.now() - started > 60_000) {
        return yield* Console.error(
          `bank: the read models are still ${status.eventsBehind} events behind; see ${base}/health`
        )
      }
      if (Date.now() - reported >= 3_000) {
        reported = Date.now()
        yield* Console.error(`bank: read models catching up (${status.eventsBehind} events behind; ${base}/health)`)
      }
      yield* Effect.sleep("250 millis")
    }
  }).pipe(
    Effect.catch((error) =>
      Console.error(`bank: could not tell whether the read models caught up (${error.message}); see ${base}/health`)
    )
  )

/**
 * Starts the risk watch as a child process on the demo's database (its port `RISK_PORT`, default 3100, or a free one
 * when that is taken); its URL, or none (said on stderr) when it did not start.
 */
const startRiskWatch = (database: EmbeddedPostgres.Database["Service"], broker: Broker.Broker) =>
  Effect.gen(function* () {
    const requested = yield* Config.Port("RISK_PORT").pipe(Config.withDefault(3100))
    const port = (yield* isFree(requested)) ? requested : 0
    const running = yield* RiskChild.start({ databaseUrl: Redacted.value(database.url), broker, port })
    return Option.some(running.url)
  }).pipe(
    Effect.catchTag("RiskWatchDidNotStart", (error) =>
      Console.error(`bank: ${error.message}; the page's risk card says it is off`).pipe(
        Effect.as(Option.none<string>())
      )
    )
  )

/** The banner's risk watch line: where it runs, or that it is off and how to start it. */
const riskLine = (broker: Option.Option<Broker.Broker>, url: Option.Option<string>): string =>
  Option.isNone(broker)
    ? "risk watch: off (set NATS_URL=nats://127.0.0.1:4222, or REDIS_URL=redis://127.0.0.1:6379, to start it)"
    : Option.isNone(url)
      ? `risk watch: did not start (transfer facts still go to ${Broker.describe(broker.value)})`
      : `risk watch: ${url.value}/flags (transfer facts via ${Broker.describe(broker.value)}; auditors and admins see its panel)`

const program = Effect.gen(function* () {
  const database = yield* EmbeddedPostgres.Database
  yield* Console.error(`bank: ${databaseLine(database)}; tables migrated`)

  // seed once: the seed itself skips a seeded database, and resumes an interrupted one
  const seeded = yield* Seed.run()
  yield* Console.error(`bank: ${Seed.describe(seeded)}`)
  const pending = Plan.plan({ seed: seeded.seed, transfers: seeded.transfers }).flatMap((op) =>
    op._tag === "Transfer" && op.review === "leave" ? [op.transferId] : []
  )

  // the transfer process, the read models and the expiry sweep, in the background for as long as the demo runs;
  // each starts again by itself after a storage outage; the read models under a control the server rebuilds them with
  const background = yield* Layer.build(Background.layer({ projections: { owner: "bank-demo" } }))

  // the transfer facts to the broker and the risk watch beside the bank, when a broker is configured
  const broker = yield* Broker.fromConfig
  const relay = Option.isSome(broker) ? yield* Layer.build(TransferRelay.layer(broker.value)) : Context.empty()
  const riskUrl = Option.isSome(broker) ? yield* startRiskWatch(database, broker.value) : Option.none<string>()

  const requested = yield* Config.Port("PORT").pipe(Config.withDefault(3000))
  const port = (yield* isFree(requested)) ? requested : 0
  // demo mode: GET /demo/users hands out the demo tokens (the page's "sign in as", and the tokens without a restart)
  const context = yield* Layer.build(
    Server.layer({ port, demo: true }).pipe(
      Layer.provide(Layer.succeedContext(Context.merge(background, relay))),
      Layer.provide(Layer.succeed(RiskWatchUrl, riskUrl))
    )
  )
  const address = Context.get(context, HttpServer.HttpServer).address
  const actual = address._tag === "UnixPathAddress" ? requested : address.port
  const base = `http://localhost:${actual}`
  const tokens = yield* Tokens
  if (actual !== requested) yield* Console.log(`Port ${requested} is taken; using ${actual} instead.`)
  // the server answers at once (GET /health says whether the read models caught up); the banner waits for them, so
  // that the balances the page and the examples show are the store's
  yield* awaitReadModels(base)
  yield* Console.log(
    [
      "",
      `Facta Bank is running on ${base}`,
      `  page:    ${base}/`,
      `  docs:    ${base}/docs`,
      `  openapi: ${base}/openapi.json`,
      "",
      "Demo tokens (new on every start; again at any time: curl -s " + `${base}/demo/users):`,
      ...tokens.issued.map(({ actor, token }) => `  ${actor.name.padEnd(6)} ${actor.role.padEnd(9)} ${token}`),
      "",
      "Try:",
      examples(base, tokens, pending),
      "",
      riskLine(broker, riskUrl),
      "",
      "Admin CLI (in another terminal): pnpm --filter @facta/example-bank cli --help",
      "Press Ctrl-C to stop.",
      ""
    ].join("\n")
  )
  yield* Effect.addFinalizer(() =>
    Console.error(
      `\nbank: stopping the server${Option.isSome(broker) ? ", the risk watch, the relay" : ""}, the projections and the database`
    )
  )
  return yield* Effect.never
})

const Live = Layer.mergeAll(
  Database.layer(),
  Tokens.layerDemo,
  // one line per log entry (logfmt): the access log is one line per request, greppable, with its request id
  Logger.layer([Logger.consoleLogFmt])
)

program.pipe(
  Effect.scoped,
  Effect.provide(Live),
  // when the embedded server cannot run here, its error says what to do: one line, no stack trace
  Effect.catchIf(
    (error): error is EmbeddedPostgres.EmbeddedPostgresError => error instanceof EmbeddedPostgres.EmbeddedPostgresError,
    (error) => Console.error(`bank: ${error.message}`).pipe(Effect.andThen(Effect.sync(() => (process.exitCode = 1))))
  ),
  // Ctrl-C is how the demo ends: exit with 0 rather than 130
  NodeRuntime.runMain({
    teardown: (exit, onExit) => Runtime.defaultTeardown(exit, (code) => onExit(code === 130 ? 0 : code))
  })
)
