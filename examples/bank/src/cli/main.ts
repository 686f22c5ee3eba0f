#!/usr/bin/env node
/**
 * The admin CLI's entry point: `pnpm --filter @facta/example-bank cli --help`. It uses `DATABASE_URL`, or the
 * embedded server with the demo's data (`examples/bank/.data/`): the demo's server while the demo runs, otherwise
 * one started for the command. When the embedded server cannot run here, it prints why in one line and exits with 1.
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { EmbeddedPostgres } from "@facta/embedded-postgres"
import { Console, Effect } from "effect"
import { Command } from "effect/cli"
import * as Database from "../infra/Database.ts"
import * as Cli from "./Cli.ts"

Cli.make(Database.layer()).pipe(
  Command.run({ version: "0.1.0" }),
  // when the embedded server cannot run here, its error says what to do: one line, no stack trace
  Effect.catchIf(
    (error): error is EmbeddedPostgres.EmbeddedPostgresError => error instanceof EmbeddedPostgres.EmbeddedPostgresError,
    (error) => Console.error(`bank: ${error.message}`).pipe(Effect.andThen(Effect.sync(() => (process.exitCode = 1))))
  ),
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain
)
