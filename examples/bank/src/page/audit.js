// The auditor's tools: an account's audit trail (who, when, why, correlation and causation, the raw event), time
// travel (the account as it stood at an instant or a version), and a transfer's whole story across the accounts it
// touched.

import { movementItem } from "./accounts.js"
import { ApiProblem, seg } from "./api.js"
import { badge, button, card, el, fill, preserving } from "./dom.js"
import { isoToLocal, localToIso, money, when, words } from "./format.js"

/** Why an event happened, as its request or the process recorded it. */
const whyOf = (event) => {
  const attributes = event.metadata?.attributes ?? {}
  const data = event.data ?? {}
  return [
    attributes.reason,
    data.reason,
    attributes.reference ?? data.reference,
    attributes.onBehalfOf && `on behalf of ${attributes.onBehalfOf}`
  ]
    .filter((part) => typeof part === "string" && part !== "")
    .join(" · ")
}

/** One stored event with everything an auditor asks about it; the raw event folds open. */
const eventItem = (event, options) =>
  el(
    "li",
    {
      class: "event",
      "data-event": event.eventId,
      "data-type": event.type,
      "data-stream": event.streamId ?? undefined
    },
    el(
      "div",
      { class: "event-head" },
      el("strong", {}, words(event.type)),
      event.streamId ? el("span", { class: "id stream" }, ` ${event.streamId}`) : null,
      el("span", { class: "muted" }, ` · v${event.version} · position ${event.position}`)
    ),
    el(
      "dl",
      { class: "facts" },
      el("dt", {}, "When"),
      el("dd", {}, when(event.recordedAt)),
      el("dt", {}, "Who"),
      el("dd", {}, event.metadata?.actor ?? "—"),
      el("dt", {}, "Why"),
      el("dd", {}, whyOf(event) || "—"),
      el("dt", {}, "Correlation"),
      el("dd", { class: "id" }, event.metadata?.correlationId ?? "—"),
      el("dt", {}, "Causation"),
      el("dd", { class: "id" }, event.metadata?.causationId ?? "—")
    ),
    options?.extra ?? null,
    el(
      "details",
      { class: "raw" },
      el("summary", {}, "Raw event"),
      el(
        "pre",
        {},
        JSON.stringify(
          {
            eventId: event.eventId,
            type: event.type,
            schemaVersion: event.schemaVersion,
            data: event.data,
            metadata: event.metadata
          },
          null,
          2
        )
      )
    )
  )

/** The audit trail of the selected account (`GET /accounts/:id/audit`), newest first. */
export const auditCard = (ctx) => {
  const list = el("ol", { class: "events", id: "audit-events" })
  const hint = el("p", { class: "muted" }, "Select an account to read its audit trail.")
  const node = card("audit-card", "Audit trail", hint, list)
  let accountId = null
  const refresh = async () => {
    if (accountId === null) return
    const trail = await ctx.api.get(`/accounts/${seg(accountId)}/audit`)
    hint.textContent = `${trail.events.length} event(s) of ${trail.accountId}, newest first`
    await preserving(list, () => list.replaceChildren(...[...trail.events].reverse().map((event) => eventItem(event))))
  }
  const show = async (id) => {
    accountId = id
    await refresh()
  }
  return { node, refresh, show }
}

/**
 * Time travel: the selected account as it stood at an instant or a version (`GET /accounts/:id/as-of`), with the
 * movements up to then (from `/explain`, cut at that version).
 */
