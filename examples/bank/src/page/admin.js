// The admin's projections: each checkpoint's position, lag, owner and state, and a rebuild. The server refuses a
// rebuild while another instance (the running app) holds the projection's lease, and says who holds it and how to
// rebuild beside it (blue/green); the page shows that answer as it is.
import { ApiProblem, seg } from "./api.js"
import { badge, button, card, el, table } from "./dom.js"
import { when } from "./format.js"

export const projectionsCard = (ctx) => {
  const message = el("p", { class: "form-result", id: "projections-message", role: "status" })
  const body = el("div", { class: "card-body" })
  const node = card("projections-card", "Projections", message, body)
  const rebuild = (name) => async () => {
    message.textContent = ""
    message.classList.remove("bad")
    try {
      const started = await ctx.api.post(`/projections/${seg(name)}/rebuild`)
      message.textContent = `Rebuilding ${started.name} v${started.version} as ${started.owner}: replaying ${started.eventsToReplay} event(s).`
      await refresh()
    } catch (error) {
      if (!(error instanceof ApiProblem)) throw error
      message.textContent = error.message
      message.classList.add("bad")
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
  }
  return { node, refresh }
}
