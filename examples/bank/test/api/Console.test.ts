/**
 * The console's routes: the live stream of projected changes (`GET /events/live`), a transfer's story and the
 * projections' status and rebuild, with who may call them.
 */
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import type { HttpServer } from "effect/http"
import { app, baseUrl, call, openFunded, tokenOf } from "./harness.ts"

interface LiveEvent {
  readonly event: string
  // biome-ignore lint/suspicious/noExplicitAny: event payloads are checked by assertions
  readonly data: any
}

/**
 * Opens `GET /events/live` as `name` and collects server-sent events until `until` says enough (or `timeoutMs`
 * passes); the connection is closed either way.
 */
const listen = (
  name: string,
  options: {
    readonly until: (events: ReadonlyArray<LiveEvent>) => boolean
    readonly afterReady?: Effect.Effect<unknown, unknown, HttpServer.HttpServer>
    readonly timeoutMs?: number
  }
) =>
  Effect.gen(function* () {
    const base = yield* baseUrl
    const abort = new AbortController()
    const response = yield* Effect.promise(() =>
      fetch(`${base}/events/live`, { headers: { authorization: `Bearer ${tokenOf(name)}` }, signal: abort.signal })
    )
    assert.strictEqual(response.status, 200)
    assert.match(response.headers.get("content-type") ?? "", /text\/event-stream/)
    const reader = response.body!.getReader()
    const decoder = new TextDecoder()
    const events: Array<LiveEvent> = []
    let buffer = ""
    const readUntil = (done: (events: ReadonlyArray<LiveEvent>) => boolean) =>
      Effect.promise(async () => {
        const deadline = Date.now() + (options.timeoutMs ?? 30_000)
        while (!done(events) && Date.now() < deadline) {
          const chunk = await Promise.race([
            reader.read(),
            new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), deadline - Date.now()))
          ])
          if (chunk === undefined || chunk.done) break
          buffer += decoder.decode(chunk.value, { stream: true })
          let end = buffer.indexOf("\n\n")
          while (end >= 0) {
            const frame = buffer.slice(0, end)
            buffer = buffer.slice(end + 2)
            const event = /^event: (.*)$/m.exec(frame)?.[1]
            const data = /^data: (.*)$/m.exec(frame)?.[1]
            if (event !== undefined && data !== undefined) events.push({ event, data: JSON.parse(data) })
            end = buffer.indexOf("\n\n")
          }
        }
      })
    try {
      yield* readUntil((seen) => seen.some((e) => e.event === "ready"))
      if (options.afterReady !== undefined) yield* options.afterReady
      yield* readUntil(options.until)
    } finally {
      abort.abort()
    }
    return events
  })

/** Opens an account for `owner` with its starting money, booked by the teller (only tellers and admins deposit). */
const openAccount = (owner: string, initialDeposit: string) => openFunded(owner, { currency: "USD", initialDeposit })

