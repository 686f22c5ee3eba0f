/**
 * Checks the documentation of Facta's packages, and keeps the generated API reference up to date.
 *
 * - Every public export of `@facta/core`, `@facta/postgres`, `@facta/testing` and `@facta/embedded-postgres` (every
 *   module reached through `export * as X from` in the package's `src/index.ts`) has a doc comment with a
 *   description and exactly one `@category` (constructors, models, services, layers, errors, guards, ...), and every
 *   function, constant, class and service has an `@example`. Every module has a module doc.
 * - Every ```ts block in those doc comments and in `docs/*.md` type-checks, all of them in one program with the
 *   repository's strict settings (`tsconfig.base.json`, minus the unused-locals checks, since an example may well
 *   define something it does not use). The blocks are written to a temporary folder inside `test/` so that workspace
 *   imports (`@facta/core`, `@effect/vitest`, `@effect/sql-pg`, ...) resolve as they do for the tests.
 * - The examples of `@facta/core` that declare nothing (no `declare const`) also run, each as a module of one Node
 *   process: an example fails when it throws or a promise it starts rejects. The others stand for a value the reader
 *   has, so they only type-check.
 * - `docs/api/<package>.md` is what this script generates from the doc comments; `--write` regenerates it.
 *
 * Usage: `pnpm docs:check` (check), `pnpm docs:check --write` (regenerate the API reference, then check).
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"

const root = path.resolve(fileURLToPath(new URL("..", import.meta.url)))
const write = process.argv.includes("--write")
const started = performance.now()

const packages = [
  { name: "@facta/core", dir: "packages/core", file: "core" },
  { name: "@facta/postgres", dir: "packages/postgres", file: "postgres" },
  { name: "@facta/testing", dir: "packages/testing", file: "testing" },
  { name: "@facta/embedded-postgres", dir: "packages/embedded-postgres", file: "embedded-postgres" },
  { name: "@facta/nats", dir: "packages/nats", file: "nats" },
  { name: "@facta/redis", dir: "packages/redis", file: "redis" }
] as const

const failures: Array<string> = []
const rel = (file: string) => path.relative(root, file).split(path.sep).join("/")

// ---------------------------------------------------------------------------------------------------------------------
// Doc comments
// ---------------------------------------------------------------------------------------------------------------------

/** A doc comment, split into its description and its tags, with the source line each line came from. */
interface Doc {
  readonly description: string
  readonly tags: ReadonlyArray<{ readonly name: string; readonly text: string; readonly line: number }>
  /** The source line (1-based) of each line of the comment's body, to point at a failing example. */
  readonly firstLine: number
}

