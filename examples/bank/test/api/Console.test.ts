/**
 * The console's routes: the live stream of projected changes (`GET /events/live`), a transfer's story and the
 * projections' status and rebuild, with who may call them: a rebuild in place through the running app's control, a
 * refusal (409 naming the holder) while another process holds the lease, and a rebuild under the console's own lease
 * on an API-only server.
 */
import { assert, layer } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import type { HttpServer } from "effect/http"
import { SqlClient } from "effect/sql"
import * as Background from "../../src/app/Background.ts"
import * as Tables from "../../src/readmodels/Tables.ts"
import { app, baseUrl, call, openFunded, testOwner, tokenOf } from "./harness.ts"

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

// biome-ignore lint/suspicious/noExplicitAny: status rows are checked by assertions
type StatusRow = any

/** The status row of `name` (its live version), as the admin reads it. */
const statusOf = (name: string) =>
  Effect.map(call("GET", "/projections", { as: "admin" }), (reply): StatusRow => {
    assert.strictEqual(reply.status, 200, reply.text)
    return reply.body.find((row: StatusRow) => row.name === name && row.version === row.currentVersion)
  })

/** Polls the status of `name` until `done` says so (at most 15 seconds); answers the last row. */
const statusUntil = (name: string, done: (row: StatusRow) => boolean) =>
  Effect.gen(function* () {
    let row = yield* statusOf(name)
    for (let i = 0; i < 300 && !(row !== undefined && done(row)); i++) {
      yield* Effect.sleep("50 millis")
      row = yield* statusOf(name)
    }
    assert.isTrue(row !== undefined && done(row), JSON.stringify(row))
    return row
  })

/** Every account of the read model, by id. */
const allAccounts = Effect.map(call("GET", "/accounts", { as: "admin" }), (reply) => {
  assert.strictEqual(reply.status, 200, reply.text)
  return [...reply.body].sort((a: { accountId: string }, b: { accountId: string }) =>
    a.accountId.localeCompare(b.accountId)
  )
})

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
      // the app's own run: its owner, an instance id, and the run's id
      assert.match(accounts.owner, new RegExp(`^${testOwner}@[0-9a-f]{8}/`))
      assert.isString(accounts.checkpoint)
      assert.isNumber(accounts.eventsBehind)

      assert.strictEqual((yield* call("GET", "/projections", { as: "dave" })).status, 403)
      assert.strictEqual((yield* call("GET", "/projections")).status, 401)
      assert.strictEqual((yield* call("POST", "/projections/bank-accounts/rebuild", { as: "carol" })).status, 403)
      assert.strictEqual((yield* call("POST", "/projections/no-such/rebuild", { as: "admin" })).status, 404)

      // the transfer process is no read model: replaying it would send its commands again
      const process = yield* call("POST", "/projections/transfer-process/rebuild", { as: "admin" })
      assert.strictEqual(process.status, 409, process.text)
      assert.strictEqual(process.body.code, "NotRebuildable")
      assert.match(process.body.detail, /sends commands/)
      assert.strictEqual((yield* statusOf("transfer-process")).state, "running")
    })
  )

  it.effect("POST /projections/:name/rebuild resets the app's own read model and replays the log in place", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const schema = yield* Tables.Schema
      const alices = yield* openAccount("alice", "30.00")
      const bobs = yield* openAccount("bob", "5.00")
      assert.strictEqual(
        (yield* call("POST", `/accounts/${bobs}/deposits`, { as: "tina", body: { amount: "2.50" } })).status,
        200
      )
      const caughtUp = yield* statusUntil("bank-accounts", (row) => row.state === "running" && row.eventsBehind === 0)
      const before = yield* allAccounts
      assert.isTrue(before.some((account: { accountId: string }) => account.accountId === alices))

      // a row gone from the read model: tailing the log never brings it back, a reset and a replay do
      yield* sql`DELETE FROM ${sql(schema)}.accounts WHERE account_id = ${alices}`
      assert.isFalse((yield* allAccounts).some((account: { accountId: string }) => account.accountId === alices))

      // the reset waits behind a reader of the read model, so that the rebuild is seen under way
      const locked = yield* Deferred.make<void>()
      const unlock = yield* Deferred.make<void>()
      const reader = yield* Effect.forkChild(
        sql.withTransaction(
          Effect.gen(function* () {
            yield* sql`SELECT 1 FROM ${sql(schema)}.account_entries LIMIT 1`
            yield* Deferred.succeed(locked, undefined)
            yield* Deferred.await(unlock)
          })
        )
      )
      yield* Deferred.await(locked)
      const started = yield* call("POST", "/projections/bank-accounts/rebuild", { as: "admin" })
      assert.strictEqual(started.status, 202, started.text)
      assert.strictEqual(started.body.name, "bank-accounts")
      assert.match(started.body.owner, new RegExp(`^${testOwner}@[0-9a-f]{8}$`))
      assert.isAtLeast(started.body.eventsToReplay, 3)
      const during = yield* statusUntil("bank-accounts", (row) => row.state === "rebuilding")
      assert.isTrue(during.owner === null || during.owner.startsWith(`${started.body.owner}/`), during.owner)
      yield* Deferred.succeed(unlock, undefined)
      yield* Fiber.join(reader)

      // asked again while it runs: the rebuild starts over
      const again = yield* call("POST", "/projections/bank-accounts/rebuild", { as: "admin" })
      assert.strictEqual(again.status, 202, again.text)

      // it catches up under the app's lease and tails the log again: the read model is what it was
      const after = yield* statusUntil("bank-accounts", (row) => row.state === "running" && row.eventsBehind === 0)
      assert.strictEqual(after.checkpoint, caughtUp.checkpoint)
      assert.isTrue(after.owner.startsWith(`${started.body.owner}/`), after.owner)
      assert.deepStrictEqual(yield* allAccounts, before)
      // and it keeps tailing
      assert.strictEqual(
        (yield* call("POST", `/accounts/${alices}/deposits`, { as: "tina", body: { amount: "1.00" } })).status,
        200
      )
      const tailed = yield* call("GET", `/accounts/${alices}`, { as: "admin" })
      assert.strictEqual(tailed.body.balance, 3100, tailed.text)
    })
  )
})

