// Transfers: the form that sends one (with the server's validation beside the fields), the list with each transfer's
// live status, and the approver's queue with approve and reject.
import { ApiProblem, seg } from "./api.js"
import { badge, button, card, el, preserving } from "./dom.js"
import { money, when, words } from "./format.js"

const fieldNames = ["from", "to", "amount", "reference"]

/** Where a problem belongs in the form: the field the server named, or the account its detail names. */
const fieldOf = (issue, values) => {
  const named = issue.field?.split(".").at(-1)
  if (named && fieldNames.includes(named)) return named
  if (values.to && issue.message.includes(values.to) && !issue.message.includes(values.from)) return "to"
  return undefined
}

/** The customer's transfer form: from one of their accounts to any account id. */
export const transferForm = (ctx, { accounts, onSent }) => {
  const errors = Object.fromEntries(
    fieldNames.map((name) => [name, el("p", { class: "field-error", id: `transfer-${name}-error`, role: "alert" })])
  )
  const field = (name, label, control) =>
    el("div", { class: "field" }, el("label", { for: `transfer-${name}` }, label), control, errors[name])
  const from = el("select", { id: "transfer-from", name: "from", "aria-describedby": "transfer-from-error" })
  const to = el("input", {
    id: "transfer-to",
    name: "to",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "The receiving account's id",
    "aria-describedby": "transfer-to-error"
  })
  const amount = el("input", {
    id: "transfer-amount",
    name: "amount",
    inputmode: "decimal",
    autocomplete: "off",
    placeholder: "250.00",
    "aria-describedby": "transfer-amount-error"
  })
  const reference = el("input", {
    id: "transfer-reference",
    name: "reference",
    autocomplete: "off",
    "aria-describedby": "transfer-reference-error"
  })
  const formError = el("p", { class: "form-error", id: "transfer-error", role: "alert" })
  const result = el("p", { class: "form-result", id: "transfer-result", role: "status" })
  const submit = el("button", { type: "submit", id: "transfer-submit" }, "Send transfer")
  const form = el(
    "form",
    { id: "transfer-form", novalidate: true },
    field("from", "From", from),
    field("to", "To account", to),
    field("amount", "Amount", amount),
    field("reference", "Reference (optional)", reference),
    formError,
    el("div", { class: "actions" }, submit),
    result
  )
  const clear = () => {
    for (const name of fieldNames) {
      errors[name].textContent = ""
      form.elements[name].removeAttribute("aria-invalid")
    }
    formError.textContent = ""
    result.textContent = ""
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault()
    clear()
    const values = {
      from: from.value,
      to: to.value.trim(),
      amount: amount.value.trim(),
      reference: reference.value.trim()
    }
    submit.disabled = true
    try {
      const body = { from: values.from, to: values.to, amount: values.amount }
      if (values.reference !== "") body.reference = values.reference
      const transfer = await ctx.api.post("/transfers", body)
      result.textContent =
        transfer.status === "AwaitingApproval"
          ? `Transfer ${transfer.transferId} is waiting for an approver (it is above the approval threshold).`
          : `Transfer ${transfer.transferId} sent: ${words(transfer.status)}.`
      result.dataset.transfer = transfer.transferId
      amount.value = ""
      reference.value = ""
      onSent(transfer)
    } catch (error) {
      if (!(error instanceof ApiProblem)) throw error
      for (const issue of error.issues) {
        const name = fieldOf(issue, values)
        if (name === undefined) {
          formError.textContent = formError.textContent ? `${formError.textContent} ${issue.message}` : issue.message
        } else {
          errors[name].textContent = issue.message
          form.elements[name].setAttribute("aria-invalid", "true")
        }
      }
    } finally {
      submit.disabled = false
    }
  })
  const refresh = () => {
    const previous = from.value
    from.replaceChildren(
      ...accounts().map((a) => el("option", { value: a.accountId }, `${a.accountId} · ${money(a.balance, a.currency)}`))
    )
    if (accounts().some((a) => a.accountId === previous)) from.value = previous
  }
  return { node: card("transfer-card", "New transfer", form), refresh }
}

/** One transfer as a list item; `actions` adds the buttons a role has on it. */
const transferItem = (transfer, actions) =>
  el(
    "li",
    {
      class: "transfer",
      id: `transfer-${transfer.transferId}`,
      "data-transfer": transfer.transferId,
      "data-status": transfer.status
    },
    el(
      "div",
      { class: "transfer-head" },
      el("span", { class: "amount" }, money(transfer.amount, transfer.currency)),
      badge(transfer.status)
    ),
    el(
      "div",
      { class: "transfer-route" },
      el("span", { class: "id" }, transfer.from),
      el("span", { "aria-label": "to" }, " → "),
      el("span", { class: "id" }, transfer.to)
    ),
    el(
      "div",
      { class: "muted small" },
      "Transfer ",
      el("span", { class: "id" }, transfer.transferId),
      ` · by ${transfer.initiatedBy}`,
      transfer.approvedBy ? ` · approved by ${transfer.approvedBy}` : "",
      ` · ${when(transfer.initiatedAt)}`,
      transfer.reference ? ` · “${transfer.reference}”` : ""
    ),
    transfer.failure ? el("div", { class: "failure" }, transfer.failure) : null,
    actions ? actions(transfer) : null
  )

/** A list of transfers (`GET /transfers?...`), refreshed on every live notice. */
export const transfersCard = (ctx, { id, title, query, actions, empty }) => {
  const list = el("ol", { class: "transfers", id: `${id}-list` })
  const message = el("p", { class: "form-error", id: `${id}-error`, role: "alert" })
  const emptyNote = el("p", { class: "muted empty" }, empty)
  const node = card(id, title, message, list, emptyNote)
  let highlighted = null
  const refresh = async () => {
    const transfers = await ctx.api.get(`/transfers${query}`)
    await preserving(list, () =>
      list.replaceChildren(
        ...transfers.map((t) => transferItem(t, actions ? (x) => actions(x, message, refresh) : undefined))
      )
    )
    emptyNote.hidden = transfers.length > 0
    if (highlighted) list.querySelector(`[data-transfer="${CSS.escape(highlighted)}"]`)?.classList.add("highlight")
  }
  const highlight = (transferId) => {
    highlighted = transferId
    for (const item of list.querySelectorAll(".highlight")) item.classList.remove("highlight")
    const item = list.querySelector(`[data-transfer="${CSS.escape(transferId)}"]`)
    item?.classList.add("highlight")
    item?.scrollIntoView({ block: "nearest" })
    return item !== null
  }
  return { node, refresh, highlight }
}

/** The approver's buttons: approve, or reject with a reason; the server's refusal (four-eyes) is shown as it says. */
export const reviewActions = (ctx) => (transfer, message, refresh) => {
  const reasonId = `reason-${transfer.transferId}`
  const reason = el("input", { id: reasonId, class: "reason", autocomplete: "off", placeholder: "Why it is rejected" })
  const act = (verb, body) => async () => {
    message.textContent = ""
    try {
      await ctx.api.post(`/transfers/${seg(transfer.transferId)}/${verb}`, body)
      await refresh()
    } catch (error) {
      if (!(error instanceof ApiProblem)) throw error
      message.textContent = `Transfer ${transfer.transferId}: ${error.message}`
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

/** The auditor's and admin's button: open the transfer's story. */
export const storyAction = (ctx) => (transfer) =>
  el(
    "div",
    { class: "review" },
    button("Story", () => ctx.openTransfer(transfer.transferId), { class: "secondary", "data-action": "story" })
  )
