#!/usr/bin/env node
/**
 * The admin CLI's entry point: `pnpm --filter @facta/example-bank cli --help`. It uses `DATABASE_URL`, or the
 * embedded server with the demo's data (`examples/bank/.data/`); stop `pnpm demo` first when using the embedded
 * server, since its data directory can serve one server at a time.
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Effect } from "effect"
import { Command } from "effect/cli"
import * as Database from "../infra/Database.ts"
import * as Cli from "./Cli.ts"

Cli.make(Database.layer()).pipe(
  Command.run({ version: "0.1.0" }),
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain
)
