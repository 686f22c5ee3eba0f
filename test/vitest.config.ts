import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

// The workspace runs on the packages' sources: their `exports` send the "@facta/source" condition to `src/*.ts`
// (a published package resolves `types`/`default` into its built `dist/`), so no build comes before a test run.
const conditions = ["@facta/source", "node", "development|production"]

// The one test run of the repository (`pnpm test`): every package's tests and the cross-package suites here.
export default defineConfig({
  resolve: { conditions },
  // the test files' environment, and vitest's own (global setup)
  environments: { ssr: { resolve: { conditions } }, __vitest__: { resolve: { conditions } } },
  test: {
    root: fileURLToPath(new URL("..", import.meta.url)),
    include: ["packages/*/test/**/*.test.ts", "examples/*/test/**/*.test.ts", "test/**/*.test.ts"],
    exclude: ["**/node_modules/**"],
    globalSetup: ["test/support/globalSetup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000
  }
})