const parseDoc = (text: string, firstLine: number): Doc => {
  const lines = text
    .replace(/^\/\*\*/, "")
    .replace(/\*\/$/, "")
    .split("\n")
    .map((line) => line.replace(/^\s*\* ?/, "").replace(/^\s*\*$/, ""))
  // `/** text` on the opening line: the body starts on that line
  const description: Array<string> = []
  const tags: Array<{ name: string; text: string[]; line: number }> = []
  let inFence = false
  lines.forEach((line, i) => {
    const tag = inFence ? null : /^@(\w+)\s?(.*)$/.exec(line.trim())
    if (tag !== null) {
      tags.push({ name: tag[1]!, text: tag[2] ? [tag[2]] : [], line: firstLine + i })
    } else {
      const current = tags.at(-1)
      if (current === undefined) description.push(line)
      else current.text.push(line)
    }
    if (/^\s*```/.test(line)) inFence = !inFence
  })
  const trim = (xs: ReadonlyArray<string>) => xs.join("\n").trim()
  return {
    description: trim(description),
    tags: tags.map((t) => ({ name: t.name, text: trim(t.text), line: t.line })),
    firstLine
  }
}

/**
 * The ```ts blocks of some Markdown, with the (0-based) line of the block's first code line. A block opened with
 * ```ts file=Name.ts is written under that name, so that a later block of the same page can import it.
 */
const tsBlocks = (
  markdown: string
): ReadonlyArray<{ readonly code: string; readonly line: number; readonly name: string | undefined }> => {
  const blocks: Array<{ code: string; line: number; name: string | undefined }> = []
  const lines = markdown.split("\n")
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```ts(?:\s+file=([\w.-]+\.ts))?\s*$/.exec(lines[i]!)
    if (open === null) continue
    const indent = open[1]!.length
    const start = i + 1
    let end = start
    while (end < lines.length && !/^\s*```\s*$/.test(lines[end]!)) end++
    blocks.push({
      code: lines
        .slice(start, end)
        .map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length)))
        .join("\n"),
      line: start,
      name: open[2]
    })
    i = end
  }
  return blocks
}

const docOf = (node: ts.Node, sourceFile: ts.SourceFile): Doc | undefined => {
  const jsDocs = (node as { jsDoc?: ReadonlyArray<ts.JSDoc> }).jsDoc
  const jsDoc = jsDocs?.at(-1)
  if (jsDoc === undefined) return undefined
  const text = sourceFile.text.slice(jsDoc.getStart(sourceFile), jsDoc.end)
  return parseDoc(text, sourceFile.getLineAndCharacterOfPosition(jsDoc.getStart(sourceFile)).line + 1)
}

/** The comment that opens a file, before its first statement's own doc comment: the module doc. */
const moduleDocOf = (sourceFile: ts.SourceFile): Doc | undefined => {
  const ranges = ts.getLeadingCommentRanges(sourceFile.text, 0) ?? []
  const first = ranges.find((r) => sourceFile.text.slice(r.pos, r.pos + 3) === "/**")
  if (first === undefined) return undefined
  const statement = sourceFile.statements[0]
  // the first statement's own doc comment is not a module doc, unless the statement is an import
  if (statement !== undefined && !ts.isImportDeclaration(statement) && !ts.isExportDeclaration(statement)) {
    const own = (statement as { jsDoc?: ReadonlyArray<ts.JSDoc> }).jsDoc ?? []
    if (own.some((d) => d.pos === first.pos || d.getStart(sourceFile) === first.pos) && ranges.length === 1) {
      return undefined
    }
  }
  return parseDoc(
    sourceFile.text.slice(first.pos, first.end),
    sourceFile.getLineAndCharacterOfPosition(first.pos).line + 1
  )
}

// ---------------------------------------------------------------------------------------------------------------------
// The program of the packages' sources
// ---------------------------------------------------------------------------------------------------------------------

const config = ts.readConfigFile(path.join(root, "tsconfig.base.json"), ts.sys.readFile)
const { options: baseOptions } = ts.parseJsonConfigFileContent(config.config, ts.sys, root)
const options: ts.CompilerOptions = { ...baseOptions, noEmit: true, noUnusedLocals: false, noUnusedParameters: false }

// the snippets' folder: under test/ so that workspace packages resolve (`.readme-*` is git-ignored)
const snippetsDir = path.join(root, "test", `.readme-docs-check-${process.pid}`)
/** Whether the process that left a snippets' folder behind is gone (another check may be running beside this one). */
const isStale = (folder: string) => {
  try {
    process.kill(Number(folder.slice(".readme-docs-check-".length)), 0)
    return false
  } catch {
    return true
  }
}
for (const stale of fs.readdirSync(path.join(root, "test"))) {
  if (stale.startsWith(".readme-docs-check-") && isStale(stale)) {
    fs.rmSync(path.join(root, "test", stale), { recursive: true, force: true })
  }
}

interface Snippet {
  readonly file: string
  /** Where the snippet came from, and the source line of its first line. */
  readonly origin: string
  readonly line: number
  readonly code: string
}
const snippets: Array<Snippet> = []
const addSnippet = (origin: string, line: number, code: string, name?: string) => {
  const file =
    name === undefined
      ? path.join(snippetsDir, `snippet${String(snippets.length + 1).padStart(3, "0")}.ts`)
      : path.join(snippetsDir, origin.replace(/[^\w]/g, "_"), name)
  if (snippets.some((s) => s.file === file)) failures.push(`${origin}:${line}: a second block named file=${name}`)
  snippets.push({ file, origin, line, code })
}

const indexFiles = packages.map((p) => path.join(root, p.dir, "src", "index.ts"))
const sourceProgram = ts.createProgram(indexFiles, options)
const checker = sourceProgram.getTypeChecker()
const printer = ts.createPrinter({ removeComments: true, newLine: ts.NewLineKind.LineFeed })

type Kind = "function" | "constant" | "class" | "service" | "interface" | "type" | "namespace"

interface Export {
  readonly name: string
  readonly kinds: ReadonlyArray<Kind>
  readonly category: string | undefined
  readonly signatures: ReadonlyArray<string>
  readonly doc: Doc | undefined
  readonly line: number
}

interface Module {
  readonly name: string
  readonly file: string
  readonly doc: Doc | undefined
  readonly exports: ReadonlyArray<Export>
}

const isFunctionLike = (expression: ts.Expression | undefined): boolean => {
  if (expression === undefined) return false
  if (ts.isArrowFunction(expression) || ts.isFunctionExpression(expression)) return true
  // Effect.fn(...)(function*...), Effect.fnUntraced(function*...)
  if (ts.isCallExpression(expression)) {
    const callee = expression.expression.getText()
    if (/^Effect\.fn(Untraced)?\b/.test(callee) || /^Effect\.fn\(/.test(callee)) return true
  }
  return false
}

/** A short signature for a declaration: what a reader needs to call or use it. */
const signatureOf = (declaration: ts.Declaration, name: string, sourceFile: ts.SourceFile): string => {
  const print = (node: ts.Node) => printer.printNode(ts.EmitHint.Unspecified, node, sourceFile)
  if (ts.isVariableDeclaration(declaration)) {
    const init = declaration.initializer
    if (declaration.type !== undefined) return `const ${name}: ${print(declaration.type)}`
    const fn =
      init !== undefined && (ts.isArrowFunction(init) || ts.isFunctionExpression(init))
        ? init
        : init !== undefined && ts.isCallExpression(init)
          ? init.arguments.find((a): a is ts.FunctionExpression => ts.isFunctionExpression(a))
          : undefined
    if (fn !== undefined && fn.type !== undefined) {
      const typeParameters = fn.typeParameters ? `<${fn.typeParameters.map(print).join(", ")}>` : ""
      return `const ${name}: ${typeParameters}(${fn.parameters.map(print).join(", ")}) => ${print(fn.type)}`
    }
    const type = checker.getTypeAtLocation(declaration.name)
    const full = checker.typeToString(type, declaration, ts.TypeFormatFlags.NoTruncation)
    // a long inferred type (a store's whole shape) reads better cut short, as editors show it
    const text = full.length > 400 ? checker.typeToString(type, declaration) : full
    return `const ${name}: ${text.replace(/import\("[^"]*"\)\./g, "")}`
  }
  if (ts.isFunctionDeclaration(declaration)) {
    return print(
      ts.factory.updateFunctionDeclaration(
        declaration,
        declaration.modifiers,
        declaration.asteriskToken,
        declaration.name,
        declaration.typeParameters,
        declaration.parameters,
        declaration.type,
        undefined
      )
    )
  }
  if (ts.isClassDeclaration(declaration)) {
    // the header holds what matters: the error's fields, the service's shape
    const start = declaration.getStart(sourceFile)
    const bodyStart = declaration.members.pos
    return `${sourceFile.text
      .slice(start, bodyStart)
      .replace(/\s*\{\s*$/, "")
      .trim()} {}`
  }
  // interfaces, type aliases and namespaces read best as written, member docs included
  return sourceFile.text.slice(declaration.getStart(sourceFile), declaration.end).trim()
}

const kindOf = (declaration: ts.Declaration): Kind | undefined => {
  if (ts.isVariableDeclaration(declaration)) return isFunctionLike(declaration.initializer) ? "function" : "constant"
  if (ts.isFunctionDeclaration(declaration)) return "function"
  if (ts.isClassDeclaration(declaration)) {
    const heritage = declaration.heritageClauses?.map((h) => h.getText()).join(" ") ?? ""
    return /Context\.Service|Context\.Reference/.test(heritage) ? "service" : "class"
  }
  if (ts.isInterfaceDeclaration(declaration)) return "interface"
  if (ts.isTypeAliasDeclaration(declaration)) return "type"
  if (ts.isModuleDeclaration(declaration)) return "namespace"
  return undefined
}

const needsExample = (kinds: ReadonlyArray<Kind>) =>
  kinds.some((k) => k === "function" || k === "constant" || k === "class" || k === "service")

const modulesOf = (pkg: (typeof packages)[number], indexFile: string): ReadonlyArray<Module> => {
  const indexSource = sourceProgram.getSourceFile(indexFile)
  if (indexSource === undefined) throw new Error(`cannot read ${indexFile}`)
  const modules: Array<Module> = []
  for (const statement of indexSource.statements) {
    if (!ts.isExportDeclaration(statement)) continue
    const clause = statement.exportClause
    if (clause === undefined || !ts.isNamespaceExport(clause) || statement.moduleSpecifier === undefined) {
      failures.push(`${rel(indexFile)}: only \`export * as X from\` barrels are documented (${statement.getText()})`)
      continue
    }
    const moduleName = clause.name.text
    const target = path.resolve(path.dirname(indexFile), (statement.moduleSpecifier as ts.StringLiteral).text)
    const sourceFile = sourceProgram.getSourceFile(target)
    if (sourceFile === undefined) throw new Error(`cannot read ${target}`)
    const moduleSymbol = checker.getSymbolAtLocation(sourceFile)
    const moduleDoc = moduleDocOf(sourceFile)
    if (moduleDoc === undefined || moduleDoc.description === "") {
      failures.push(`${rel(target)}:1: module ${pkg.name}/${moduleName} has no module doc comment`)
    }
    const exports: Array<Export> = []
    for (const symbol of moduleSymbol === undefined ? [] : checker.getExportsOfModule(moduleSymbol)) {
      const resolved = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol
      const declarations = (resolved.declarations ?? []).filter(
        (d) => !ts.isModuleDeclaration(d) || d.getSourceFile() === sourceFile
      )
      const entries = declarations.flatMap((d) => {
        const kind = kindOf(d)
        if (kind === undefined) return []
        const docNode = ts.isVariableDeclaration(d) ? d.parent.parent : d
        return [{ declaration: d, kind, doc: docOf(docNode, d.getSourceFile()) }]
      })
      if (entries.length === 0) continue
      const described = entries.find((e) => e.doc !== undefined && e.doc.description !== "")
      const descriptions = [...new Set(entries.flatMap((e) => (e.doc?.description ? [e.doc.description] : [])))]
      const tags = entries.flatMap((e) => e.doc?.tags ?? [])
      const first = entries[0]!
      const line =
        first.declaration.getSourceFile().getLineAndCharacterOfPosition(first.declaration.getStart()).line + 1
      const where = `${rel(first.declaration.getSourceFile().fileName)}:${line}`
      const qualified = `${moduleName}.${symbol.name}`
      const kinds = [...new Set(entries.map((e) => e.kind))]
      if (described === undefined) failures.push(`${where}: ${pkg.name} ${qualified} has no doc comment description`)
      if (needsExample(kinds) && !tags.some((t) => t.name === "example")) {
        failures.push(`${where}: ${pkg.name} ${qualified} (${kinds.join(", ")}) has no @example`)
      }
      // one category an export: one @category tag, or the same one on each declaration of a merged name
      const categories = [...new Set(tags.filter((t) => t.name === "category").map((t) => t.text))]
      const repeated = entries.some((e) => (e.doc?.tags ?? []).filter((t) => t.name === "category").length > 1)
      if (categories.length !== 1 || repeated) {
        failures.push(
          `${where}: ${pkg.name} ${qualified} needs exactly one @category, has ${
            categories.length === 0 ? "none" : categories.map((c) => `"${c}"`).join(", ")
          }`
        )
      }
      exports.push({
        name: symbol.name,
        kinds,
        category: categories[0],
        signatures: entries.map((e) => signatureOf(e.declaration, symbol.name, e.declaration.getSourceFile())),
        doc:
          described === undefined
            ? undefined
            : { description: descriptions.join("\n\n"), tags, firstLine: described.doc!.firstLine },
        line
      })
    }
    modules.push({ name: moduleName, file: target, doc: moduleDoc, exports })
  }
  return modules
}

// ---------------------------------------------------------------------------------------------------------------------
// Examples in the sources: every ```ts block of every doc comment of a public module
// ---------------------------------------------------------------------------------------------------------------------

const collectSourceSnippets = (file: string) => {
  const sourceFile = sourceProgram.getSourceFile(file)
  if (sourceFile === undefined) return
  const seen = new Set<number>()
  const visit = (node: ts.Node) => {
    for (const jsDoc of (node as { jsDoc?: ReadonlyArray<ts.JSDoc> }).jsDoc ?? []) {
      const start = jsDoc.getStart(sourceFile)
      if (seen.has(start)) continue
      seen.add(start)
      const text = sourceFile.text.slice(start, jsDoc.end)
      const firstLine = sourceFile.getLineAndCharacterOfPosition(start).line + 1
      const body = text.split("\n").map((l) => l.replace(/^\s*\/\*\*\s?/, "").replace(/^\s*\*\/?\s?/, ""))
      for (const block of tsBlocks(body.join("\n"))) addSnippet(rel(file), firstLine + block.line, block.code)
    }
    ts.forEachChild(node, visit)
  }
  visit(sourceFile)
  const moduleDoc = ts.getLeadingCommentRanges(sourceFile.text, 0)?.[0]
  if (moduleDoc !== undefined && !seen.has(moduleDoc.pos)) {
    const text = sourceFile.text.slice(moduleDoc.pos, moduleDoc.end)
    const body = text.split("\n").map((l) => l.replace(/^\s*\/\*\*\s?/, "").replace(/^\s*\*\/?\s?/, ""))
    for (const block of tsBlocks(body.join("\n"))) addSnippet(rel(file), 1 + block.line, block.code)
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// The API reference
// ---------------------------------------------------------------------------------------------------------------------

/** `{@link X}` and `{@link X | text}` become code and text. */
const links = (text: string) =>
  text
    .replace(/\{@link\s+([^}|\s]+)\s*\|\s*([^}]+)\}/g, "$2")
    .replace(/\{@link\s+([^}\s]+)\s*\}/g, "`$1`")
    .replace(/\{@link\s+([^}\s]+)\s+([^}]+)\}/g, "$2")

const slug = (text: string) =>
  text
    .toLowerCase()
    .replace(/[^a-z0-9 -]/g, "")
    .replace(/ /g, "-")

const reference = (pkg: (typeof packages)[number], modules: ReadonlyArray<Module>): string => {
  const out: Array<string> = []
  const packageDoc = (() => {
    const description = JSON.parse(fs.readFileSync(path.join(root, pkg.dir, "package.json"), "utf8")).description
    return typeof description === "string" ? description : ""
  })()
  out.push(`# \`${pkg.name}\` API reference`, "")
  out.push(`${packageDoc}.`.replace(/\.\.$/, "."), "")
  out.push(
    `> Generated from the doc comments in \`${pkg.dir}/src\` by \`pnpm docs:check --write\`; do not edit it by hand.`,
    `> \`pnpm docs:check\` fails when it is out of date. Every example below is type-checked.`,
    ""
  )
  out.push(`\`\`\`ts`, `import { ${modules.map((m) => m.name).join(", ")} } from "${pkg.name}"`, `\`\`\``, "")
  out.push("## Modules", "")
  for (const m of modules) {
    const summary = links(m.doc?.description.split(/\n\s*\n/)[0] ?? "").replace(/\s*\n\s*/g, " ")
    out.push(`- [${m.name}](#${slug(m.name)}): ${summary}`)
  }
  out.push("")
  for (const m of modules) {
    out.push(`## ${m.name}`, "")
    out.push(`Source: [\`${rel(m.file)}\`](../../${rel(m.file)})`, "")
    if (m.doc?.description) out.push(links(m.doc.description), "")
    const sorted = [...m.exports].sort((a, b) => a.line - b.line)
    out.push(`Exports: ${sorted.map((e) => `[\`${e.name}\`](#${slug(`${m.name}.${e.name}`)})`).join(", ")}`, "")
    for (const e of sorted) {
      out.push(`### ${m.name}.${e.name}`, "")
      out.push(`_${e.kinds.join(", ")}${e.category === undefined ? "" : ` · ${e.category}`}_`, "")
      out.push("```ts", ...e.signatures.map((s) => s), "```", "")
      if (e.doc !== undefined) {
        out.push(links(e.doc.description), "")
        for (const tag of e.doc.tags) {
          if (tag.name === "example") {
            out.push("**Example**", "", tag.text, "")
          } else if (tag.name === "see") {
            out.push(`See also: ${links(tag.text)}`, "")
          }
        }
      }
    }
  }
  return `${out
    .join("\n")
    .replace(/\n{3,}/g, "\n\n")
    .trimEnd()}\n`
}

// ---------------------------------------------------------------------------------------------------------------------
// Run
// ---------------------------------------------------------------------------------------------------------------------

const references = new Map<string, string>()
for (const [i, pkg] of packages.entries()) {
  const modules = modulesOf(pkg, indexFiles[i]!)
  for (const m of modules) collectSourceSnippets(m.file)
  references.set(path.join(root, "docs", "api", `${pkg.file}.md`), reference(pkg, modules))
}

// the guides' ```ts blocks (the API reference repeats the sources' examples, which are checked already)
const docsDir = path.join(root, "docs")
const guides = fs.existsSync(docsDir)
  ? fs
      .readdirSync(docsDir)
      .filter((f) => f.endsWith(".md"))
      .map((f) => path.join(docsDir, f))
  : []
for (const guide of [path.join(root, "README.md"), ...guides]) {
  for (const block of tsBlocks(fs.readFileSync(guide, "utf8"))) {
    addSnippet(rel(guide), block.line + 1, block.code, block.name)
  }
}

/** Formats Markdown the way `pnpm lint` (Biome) wants it, so that the generated reference passes the lint. */
const formatMarkdown = (file: string, content: string): string =>
  execFileSync(path.join(root, "node_modules", ".bin", "biome"), ["format", `--stdin-file-path=${rel(file)}`], {
    cwd: root,
    input: content,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024
  })

// the generated reference
for (const [file, raw] of references) {
  const content = formatMarkdown(file, raw)
  const current = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : undefined
  if (current === content) continue
  if (write) {
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(file, content)
    console.log(`docs-check: wrote ${rel(file)}`)
  } else {
    failures.push(
      `${rel(file)}: ${current === undefined ? "missing" : "out of date"}; run \`pnpm docs:check --write\` to regenerate it`
    )
  }
}

/**
 * The examples of `@facta/core` that run, not only type-check: those that declare nothing (`declare const` stands
 * for a value the reader has, which does not exist at run time).
 */
const runnable = (s: Snippet) => s.origin.startsWith("packages/core/src/") && !/^declare\s/m.test(s.code)

/**
 * Runs examples, each as a module of one Node process, in order: an example fails when importing it throws or a
 * promise it starts rejects. An example that builds an effect without running it checks that building it is sound.
 */
const runExamples = (examples: ReadonlyArray<Snippet>) => {
  const runner = path.join(snippetsDir, "run-examples.ts")
  fs.writeFileSync(
    runner,
    [
      `const files: ReadonlyArray<string> = ${JSON.stringify(examples.map((s) => s.file))}`,
      "const failed: Array<{ readonly file: string; readonly error: string }> = []",
      "let current = ''",
      "process.on('unhandledRejection', (error) => failed.push({ file: current, error: String(error) }))",
      "for (const file of files) {",
      "  current = file",
      "  try {",
      "    await import(file)",
      "    await new Promise((resolve) => setTimeout(resolve, 0))",
      "  } catch (error) {",
      "    failed.push({ file, error: String(error) })",
      "  }",
      "}",
      "await new Promise((resolve) => setTimeout(resolve, 50))",
      "console.log(JSON.stringify(failed))",
      "process.exit(0)"
    ].join("\n")
  )
  let output: string
  try {
    output = execFileSync(process.execPath, ["--conditions=@facta/source", runner], {
      cwd: root,
      encoding: "utf8",
      timeout: 120_000
    })
  } catch (error) {
    failures.push(`running the examples failed: ${error instanceof Error ? error.message : String(error)}`)
    return
  }
  const byFile = new Map(examples.map((s) => [s.file, s]))
  const failed: ReadonlyArray<{ readonly file: string; readonly error: string }> = JSON.parse(
    output.trim().split("\n").at(-1) ?? "[]"
  )
  for (const { file, error } of failed) {
    const snippet = byFile.get(file)
    failures.push(`${snippet?.origin ?? file}:${snippet?.line ?? 0}: example fails when run: ${error}`)
  }
  ran = examples.length
}
let ran = 0

// type-check every snippet, and this script, in one program
fs.mkdirSync(snippetsDir, { recursive: true })
try {
  for (const s of snippets) {
    fs.mkdirSync(path.dirname(s.file), { recursive: true })
    fs.writeFileSync(s.file, s.code)
  }
  const self = fileURLToPath(import.meta.url)
  const program = ts.createProgram([...snippets.map((s) => s.file), self], options)
  const byFile = new Map(snippets.map((s) => [path.resolve(s.file), s]))
  const beforeTypeCheck = failures.length
  for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n")
    const file = diagnostic.file
    if (file === undefined) {
      failures.push(`TS${diagnostic.code}: ${message}`)
      continue
    }
    const { line } = file.getLineAndCharacterOfPosition(diagnostic.start ?? 0)
    const snippet = byFile.get(path.resolve(file.fileName))
    if (snippet !== undefined) {
      const code = snippet.code.split("\n")[line]?.trim() ?? ""
      failures.push(
        `${snippet.origin}:${snippet.line + line}: example does not compile: TS${diagnostic.code}: ${message}\n    ${code}`
      )
    } else {
      failures.push(`${rel(file.fileName)}:${line + 1}: TS${diagnostic.code}: ${message}`)
    }
  }
  // examples that do not compile are not run
  if (failures.length === beforeTypeCheck) runExamples(snippets.filter(runnable))
} finally {
  fs.rmSync(snippetsDir, { recursive: true, force: true })
}

const seconds = ((performance.now() - started) / 1000).toFixed(1)
if (failures.length > 0) {
  console.error(`docs-check: ${failures.length} failure(s)\n`)
  for (const failure of failures) console.error(`- ${failure}`)
  console.error(`\n(${snippets.length} examples type-checked, ${ran} run, in ${seconds} s)`)
  process.exitCode = 1
} else {
  console.log(
    `docs-check: ok (${packages.length} packages, ${snippets.length} examples type-checked, ${ran} of @facta/core run, API reference up to date) in ${seconds} s`
  )
}
