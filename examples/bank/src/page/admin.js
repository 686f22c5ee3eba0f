// The admin's projections: each checkpoint's position, lag, owner and state, and a rebuild. When the server runs the
// projections itself (the demo), it rebuilds the read model in place: the page follows the rebuild in the status
// (state "rebuilding", events behind) until it has caught up. The server refuses a rebuild of the transfer process
// (it sends commands), and one while another process holds the projection's lease, saying who holds it and how to
// rebuild beside it (blue/green); the page shows those answers as they are.
import { ApiProblem, seg } from "./api.js"
import { badge, button, card, el, table } from "./dom.js"
import { when } from "./format.js"

// `options.onRebuilt` runs once a rebuild has caught up (the other views refresh: they may have read it half-built).
export const projectionsCard = (ctx, options) => {
  const message = el("p", { class: "form-result", id: "projections-message", role: "status" })
  const body = el("div", { class: "card-body" })
  const node = card("projections-card", "Projections", message, body)
  const say = (text, bad) => {
    message.textContent = text
    message.classList.toggle("bad", bad === true)
  }
  /** Follows a started rebuild in the status, every half second, until it has caught up (at most two minutes). */
  const follow = async (started) => {
    const what = `${started.name} v${started.version}`
    let seenRebuilding = false
    for (let polls = 1; polls <= 240 && !ctx.api.signal?.aborted; polls++) {
      const rows = await refresh()
      const row = rows.find((r) => r.name === started.name && r.version === started.version)
      if (row !== undefined) {
        if (row.state === "failed")
          return say(`Rebuilding ${what} failed: ${row.error ?? "see the server's log"}`, true)
        if (row.state === "rebuilding") seenRebuilding = true
        // caught up once the rebuild has shown (or, if it was over before the first look, after a couple of looks)
        const caughtUp = row.state !== "rebuilding" && row.eventsBehind === 0
        if (caughtUp && (seenRebuilding || polls >= 4)) {
          say(
            `${what} rebuilt: ${started.eventsToReplay} event(s) replayed, caught up at ${row.checkpoint} (${row.state}).`
          )
          return options?.onRebuilt?.()
        }
        if (row.state === "rebuilding") {
          say(
            `Rebuilding ${what} as ${started.owner}: ${row.eventsBehind} of ${started.eventsToReplay} event(s) to go.`
          )
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
  }
  const rebuild = (name) => async () => {
    say("")
    try {
      const started = await ctx.api.post(`/projections/${seg(name)}/rebuild`)
      say(
        `Rebuilding ${started.name} v${started.version} as ${started.owner}: replaying ${started.eventsToReplay} event(s).`
      )
      await follow(started)
    } catch (error) {
      // a user who signs out stops following
      if (error?.name === "AbortError") return
      if (!(error instanceof ApiProblem)) throw error
      say(error.message, true)
    }
  }
  const refresh = async () => {
    const rows = await ctx.api.get("/projections")
    body.replaceChildren(
      el(
        "div",
        { class: "table-scroll" },
        table(
          "projections",
          [
            { label: "Projection" },
            { label: "Version" },
            { label: "Checkpoint" },
            { label: "Behind", num: true },
            { label: "Owner" },
            { label: "State" },
            { label: "" }
          ],
          rows.map((row) => ({
            attrs: { "data-projection": row.name },
            cells: [
              row.name,
              row.version === null
                ? `v${row.currentVersion}`
                : `v${row.version}${row.version === row.currentVersion ? "" : " (old)"}${row.partition ? ` · p${row.partition}` : ""}`,
              row.checkpoint ?? "—",
              row.eventsBehind === null ? "—" : `${row.eventsBehind} event(s) · ${row.secondsBehind.toFixed(1)} s`,
              el(
                "span",
                { class: "owner" },
                row.owner ?? "—",
                row.leaseExpiresAt ? el("span", { class: "muted small" }, ` until ${when(row.leaseExpiresAt)}`) : null
              ),
              [badge(row.state), row.error ? el("span", { class: "failure" }, ` ${row.error}`) : null],
              button("Rebuild", rebuild(row.name), { class: "secondary", "data-action": "rebuild" })
            ]
          }))
        )
      )
    )
    return rows
  }
  return { node, refresh }
}