layer(app("console"), { excludeTestServices: true, timeout: 60_000 })("the console routes", (it) => {
  it.effect("GET /events/live needs a bearer token", () =>
    Effect.gen(function* () {
      const missing = yield* call("GET", "/events/live")
      assert.strictEqual(missing.status, 401, missing.text)
      assert.strictEqual(missing.body.code, "MissingToken")
      const unknown = yield* call("GET", "/events/live", { token: "not-a-token" })
      assert.strictEqual(unknown.status, 401, unknown.text)
      assert.strictEqual(unknown.body.code, "InvalidToken")
    })
  )

  it.effect("GET /events/live announces an append once the read models show it", () =>
    Effect.gen(function* () {
      const accountId = yield* openAccount("alice", "10.00")
      const stream = `Account-${accountId}`
      const events = yield* listen("carol", {
        afterReady: call("POST", `/accounts/${accountId}/deposits`, { as: "tina", body: { amount: "5.00" } }),
        until: (seen) => seen.some((e) => e.event === "projected" && e.data.streams.includes(stream))
      })
      const ready = events.find((e) => e.event === "ready")
      assert.isDefined(ready)
      assert.deepStrictEqual(ready?.data.actor, { name: "carol", role: "approver" })
      const projected = events.find((e) => e.event === "projected" && e.data.streams.includes(stream))
      assert.isDefined(projected, JSON.stringify(events))
      assert.include(projected?.data.types, "MoneyDeposited")
      assert.isTrue(projected?.data.caughtUp)
      // the notice comes after the projection: the read model already holds the deposit
      const account = yield* call("GET", `/accounts/${accountId}`, { as: "carol" })
      assert.strictEqual(account.body.balance, 1500)
    })
  )

  it.effect("GET /events/live tells a customer only about their own accounts", () =>
    Effect.gen(function* () {
      const alices = yield* openAccount("alice", "10.00")
      const bobs = yield* openAccount("bob", "10.00")
      const events = yield* listen("bob", {
        afterReady: Effect.gen(function* () {
          yield* call("POST", `/accounts/${alices}/deposits`, { as: "tina", body: { amount: "1.00" } })
          yield* call("POST", `/accounts/${bobs}/deposits`, { as: "tina", body: { amount: "1.00" } })
        }),
        until: (seen) => seen.some((e) => e.event === "projected" && e.data.streams.includes(`Account-${bobs}`))
      })
      const streams = events.filter((e) => e.event === "projected").flatMap((e) => e.data.streams)
      assert.include(streams, `Account-${bobs}`)
      assert.notInclude(streams, `Account-${alices}`)
    })
  )

  it.effect("GET /transfers/:id/story tells the transfer across both accounts, under the accounts' read rule", () =>
    Effect.gen(function* () {
      const from = yield* openAccount("alice", "100.00")
      const to = yield* openAccount("bob", "0.00")
      const initiated = yield* call("POST", "/transfers", {
        as: "alice",
        body: { from, to, amount: "25.00", reference: "story" }
      })
      assert.strictEqual(initiated.status, 201, initiated.text)
      const transferId: string = initiated.body.transferId
      // the transfer process completes it in the background
      let status = ""
      for (let i = 0; i < 100 && status !== "Completed"; i++) {
        status = (yield* call("GET", `/transfers/${transferId}`, { as: "dave" })).body.status
        if (status !== "Completed") yield* Effect.sleep("50 millis")
      }
      assert.strictEqual(status, "Completed")

      const story = yield* call("GET", `/transfers/${transferId}/story`, { as: "dave" })
      assert.strictEqual(story.status, 200, story.text)
      assert.strictEqual(story.body.transfer.transferId, transferId)
      const streams = new Set(story.body.events.map((e: { streamId: string }) => e.streamId))
      assert.deepStrictEqual(streams, new Set([`Transfer-${transferId}`, `Account-${from}`, `Account-${to}`]))
      const types: Array<string> = story.body.events.map((e: { type: string }) => e.type)
      assert.includeMembers(types, [
        "TransferInitiated",
        "AccountDebitedForTransfer",
        "AccountCreditedForTransfer",
        "TransferCompleted"
      ])
      // the log's order: positions never go back
      const positions: Array<Array<bigint>> = story.body.events.map((e: { position: string }) =>
        e.position.split(".").map(BigInt)
      )
      for (let i = 1; i < positions.length; i++) {
        const [a, b] = [positions[i - 1]!, positions[i]!]
        const cmp = a[0]! !== b[0]! ? a[0]! < b[0]! : a[1]! !== b[1]! ? a[1]! < b[1]! : a[2]! <= b[2]!
        assert.isTrue(cmp, `${a.join(".")} before ${b.join(".")}`)
      }
      // every event carries who and why
      assert.isString(story.body.events[0].metadata.actor)
      assert.isString(story.body.events[0].metadata.correlationId)

      // the accounts' read rule: staff read both sides, a customer their own side of a transfer of theirs
      assert.strictEqual((yield* call("GET", `/transfers/${transferId}/story`, { as: "admin" })).status, 200)
      assert.strictEqual((yield* call("GET", `/transfers/${transferId}/story`, { as: "carol" })).status, 200)
      const sender = yield* call("GET", `/transfers/${transferId}/story`, { as: "alice" })
      assert.strictEqual(sender.status, 200, sender.text)
      assert.deepStrictEqual(
        new Set(sender.body.events.map((e: { streamId: string }) => e.streamId)),
        new Set([`Transfer-${transferId}`, `Account-${from}`])
      )
      const receiver = yield* call("GET", `/transfers/${transferId}/story`, { as: "bob" })
      assert.deepStrictEqual(
        new Set(receiver.body.events.map((e: { streamId: string }) => e.streamId)),
        new Set([`Transfer-${transferId}`, `Account-${to}`])
      )
      const alicesOther = yield* openAccount("alice", "0.00")
      const between = yield* call("POST", "/transfers", {
        as: "alice",
        body: { from, to: alicesOther, amount: "1.00" }
      })
      assert.strictEqual(between.status, 201, between.text)
      const outsider = yield* call("GET", `/transfers/${between.body.transferId}/story`, { as: "bob" })
      assert.strictEqual(outsider.status, 403, outsider.text)
      assert.strictEqual((yield* call("GET", `/transfers/${transferId}/story`)).status, 401)
      assert.strictEqual((yield* call("GET", "/transfers/no-such-transfer/story", { as: "dave" })).status, 404)
    })
  )

  it.effect("GET /projections and POST /projections/:name/rebuild are the admin's", () =>
    Effect.gen(function* () {
      const status = yield* call("GET", "/projections", { as: "admin" })
      assert.strictEqual(status.status, 200, status.text)
      const names = new Set(status.body.map((row: { name: string }) => row.name))
      assert.isTrue(names.has("bank-accounts"), status.text)
      const accounts = status.body.find((row: { name: string }) => row.name === "bank-accounts")
      assert.strictEqual(accounts.state, "running")
      assert.isString(accounts.owner)
      assert.isString(accounts.checkpoint)
      assert.isNumber(accounts.eventsBehind)

      assert.strictEqual((yield* call("GET", "/projections", { as: "dave" })).status, 403)
      assert.strictEqual((yield* call("GET", "/projections")).status, 401)
      assert.strictEqual((yield* call("POST", "/projections/bank-accounts/rebuild", { as: "carol" })).status, 403)
      assert.strictEqual((yield* call("POST", "/projections/no-such/rebuild", { as: "admin" })).status, 404)

      // the running app (here the harness) holds the lease: the console says who, and touches nothing
      const held = yield* call("POST", "/projections/bank-accounts/rebuild", { as: "admin" })
      assert.strictEqual(held.status, 409, held.text)
      assert.strictEqual(held.body.code, "ProjectionLeaseHeld")
      assert.match(held.body.detail, /is held by/)
      assert.match(held.body.detail, /blue\/green/)
    })
  )
})

