import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { assert, it } from "@effect/vitest"

// CI trusts the exit code of the test run. The embedded server's library once turned every run's exit code into 0
// (a `beforeExit` hook calling `process.exit(0)`), so a failing run must be seen to fail, embedded server included.
it("a test run with a failing case exits non-zero, with the embedded PostgreSQL server", { timeout: 120_000 }, () => {
  const root = fileURLToPath(new URL("..", import.meta.url))
  const vitest = fileURLToPath(new URL("../node_modules/vitest/vitest.mjs", import.meta.url))
  const env = { ...process.env }
  delete env.DATABASE_URL
  const run = spawnSync(process.execPath, [vitest, "run", "--config", "test/fixtures/failing/vitest.config.ts"], {
    cwd: root,
    env,
    encoding: "utf8"
  })
  assert.include(run.stdout + run.stderr, "fails on purpose")
  assert.notStrictEqual(run.status, 0, "the failing run exits non-zero")
})
