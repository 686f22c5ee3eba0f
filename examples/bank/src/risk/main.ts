#!/usr/bin/env node
import { NodeRuntime } from "@effect/platform-node"
/**
 * The risk watch as a process of its own (`node --conditions=@facta/source src/risk/main.ts`, or
 * `pnpm --filter @facta/example-bank risk`); `pnpm demo` starts it as a child process when a broker is configured.
 *
 * | variable                | meaning                                                                  | default      |
 * | ----------------------- | ------------------------------------------------------------------------ | ------------ |
 * | `DATABASE_URL`          | the PostgreSQL server (required: the demo passes its own, embedded or not) |            |
 * | `NATS_URL`, `REDIS_URL` | the broker, and the names of `integration/Broker.ts` (one is required)   |              |
 * | `RISK_PORT`             | the HTTP port (`0`: a free one)                                          | `3100`       |
 * | `RISK_SCHEMA`           | its PostgreSQL schema (read model and inbox)                             | `risk`       |
 * | `RISK_DURABLE`          | the durable consumer (NATS) or consumer group (Redis)                    | `risk-watch` |
 * | `RISK_ACK_WAIT`         | how long an unacknowledged fact waits before it comes again              | `30 seconds` |
 * | `RISK_LARGE_THRESHOLDS` | the large-transfer thresholds, `USD=2500.00,EUR=2500.00`                 | `Rules.ts`   |
 *
 * Once it serves, it prints one line on stdout, `risk watch: listening on http://127.0.0.1:<port>` (the demo reads
 * the port from it). It stops on SIGINT or SIGTERM; killed outright, it loses nothing: an unacknowledged fact comes
 * again and its inbox applies it once.
 */
import { PgClient } from "@effect/sql-pg"
import { Config, Console, Duration, Effect, Layer, Logger, Option } from "effect"
import { HttpServer } from "effect/http"
import * as Broker from "../integration/Broker.ts"
import * as RiskWatch from "./RiskWatch.ts"
import * as Rules from "./Rules.ts"

const program = Effect.gen(function* () {
  const broker = yield* Broker.fromConfig
  if (Option.isNone(broker)) {
    yield* Console.error("risk watch: set NATS_URL (or REDIS_URL) to say where the bank's transfer facts are")
    return yield* Effect.sync(() => {
      process.exitCode = 1
    })
  }
  // 0 picks a free port (Config.Port refuses it): the demo and the tests read the port from the line printed below
  const port = yield* Config.Int("RISK_PORT").pipe(Config.withDefault(3100))
  if (port < 0 || port > 65535) {
    yield* Console.error("risk watch: RISK_PORT is a port from 0 (a free one) to 65535")
    return yield* Effect.sync(() => {
      process.exitCode = 1
    })
  }
  const schema = yield* Config.String("RISK_SCHEMA").pipe(Config.withDefault("risk"))
  const durable = yield* Config.String("RISK_DURABLE").pipe(Config.withDefault("risk-watch"))
  const ackWait = yield* Config.Duration("RISK_ACK_WAIT").pipe(Config.withDefault(Duration.seconds(30)))
  const thresholds = yield* Config.option(Config.String("RISK_LARGE_THRESHOLDS"))
  const largeThresholds = Option.isNone(thresholds)
    ? Rules.defaultLargeThresholds
    : Rules.parseThresholds(thresholds.value)
  if (largeThresholds === undefined) {
    yield* Console.error("risk watch: RISK_LARGE_THRESHOLDS is not a list like USD=2500.00,EUR=2500.00")
    return yield* Effect.sync(() => {
      process.exitCode = 1
    })
  }
  const database = PgClient.layerConfig({ url: Config.Redacted("DATABASE_URL"), maxConnections: Config.succeed(5) })
  const service = RiskWatch.layer({
    broker: broker.value,
    durable,
    ackWait,
    schema,
    port,
    settings: { ...Rules.defaults, largeThresholds }
  }).pipe(Layer.provide(database))
  const context = yield* Layer.build(service)
  const address = (yield* HttpServer.HttpServer.pipe(Effect.provideContext(context))).address
  const actual = "port" in address ? address.port : port
  yield* Console.log(`risk watch: listening on http://127.0.0.1:${actual}`)
  yield* Effect.logInfo("risk watch: consuming").pipe(
    Effect.annotateLogs({ broker: Broker.describe(broker.value), schema, durable })
  )
  return yield* Effect.never
})

program.pipe(Effect.scoped, Effect.provide(Logger.layer([Logger.consoleLogFmt])), NodeRuntime.runMain)