layer(app("console_idle", { projections: false, settings: { readYourWritesTimeout: "100 millis" } }), {
  excludeTestServices: true,
  timeout: 60_000
})("the console's rebuild when no instance runs the projection", (it) => {
  it.effect("POST /projections/:name/rebuild replays the log under the console's lease", () =>
    Effect.gen(function* () {
      const opened = yield* call("POST", "/accounts", {
        as: "tina",
        body: { currency: "USD", owner: "alice", initialDeposit: "7.00" }
      })
      // nothing projects here: the answer comes from the command side once read-your-writes gives up
      assert.strictEqual(opened.status, 201, opened.text)
      const started = yield* call("POST", "/projections/bank-accounts/rebuild", { as: "admin" })
      assert.strictEqual(started.status, 202, started.text)
      assert.strictEqual(started.body.owner, "bank-console")
      let rebuilt = false
      for (let i = 0; i < 100 && !rebuilt; i++) {
        const rows = (yield* call("GET", "/projections", { as: "admin" })).body
        const row = rows.find((r: { name: string }) => r.name === "bank-accounts")
        rebuilt = row !== undefined && row.eventsBehind === 0 && row.state === "stopped"
        if (!rebuilt) yield* Effect.sleep("50 millis")
      }
      assert.isTrue(rebuilt)
      const accounts = yield* call("GET", "/accounts", { as: "admin" })
      assert.isAtLeast(accounts.body.length, 1, accounts.text)
    })
  )
})
