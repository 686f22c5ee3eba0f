import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import ts from "typescript"

const root = fileURLToPath(new URL("..", import.meta.url))

/** The README's first TypeScript block: the complete aggregate example. */
const readmeExample = (): string => {
  const readme = fs.readFileSync(path.join(root, "README.md"), "utf8")
  const match = /```ts\n([\s\S]*?)```/.exec(readme)
  if (match === null) throw new Error("README.md has no ```ts block")
  return match[1]!
}

describe("README", () => {
  it.effect(
    "the aggregate example compiles under the repository's strict settings and prints what its comment says",
    () =>
      Effect.gen(function* () {
        const source = readmeExample()
        assert.isAtMost(source.split("\n").length, 50, "the example stays short")
        const dir = fs.mkdtempSync(path.join(root, "test", ".readme-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
        const file = path.join(dir, "example.ts")
        fs.writeFileSync(file, source)

        const config = ts.readConfigFile(path.join(root, "tsconfig.base.json"), ts.sys.readFile)
        const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, root)
        const program = ts.createProgram([file], { ...options, noEmit: true })
        const diagnostics = ts
          .getPreEmitDiagnostics(program)
          .map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"))
        assert.deepStrictEqual(diagnostics, [])

        const { stdout } = yield* Effect.promise(() =>
          promisify(execFile)(process.execPath, ["--conditions=@facta/source", file], { cwd: dir })
        )
        const expected = /console\.log\(.*\) \/\/ (.*)$/m.exec(source)![1]!
        assert.strictEqual(stdout.trim(), expected)
      }),
    60_000
  )
})
