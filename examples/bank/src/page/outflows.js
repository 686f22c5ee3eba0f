// Withdrawals and fees above the approval threshold wait for a second person, like large transfers. There is no list
// of them across accounts, so the queue asks each account the approver can see (`GET /accounts/:id/outflows`), a few
// at a time.
import { ApiProblem, seg } from "./api.js"
import { button, card, el, preserving } from "./dom.js"
import { money, words } from "./format.js"

const inBatches = async (items, size, work) => {
  const results = []
  for (let i = 0; i < items.length; i += size) results.push(...(await Promise.all(items.slice(i, i + size).map(work))))
  return results
}

export const outflowsCard = (ctx) => {
  const list = el("ol", { class: "transfers", id: "outflows-card-list" })
  const message = el("p", { class: "form-error", id: "outflows-card-error", role: "alert" })
  const emptyNote = el("p", { class: "muted empty" }, "No withdrawal or fee waits for approval.")
  const node = card("outflows-card", "Withdrawals and fees awaiting approval", message, list, emptyNote)

  const actions = (outflow) => {
    const path = `/accounts/${seg(outflow.accountId)}/outflows/${seg(outflow.requestId)}`
    const reasonId = `outflow-reason-${outflow.requestId}`
    const reason = el("input", {
      id: reasonId,
      class: "reason",
      autocomplete: "off",
      placeholder: "Why it is rejected"
    })
    const act = (verb, body) => async () => {
      message.textContent = ""
      try {
        await ctx.api.post(`${path}/${verb}`, body)
        await refresh()
      } catch (error) {
        if (!(error instanceof ApiProblem)) throw error
        message.textContent = `${words(outflow.kind)} ${outflow.requestId}: ${error.message}`
      }
    }
    return el(
      "div",
      { class: "review" },
      button("Approve", act("approve"), { class: "approve", "data-action": "approve" }),
      el("label", { for: reasonId, class: "reason-label" }, "Reason"),
      reason,
      button("Reject", () => act("reject", reason.value.trim() === "" ? {} : { reason: reason.value.trim() })(), {
        class: "reject secondary",
        "data-action": "reject"
      })
    )
  }

  const refresh = async () => {
    const accounts = await ctx.api.get("/accounts")
    const pending = (
      await inBatches(accounts, 8, (account) =>
        ctx.api.get(`/accounts/${seg(account.accountId)}/outflows`).catch((error) => {
          // an older server, or an account closed meanwhile: nothing to review there
          if (error instanceof ApiProblem) return []
          throw error
        })
      )
    ).flat()
    await preserving(list, () =>
      list.replaceChildren(
        ...pending.map((outflow) =>
          el(
            "li",
            { class: "transfer", "data-outflow": outflow.requestId, "data-account": outflow.accountId },
            el(
              "div",
              { class: "transfer-head" },
              el("span", { class: "amount" }, money(outflow.amount, outflow.currency)),
              el("span", { class: "badge status-AwaitingApproval" }, words(outflow.kind))
            ),
            el("div", { class: "transfer-route" }, "From ", el("span", { class: "id" }, outflow.accountId)),
            el(
              "div",
              { class: "muted small" },
              `Requested by ${outflow.requestedBy}`,
              outflow.text ? ` · “${outflow.text}”` : "",
              ` · request `,
              el("span", { class: "id" }, outflow.requestId)
            ),
            actions(outflow)
          )
        )
      )
    )
    emptyNote.hidden = pending.length > 0
  }
  return { node, refresh }
}
