import { EmbeddedPostgres } from "@facta/embedded-postgres"
import type { TestProject } from "vitest/node"
import * as Embedded from "./embeddedPostgres.ts"

declare module "vitest" {
  export interface ProvidedContext {
    databaseUrl: string
  }
}

/**
 * One PostgreSQL server for the whole test run: the one `DATABASE_URL` names, or else an embedded server started
 * here and stopped when the run ends. Each test file then works in a schema of its own.
 */
export default async function setup(project: TestProject) {
  const configured = process.env.DATABASE_URL
  if (configured !== undefined && configured !== "") {
    project.provide("databaseUrl", configured)
    return
  }
  const started = Date.now()
  const server = await Embedded.start().catch((error: unknown) => {
    // when the embedded server cannot run here, its error says what to do: one line, no stack trace
    if (error instanceof EmbeddedPostgres.EmbeddedPostgresError) {
      console.error(`test: ${error.message}`)
      process.exit(1)
    }
    throw error
  })
  console.log(`test: embedded PostgreSQL ready on ${new URL(server.url).port} in ${Date.now() - started} ms`)
  project.provide("databaseUrl", server.url)
  return async () => {
    await server.stop()
  }
}
