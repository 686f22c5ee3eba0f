// The accounts: a table of balances, and one account's story: its running balance and every movement, with the
// counterparty and the transfer it belongs to.
import { seg } from "./api.js"
import { balanceChart } from "./chart.js"
import { badge, card, el, fill, table } from "./dom.js"
import { learnCurrencies, money, when, words } from "./format.js"

/** The accounts the user may see (`GET /accounts`), each selectable by its id. */
export const accountsCard = (ctx, { onSelect }) => {
  const body = el("div", { class: "card-body" }, el("p", { class: "muted" }, "Loading…"))
  const node = card("accounts-card", "Accounts", body)
  let accounts = []
  let selected = null
  const render = () => {
    body.replaceChildren(
      table(
        "accounts",
        [{ label: "Account" }, { label: "Owner" }, { label: "Balance", num: true }, { label: "Status" }],
        accounts.map((account) => ({
          attrs: {
            "data-account": account.accountId,
            class: account.accountId === selected ? "selected" : undefined
          },
          cells: [
            el(
              "button",
              {
                type: "button",
                class: "link id",
                "aria-pressed": account.accountId === selected ? "true" : "false",
                onclick: () => select(account.accountId)
              },
              account.accountId
            ),
            account.owner,
            el("span", { class: "balance" }, money(account.balance, account.currency)),
            badge(account.status)
          ]
        })),
        { empty: "No accounts to show." }
      )
    )
  }
  const select = (accountId) => {
    selected = accountId
    render()
    onSelect(accountId)
  }
  const refresh = async () => {
    accounts = await ctx.api.get("/accounts")
    // accounts carry their currency's decimals (when the server says them): the formatting of every amount uses them
    learnCurrencies(accounts.map((a) => ({ code: a.currency, decimals: a.decimals })))
    render()
    if (selected === null && accounts.length > 0 && ctx.user.role === "customer") select(accounts[0].accountId)
  }
  return { node, refresh, select, accounts: () => accounts }
}

/** The transfers touching an account, by id, to name each movement's counterparty. */
const transfersOf = async (ctx, accountId) => {
  try {
    const transfers = await ctx.api.get(`/transfers?account=${seg(accountId)}&limit=500`)
    return new Map(transfers.map((t) => [t.transferId, t]))
  } catch {
    return new Map()
  }
}

/** One movement as a list item: when, what (with counterparty and transfer), amount and the balance after. */
export const movementItem = (ctx, entry, currency, transfers, accountId) => {
  const transfer = entry.transferId ? transfers.get(entry.transferId) : undefined
  const counterparty = transfer ? (transfer.from === accountId ? transfer.to : transfer.from) : undefined
  const direction = transfer ? (transfer.from === accountId ? "to" : "from") : undefined
  return el(
    "li",
    { "data-version": entry.version, "data-transfer": entry.transferId ?? undefined },
    el(
      "span",
      { class: "when muted" },
      when(entry.recordedAt),
      el("span", { class: "version" }, ` · v${entry.version}`)
    ),
    el(
      "span",
      { class: "what" },
      el("strong", {}, words(entry.type)),
      counterparty
        ? el("span", { class: "counterparty" }, ` ${direction} `, el("span", { class: "id" }, counterparty))
        : null,
      entry.transferId
        ? el(
            "span",
            { class: "transfer-ref" },
            " · transfer ",
            el(
              "a",
              {
                href: `#transfer/${entry.transferId}`,
                class: "id",
                "data-transfer-link": entry.transferId,
                onclick: (event) => {
                  event.preventDefault()
                  ctx.openTransfer(entry.transferId)
                }
              },
              entry.transferId
            )
          )
        : null,
      entry.actor ? el("span", { class: "muted" }, ` · by ${entry.actor}`) : null,
      entry.reference || entry.reason ? el("span", { class: "muted" }, ` · “${entry.reference || entry.reason}”`) : null
    ),
    el(
      "span",
      { class: `amount num ${entry.amount < 0 ? "debit" : "credit"}` },
      money(entry.amount, currency, { signed: true })
    ),
    el("span", { class: "after num" }, money(entry.balanceAfter, currency))
  )
}

/**
 * One account: why it holds its balance (`/explain`: every movement with the running balance), drawn as a chart and
 * listed newest first. Users who may not inspect the account (approvers) get its history instead.
 */
export const accountCard = (ctx, options) => {
  const title = el("p", { class: "account-title" })
  const body = el(
    "div",
    { class: "card-body" },
    el("p", { class: "muted" }, "Select an account to see how its balance came to be.")
  )
  const node = card("account-card", "Why this balance", title, body)
  let accountId = null
  const render = (account, entries, consistent, transfers) => {
    const currency = account.currency
    fill(
      title,
      el("span", { class: "id" }, account.accountId),
      ` · ${account.owner} · `,
      el("strong", { id: "account-balance", "data-account": account.accountId }, money(account.balance, currency)),
      " ",
      badge(account.status),
      consistent === undefined
        ? null
        : el(
            "span",
            { id: "consistent", class: consistent ? "ok" : "bad" },
            consistent ? ` ✓ consistent: ${entries.length} movement(s) add up to the balance` : " ✗ inconsistent"
          )
    )
    fill(
      body,
      el("div", { id: "chart", class: "chart" }, balanceChart(entries, currency)),
      el(
        "ol",
        { id: "movements", class: "movements", "aria-label": "Movements, newest first" },
        [...entries].reverse().map((entry) => movementItem(ctx, entry, currency, transfers, account.accountId))
      ),
      entries.length === 0 ? el("p", { class: "muted" }, "No movements yet.") : null
    )
  }
  const refresh = async () => {
    if (accountId === null) return
    const id = accountId
    const transfers = await transfersOf(ctx, id)
    try {
      const explanation = await ctx.api.get(`/accounts/${seg(id)}/explain`)
      if (id === accountId) render(explanation.account, explanation.entries, explanation.consistent, transfers)
    } catch (error) {
      if (error.status !== 403) throw error
      // not theirs to inspect (an approver): the history shows the same movements without the consistency check
      const [account, history] = await Promise.all([
        ctx.api.get(`/accounts/${seg(id)}`),
        ctx.api.get(`/accounts/${seg(id)}/history?limit=500`)
      ])
      if (id === accountId) render(account, history.entries, undefined, transfers)
    }
    options?.onLoaded?.(id)
  }
  const show = async (id) => {
    accountId = id
    await refresh()
  }
  return { node, refresh, show, current: () => accountId }
}
