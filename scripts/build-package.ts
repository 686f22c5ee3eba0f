/**
 * Builds the package in the current directory (`pnpm build` runs it in each package): `dist/` is emptied, then
 * `tsc -p tsconfig.build.json` emits ESM JavaScript, declaration files and source maps for `src/`.
 *
 * The sources import each other as `./X.ts`; `rewriteRelativeImportExtensions` makes the emitted JavaScript import
 * `./X.js`, and this script does the same in the declaration files, which TypeScript leaves as written.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"

const dist = path.resolve("dist")
fs.rmSync(dist, { recursive: true, force: true })
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")
execFileSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { stdio: "inherit" })

const relativeTs = /((?:from|import)\s*\(?\s*["'])(\.\.?\/[^"']+)\.ts(["'])/g
for (const entry of fs.readdirSync(dist, { recursive: true, encoding: "utf8" })) {
  if (!entry.endsWith(".d.ts")) continue
  const file = path.join(dist, entry)
  const text = fs.readFileSync(file, "utf8")
  const rewritten = text.replace(relativeTs, "$1$2.js$3")
  if (rewritten !== text) fs.writeFileSync(file, rewritten)
}
