/**
 * The page in a headless Chromium (Debian's `chromium`, driven by playwright-core): it lists the accounts with their
 * balances and draws the selected account's timeline. Skipped, saying why, when no Chromium is installed.
 */
import { existsSync, mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { chromium } from "playwright-core"
import { app, baseUrl, call, tokenOf } from "./harness.ts"

const executablePath = "/usr/bin/chromium"
const available = existsSync(executablePath)
if (!available) console.warn(`Page.test.ts: skipped, no Chromium at ${executablePath} (apt-get install -y chromium)`)

const pngSize = (png: Buffer) => ({ width: png.readUInt32BE(16), height: png.readUInt32BE(20) })

layer(app("page"), { excludeTestServices: true, timeout: 60_000 })("the page", (it) => {
  it.effect.skipIf(!available)(
    "lists accounts with balances and draws the timeline",
    () =>
      Effect.gen(function* () {
        const opened = yield* call("POST", "/accounts", {
          as: "alice",
          body: { currency: "USD", initialDeposit: "120.00" }
        })
        assert.strictEqual(opened.status, 201, opened.text)
        const id: string = opened.body.accountId
        for (const [path, amount] of [
          ["deposits", "80.00"],
          ["withdrawals", "45.50"],
          ["deposits", "12.25"]
        ] as const) {
          const reply = yield* call("POST", `/accounts/${id}/${path}`, { as: "alice", body: { amount } })
          assert.strictEqual(reply.status, 200, reply.text)
        }
        const url = `${yield* baseUrl}/#token=${encodeURIComponent(tokenOf("alice"))}`
        const dir = mkdtempSync(join(tmpdir(), "facta-page-"))
        const screenshot = join(dir, "page.png")

        const result = yield* Effect.acquireUseRelease(
          Effect.promise(() => chromium.launch({ executablePath, args: ["--no-sandbox"] })),
          (browser) =>
            Effect.promise(async () => {
              const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
              await page.goto(url)
              await page.locator(`#accounts tbody tr[data-account="${id}"]`).waitFor()
              await page.locator("#events li").first().waitFor()
              await page.locator("#chart svg circle").first().waitFor()
              // biome-ignore lint/performance/useDomNodeTextContent: Playwright's innerText is the rendered text
              const row = await page.locator(`#accounts tbody tr[data-account="${id}"]`).innerText()
              const events = await page.locator("#events li").count()
              const dots = await page.locator("#chart svg circle").count()
              const path = await page.locator("#chart svg path.line").getAttribute("d")
              // biome-ignore lint/performance/useDomNodeTextContent: Playwright's innerText is the rendered text
              const consistent = await page.locator("#consistent").innerText()
              const addressBar = page.url()
              await page.screenshot({ path: screenshot, fullPage: true })
              // the header bar is drawn in the dark ink colour
              const header = String(
                await page.evaluate("getComputedStyle(document.querySelector('header')).backgroundColor")
              )
              return { row, events, dots, path, consistent, addressBar, header }
            }),
          (browser) => Effect.promise(() => browser.close())
        )

        assert.match(result.row, /alice/)
        assert.match(result.row, /166\.75 USD/)
        assert.strictEqual(result.events, 4)
        assert.strictEqual(result.dots, 4)
        assert.isString(result.path)
        assert.match(result.consistent, /✓ consistent/i)
        assert.notInclude(result.addressBar, "token=")
        assert.strictEqual(result.header, "rgb(31, 35, 48)")

        const png = readFileSync(screenshot)
        console.log(`Page.test.ts: screenshot at ${screenshot}`)
        assert.deepStrictEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
        assert.isAbove(png.length, 10_000)
        const size = pngSize(png)
        assert.strictEqual(size.width, 1280)
        assert.isAtLeast(size.height, 800)
      }),
    60_000
  )
})
