// The operations console: pick a demo user, and the page lays out that role's tools. Everything a user saw goes away
// when another signs in (the views, the calls in flight and the live connection). The page refreshes what it shows
// whenever the server says new events were projected, without reloading.
import { accountCard, accountsCard } from "./accounts.js"
import { projectionsCard } from "./admin.js"
import { client, demoUsers } from "./api.js"
import { auditCard, storyCard, timeTravelCard } from "./audit.js"
import { el } from "./dom.js"
import { learnCurrencies } from "./format.js"
import { follow } from "./live.js"
import { outflowsCard } from "./outflows.js"
import { riskCard } from "./risk.js"
import { depositForm } from "./teller.js"
import { reviewActions, storyAction, transferForm, transfersCard } from "./transfers.js"

const $ = (id) => document.getElementById(id)
const roles = {
  customer: "Customer: your accounts and transfers",
  teller: "Teller: deposits into any account",
  approver: "Approver: transfers waiting for a second person",
  auditor: "Auditor: audit trails, transfer stories, time travel and the risk watch",
  admin: "Admin: projections, the risk watch, accounts and transfers"
}

let session = null

const showError = (error) => {
  $("error").textContent = error ? String(error.message || error) : ""
}

/** Runs a view's refresh, reporting failures (but not the aborts of a user who signed out). */
const guarded = (refresh) => async () => {
  try {
    await refresh()
  } catch (error) {
    if (error?.name !== "AbortError") showError(error)
  }
}

/** The transfers waiting for a second person, with approve and reject. */
const reviewQueue = (ctx) =>
  transfersCard(ctx, {
    id: "queue-card",
    title: "Awaiting approval",
    query: "?status=AwaitingApproval&limit=100",
    actions: reviewActions(ctx),
    empty: "Nothing waits for approval."
  })

/** The cards of a role, wired to each other; returns them with their refreshes. */
const layout = (ctx) => {
  const role = ctx.user.role
  const views = []
  const columns = {
    wide: el("div", { class: "column wide" }),
    left: el("div", { class: "column" }),
    right: el("div", { class: "column" })
  }
  const add = (column, view) => {
    columns[column].append(view.node)
    views.push(view)
    return view
  }
  const inspects = role === "auditor" || role === "admin"
  const account = accountCard(ctx, {})
  const travel = inspects ? timeTravelCard(ctx) : undefined
  const audit = inspects ? auditCard(ctx) : undefined
  const accounts = accountsCard(ctx, {
    onSelect: (id) => {
      guarded(() => account.show(id))()
      travel?.show(id)
      if (audit) guarded(() => audit.show(id))()
    }
  })

  if (role === "customer") {
    add("left", accounts)
    const form = add("left", transferForm(ctx, { accounts: accounts.accounts, onSent: () => refreshAll() }))
    const list = add(
      "left",
      transfersCard(ctx, {
        id: "transfers-card",
        title: "Your transfers",
        query: "?limit=50",
        empty: "No transfers yet."
      })
    )
    add("right", account)
    // the form's accounts come from the accounts card: refresh it after
    views.splice(views.indexOf(form), 1)
    views.push(form)
    ctx.openTransfer = (id) => list.highlight(id)
  } else if (role === "teller") {
    add("left", accounts)
    add("left", depositForm(ctx, { accounts: accounts.accounts, onBooked: () => refreshAll() }))
    add("right", account)
  } else if (role === "approver") {
    add("left", reviewQueue(ctx))
    add("left", outflowsCard(ctx))
    add(
      "left",
      transfersCard(ctx, {
        id: "transfers-card",
        title: "Recent transfers",
        query: "?limit=20",
        empty: "No transfers yet."
      })
    )
    add("right", accounts)
    add("right", account)
    ctx.openTransfer = (id) =>
      document.querySelector(`[data-transfer="${CSS.escape(id)}"]`)?.scrollIntoView({ block: "nearest" })
  } else {
    // time travel sits beside "why this balance": the account then and now, side by side on a wide screen
    if (role === "admin") {
      // a rebuilt read model may have been read half-built by the other views: they refresh once it caught up
      add("wide", projectionsCard(ctx, { onRebuilt: () => scheduleRefresh() }))
      // an admin reviews transfers too; the server still refuses their own (four-eyes) and the queue says so
      add("left", reviewQueue(ctx))
      add("left", outflowsCard(ctx))
    }
    // what the separate risk watch service flagged (or that it is off), fed by the bank's transfer facts
    add("wide", riskCard(ctx))
    add("left", accounts)
    add("left", travel)
    add("right", account)
    const story = add("right", storyCard(ctx, { travel }))
    add(
      "left",
      transfersCard(ctx, {
        id: "transfers-card",
        title: "Recent transfers",
        query: "?limit=20",
        actions: storyAction(ctx),
        empty: "No transfers yet."
      })
    )
    add("right", audit)
    ctx.openTransfer = (id) => story.open(id)
  }
  return { columns, views }
}