layer(app("console_elsewhere", { elsewhere: "bank-elsewhere" }), { excludeTestServices: true, timeout: 60_000 })(
  "the console's rebuild while another process holds the lease",
  (it) => {
    it.effect("POST /projections/:name/rebuild is a 409 naming the other process, and touches nothing", () =>
      Effect.gen(function* () {
        const row = yield* statusOf("bank-accounts")
        assert.match(row.owner, /^bank-elsewhere\//)
        const held = yield* call("POST", "/projections/bank-accounts/rebuild", { as: "admin" })
        assert.strictEqual(held.status, 409, held.text)
        assert.strictEqual(held.body.code, "ProjectionLeaseHeld")
        assert.match(held.body.detail, /is held by bank-elsewhere\//)
        assert.match(held.body.detail, /blue\/green/)
        const still = yield* statusOf("bank-accounts")
        assert.strictEqual(still.state, "running")
        assert.strictEqual(still.owner, row.owner)
      })
    )
  }
)

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

      // another process runs the read model: the console says who holds it, and touches nothing
      const other = yield* Effect.forkChild(
        Background.readModels[0].run({ owner: "bank-other", batchWindow: "1 millis", pollInterval: "20 millis" })
      )
      yield* statusUntil("bank-accounts", (row) => typeof row.owner === "string" && row.owner.startsWith("bank-other/"))
      const held = yield* call("POST", "/projections/bank-accounts/rebuild", { as: "admin" })
      assert.strictEqual(held.status, 409, held.text)
      assert.strictEqual(held.body.code, "ProjectionLeaseHeld")
      assert.match(held.body.detail, /is held by bank-other\//)
      assert.match(held.body.detail, /blue\/green/)
      yield* Fiber.interrupt(other)
      const stopped = yield* statusUntil("bank-accounts", (row) => row.state === "stopped" && row.owner === null)

      const started = yield* call("POST", "/projections/bank-accounts/rebuild", { as: "admin" })
      assert.strictEqual(started.status, 202, started.text)
      assert.strictEqual(started.body.owner, "bank-console")
      // done once the console's run has let its lease go, caught up
      yield* statusUntil(
        "bank-accounts",
        (row) =>
          row.updatedAt !== stopped.updatedAt && row.owner === null && row.state === "stopped" && row.eventsBehind === 0
      )
      const accounts = yield* call("GET", "/accounts", { as: "admin" })
      assert.isAtLeast(accounts.body.length, 1, accounts.text)
    })
  )
})
