// The teller's desk: book a deposit into any account, with the server's refusal (over the teller limit, a frozen
// account, an amount the currency cannot hold) beside the field it is about.
import { ApiProblem, seg } from "./api.js"
import { card, el } from "./dom.js"
import { money } from "./format.js"

const fieldNames = ["account", "amount", "reference"]

export const depositForm = (ctx, { accounts, onBooked }) => {
  const errors = Object.fromEntries(
    fieldNames.map((name) => [name, el("p", { class: "field-error", id: `deposit-${name}-error`, role: "alert" })])
  )
  const field = (name, label, control) =>
    el("div", { class: "field" }, el("label", { for: `deposit-${name}` }, label), control, errors[name])
  const account = el("select", { id: "deposit-account", name: "account", "aria-describedby": "deposit-account-error" })
  const amount = el("input", {
    id: "deposit-amount",
    name: "amount",
    inputmode: "decimal",
    autocomplete: "off",
    placeholder: "100.00",
    "aria-describedby": "deposit-amount-error"
  })
  const reference = el("input", {
    id: "deposit-reference",
    name: "reference",
    autocomplete: "off",
    "aria-describedby": "deposit-reference-error"
  })
  const formError = el("p", { class: "form-error", id: "deposit-error", role: "alert" })
  const result = el("p", { class: "form-result", id: "deposit-result", role: "status" })
  const submit = el("button", { type: "submit", id: "deposit-submit" }, "Book deposit")
  const form = el(
    "form",
    { id: "deposit-form", novalidate: true },
    field("account", "Into account", account),
    field("amount", "Amount", amount),
    field("reference", "Reference (optional)", reference),
    formError,
    el("div", { class: "actions" }, submit),
    result
  )
  form.addEventListener("submit", async (event) => {
    event.preventDefault()
    for (const name of fieldNames) {
      errors[name].textContent = ""
      form.elements[name].removeAttribute("aria-invalid")
    }
    formError.textContent = ""
    result.textContent = ""
    submit.disabled = true
    try {
      const body = { amount: amount.value.trim() }
      if (reference.value.trim() !== "") body.reference = reference.value.trim()
      const booked = await ctx.api.post(`/accounts/${seg(account.value)}/deposits`, body)
      result.textContent = `Booked: ${booked.accountId} now holds ${money(booked.balance, booked.currency)}.`
      amount.value = ""
      reference.value = ""
      onBooked()
    } catch (error) {
      if (!(error instanceof ApiProblem)) throw error
      for (const issue of error.issues) {
        const name = issue.field?.split(".").at(-1)
        if (name === "amount" || name === "reference") {
          errors[name].textContent = issue.message
          form.elements[name].setAttribute("aria-invalid", "true")
        } else {
          formError.textContent = formError.textContent ? `${formError.textContent} ${issue.message}` : issue.message
        }
      }
    } finally {
      submit.disabled = false
    }
  })
  const refresh = () => {
    const previous = account.value
    account.replaceChildren(
      ...accounts().map((a) =>
        el("option", { value: a.accountId }, `${a.accountId} · ${a.owner} · ${money(a.balance, a.currency)}`)
      )
    )
    if (accounts().some((a) => a.accountId === previous)) account.value = previous
  }
  return { node: card("deposit-card", "Book a deposit", form), refresh }
}