/**
 * Says when the read models are behind the log (`GET /health`): right after a big seed the balances are still being
 * built, and the page should say so rather than pass half-built numbers for the truth.
 */
const checkHealth = async () => {
  try {
    const health = await (await fetch("/health")).json()
    const behind = health?.readModels
    $("sync").textContent =
      behind && behind.caughtUp === false ? `Read models catching up: ${behind.eventsBehind} event(s) behind` : ""
  } catch {
    $("sync").textContent = ""
  }
}

/** Refreshes every view of the signed-in user, one after the other (the order of the layout). */
const refreshAll = async () => {
  if (session === null) return
  const current = session
  checkHealth()
  for (const view of current.views) {
    if (current !== session) return
    await guarded(view.refresh)()
  }
}

/** Coalesces bursts of live notices into one refresh at a time, and one more if notices came during it. */
const scheduleRefresh = (() => {
  let running = false
  let again = false
  return () => {
    if (running) {
      again = true
      return
    }
    running = true
    setTimeout(async () => {
      do {
        again = false
        await refreshAll()
      } while (again)
      running = false
    }, 50)
  }
})()

const setLive = (state) => {
  const badge = $("live")
  badge.dataset.state = state
  badge.textContent =
    state === "live" ? "● Live" : state === "connecting" ? "○ Connecting…" : state === "offline" ? "○ Offline" : ""
}

/** Forgets the signed-in user: aborts their calls and live connection, empties the console. */
const signOut = () => {
  session?.abort.abort()
  session = null
  $("console").replaceChildren()
  $("who").textContent = "Not signed in"
  $("role-hint").textContent = ""
  document.body.dataset.role = ""
  setLive("")
  showError(null)
}

const signIn = async (user) => {
  signOut()
  const abort = new AbortController()
  const ctx = { user, api: client(user.token, abort.signal), openTransfer: () => {} }
  const { columns, views } = layout(ctx)
  session = { user, abort, views }
  document.body.dataset.role = user.role
  $("who").replaceChildren(el("strong", {}, user.name), " · ", el("span", { class: "role", id: "role" }, user.role))
  $("role-hint").textContent = roles[user.role] ?? ""
  $("console").replaceChildren(
    ...(columns.wide.childElementCount > 0 ? [columns.wide] : []),
    columns.left,
    columns.right
  )
  try {
    learnCurrencies(await ctx.api.get("/currencies"))
  } catch {
    // an older server without /currencies: the runtime's ISO 4217 data gives the decimals
  }
  await refreshAll()
  follow(user.token, abort.signal, { onNotice: () => scheduleRefresh(), onState: setLive })
}

const start = async () => {
  const select = $("user")
  let users = []
  try {
    users = await demoUsers()
  } catch (error) {
    showError(error)
  }
  select.replaceChildren(
    el("option", { value: "" }, "Choose a demo user…"),
    ...users.map((u) => el("option", { value: u.name }, `${u.name} (${u.role})`))
  )
  $("sign-in").addEventListener("submit", (event) => {
    event.preventDefault()
    const user = users.find((u) => u.name === select.value)
    if (user === undefined) signOut()
    else signIn(user).catch(showError)
  })
  signOut()
}

start()