export const timeTravelCard = (ctx) => {
  const mode = el(
    "fieldset",
    { class: "mode" },
    el("legend", {}, "Travel to"),
    el(
      "label",
      {},
      el("input", { type: "radio", name: "travel-mode", value: "at", id: "travel-mode-at", checked: true }),
      " an instant"
    ),
    el(
      "label",
      {},
      el("input", { type: "radio", name: "travel-mode", value: "version", id: "travel-mode-version" }),
      " a version"
    )
  )
  const at = el("input", { type: "datetime-local", id: "travel-at", step: "0.001" })
  const version = el("input", { type: "number", id: "travel-version", min: "0", step: "1", inputmode: "numeric" })
  const error = el("p", { class: "form-error", id: "travel-error", role: "alert" })
  const result = el("div", { id: "travel-result", "aria-live": "polite" })
  const form = el(
    "form",
    { id: "travel-form", class: "travel" },
    mode,
    el("div", { class: "field" }, el("label", { for: "travel-at" }, "Instant (your time)"), at),
    el("div", { class: "field" }, el("label", { for: "travel-version" }, "Version"), version),
    el("div", { class: "actions" }, el("button", { type: "submit", id: "travel-go" }, "Show as it stood")),
    error
  )
  const hint = el("p", { class: "muted" }, "Select an account, then pick an instant or a version.")
  const node = card("travel-card", "Time travel", hint, form, result)
  let accountId = null
  let last = null

  const travel = async (query) => {
    error.textContent = ""
    if (accountId === null) {
      error.textContent = "Select an account first."
      return
    }
    last = query
    const id = accountId
    try {
      const params = query.version !== undefined ? `version=${query.version}` : `at=${seg(query.at)}`
      const [asOf, explanation] = await Promise.all([
        ctx.api.get(`/accounts/${seg(id)}/as-of?${params}`),
        ctx.api.get(`/accounts/${seg(id)}/explain`)
      ])
      const entries = explanation.entries.filter((e) => e.version <= asOf.version)
      const currency = asOf.currency ?? explanation.account.currency
      const label = query.version !== undefined ? `version ${query.version}` : when(query.at)
      fill(
        result,
        el(
          "p",
          { class: "as-of", id: "travel-summary", "data-version": asOf.version },
          asOf.opened
            ? [
                `At ${label}: `,
                el("strong", { id: "travel-balance" }, money(asOf.balance, currency)),
                " ",
                badge(asOf.status),
                ` · version ${asOf.version} of ${id}`
              ]
            : [`At ${label}, account ${id} was not opened yet (version ${asOf.version}).`]
        ),
        el(
          "ol",
          { class: "movements", id: "travel-movements", "aria-label": "Movements as they stood, newest first" },
          [...entries].reverse().map((entry) => movementItem(ctx, entry, currency, new Map(), id))
        ),
        entries.length === 0 ? el("p", { class: "muted" }, "No movements by then.") : null
      )
    } catch (problem) {
      if (!(problem instanceof ApiProblem)) throw problem
      error.textContent = problem.message
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault()
    const byVersion = form.elements["travel-mode"].value === "version"
    if (byVersion) {
      if (version.value === "") {
        error.textContent = "Give a version."
        return
      }
      travel({ version: Number(version.value) })
    } else {
      if (at.value === "") {
        error.textContent = "Give an instant."
        return
      }
      travel({ at: localToIso(at.value) })
    }
  })

  const show = (id) => {
    if (id !== accountId) {
      accountId = id
      last = null
      result.replaceChildren()
    }
    hint.textContent = `Account ${id}`
  }

  /** Opens the account at a version or an instant (from a transfer's story). */
  const goTo = async (id, query) => {
    show(id)
    if (query.version !== undefined) {
      form.elements["travel-mode"].value = "version"
      version.value = String(query.version)
    } else {
      form.elements["travel-mode"].value = "at"
      at.value = isoToLocal(query.at)
    }
    await travel(query)
    node.scrollIntoView({ block: "start" })
  }

  // a live notice does not move the past; only a query by instant in the future could change, so keep it as it is
  const refresh = async () => {
    if (last !== null && accountId !== null && last.at !== undefined && Date.parse(last.at) > Date.now() - 1000)
      await travel(last)
  }
  return { node, refresh, show, goTo }
}

/** A transfer's story (`GET /transfers/:id/story`): its events and those it caused on both accounts, in log order. */
export const storyCard = (ctx, { travel }) => {
  const input = el("input", { id: "story-id", autocomplete: "off", spellcheck: "false", placeholder: "A transfer id" })
  const error = el("p", { class: "form-error", id: "story-error", role: "alert" })
  const result = el("div", { id: "story" })
  const form = el(
    "form",
    { id: "story-form", class: "inline-form" },
    el("label", { for: "story-id" }, "Transfer"),
    input,
    el("button", { type: "submit" }, "Open story"),
    error
  )
  const node = card("story-card", "Transfer story", form, result)
  let transferId = null

  const before = (story, accountId) => {
    const first = story.events.find((e) => e.streamId === `Account-${accountId}`)
    // the account's first event of this transfer, minus one: exactly what it held before the transfer touched it;
    // when the transfer never reached it, the instant just before the transfer began
    return first !== undefined
      ? { version: first.version - 1 }
      : { at: new Date(Date.parse(story.events[0].recordedAt) - 1).toISOString() }
  }

  const render = (story) => {
    const t = story.transfer
    const sides = [...new Set([t.from, t.to])]
    result.replaceChildren(
      el(
        "div",
        { class: "story-head", "data-transfer": t.transferId },
        el("p", {}, el("strong", {}, money(t.amount, t.currency)), " ", badge(t.status)),
        el(
          "p",
          { class: "transfer-route" },
          el("span", { class: "id" }, t.from),
          " → ",
          el("span", { class: "id" }, t.to)
        ),
        el(
          "p",
          { class: "muted small" },
          "Transfer ",
          el("span", { class: "id" }, t.transferId),
          ` · by ${t.initiatedBy}`,
          t.approvedBy ? ` · approved by ${t.approvedBy}` : "",
          t.failure ? ` · ${t.failure}` : ""
        ),
        el(
          "div",
          { class: "actions wrap" },
          sides.map((accountId) =>
            button(`${accountId} just before this transfer`, () => travel.goTo(accountId, before(story, accountId)), {
              class: "secondary",
              "data-action": "before",
              "data-account": accountId
            })
          )
        )
      ),
      el(
        "ol",
        { class: "events", id: "story-events" },
        story.events.map((event) => eventItem(event))
      )
    )
  }

  const open = async (id) => {
    transferId = id
    input.value = id
    error.textContent = ""
    try {
      render(await ctx.api.get(`/transfers/${seg(id)}/story`))
      node.scrollIntoView({ block: "start" })
    } catch (problem) {
      if (!(problem instanceof ApiProblem)) throw problem
      result.replaceChildren()
      error.textContent = problem.message
    }
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault()
    if (input.value.trim() !== "") open(input.value.trim())
  })
  const refresh = async () => {
    if (transferId === null) return
    const story = await ctx.api.get(`/transfers/${seg(transferId)}/story`)
    await preserving(result, () => render(story))
  }
  return { node, refresh, open }
}
