// The risk watch's flags (auditors and admins): transfers the separate risk watch service flagged, large or repeatedly
// just below the approval threshold, as `GET /risk/alerts` forwards them from it, with where the bank's relay of
// transfer facts stands. The watch learns of a transfer through the broker, a moment after the bank's own views, so
// this card also polls every few seconds while it is shown. When the watch is off (no broker configured) or does not
// answer, the card says so, as the server's problem puts it.
import { ApiProblem } from "./api.js"
import { badge, card, el, table } from "./dom.js"
import { when } from "./format.js"

const pollEvery = 3000

/** A decimal amount as the other cards write theirs: with thousands separators ("3000.00" is "3,000.00"). */
const grouped = (decimal) => {
  const [whole, fraction] = decimal.split(".")
  const withCommas = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",")
  return fraction === undefined ? withCommas : `${withCommas}.${fraction}`
}

const rules = { large: "Large", "near-threshold": "Just below approval, again" }

export const riskCard = (ctx) => {
  const summary = el("p", { class: "muted", id: "risk-summary", role: "status" })
  const body = el("div", { class: "card-body" })
  const node = card("risk-card", "Risk watch", summary, body)

  const relayLine = (relay) =>
    relay === null
      ? ""
      : ` Relay ${relay.relay}: ${relay.state}, ${relay.eventsBehind ?? "?"} event(s) behind${relay.error ? ` (${relay.error})` : ""}; ${relay.broker}.`

  const refresh = async () => {
    let alerts
    try {
      alerts = await ctx.api.get("/risk/alerts?limit=25")
    } catch (error) {
      if (!(error instanceof ApiProblem) || error.status !== 503) throw error
      node.dataset.state = error.problem.code === "RiskWatchOff" ? "off" : "unavailable"
      summary.textContent = error.message
      body.replaceChildren()
      return
    }
    node.dataset.state = "on"
    const { large, nearThreshold, transfersSeen } = alerts.totals
    summary.textContent =
      `${large} large and ${nearThreshold} near-threshold flag(s) among ${transfersSeen} transfer(s) seen.` +
      relayLine(alerts.relay)
    body.replaceChildren(
      el(
        "div",
        { class: "table-scroll" },
        table(
          "risk-flags",
          [
            { label: "Requested" },
            { label: "Transfer" },
            { label: "Rule" },
            { label: "Amount", num: true },
            { label: "From → to" },
            { label: "Status" },
            { label: "Why" }
          ],
          alerts.flags.map((flag) => ({
            attrs: { "data-flag": `${flag.transferId}/${flag.rule}` },
            cells: [
              when(flag.requestedAt),
              el(
                "button",
                { type: "button", class: "link", onclick: () => ctx.openTransfer(flag.transferId) },
                flag.transferId
              ),
              el("span", { class: `badge rule-${flag.rule}` }, rules[flag.rule] ?? flag.rule),
              `${grouped(flag.amount)} ${flag.currency}`,
              `${flag.fromAccount} → ${flag.toAccount}`,
              badge(flag.status),
              el("span", { class: "small" }, flag.reason)
            ]
          })),
          { empty: "Nothing flagged yet." }
        )
      )
    )
  }

  // the flags arrive through the broker after the bank's own views have refreshed: look again every few seconds
  const timer = setInterval(() => {
    if (ctx.api.signal?.aborted) return clearInterval(timer)
    refresh().catch(() => {})
  }, pollEvery)
  ctx.api.signal?.addEventListener("abort", () => clearInterval(timer))

  return { node, refresh }
}
