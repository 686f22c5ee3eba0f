// Tiny DOM helpers: elements are built with text nodes only (never innerHTML), so data from the API cannot inject markup.

/** An element with attributes (`class`, `data-*`, `aria-*`...; `on*` functions become listeners) and children. */
export const el = (tag, attrs, ...children) => {
  const node = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value)
    else node.setAttribute(key, value === true ? "" : String(value))
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue
    node.append(child instanceof Node ? child : String(child))
  }
  return node
}

/** Replaces a node's children, skipping the absent ones (`null`, `undefined`, `false`). */
export const fill = (node, ...children) =>
  node.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined && child !== false))

/** An SVG element with attributes. */
export const svg = (tag, attrs) => {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag)
  for (const [key, value] of Object.entries(attrs ?? {})) node.setAttribute(key, String(value))
  return node
}

/** A card: a titled section of the console. */
export const card = (id, title, ...children) =>
  el(
    "section",
    { class: "card", id, "aria-labelledby": `${id}-title` },
    el("h2", { id: `${id}-title` }, title),
    ...children
  )

/** A table whose cells carry their column's name (`data-label`), so that narrow screens can stack them. */
export const table = (id, columns, rows, options) => {
  const head = el(
    "thead",
    {},
    el(
      "tr",
      {},
      columns.map((c) => el("th", { class: c.num ? "num" : undefined, scope: "col" }, c.label))
    )
  )
  const body = el("tbody", {})
  for (const row of rows) {
    const tr = el("tr", row.attrs ?? {})
    row.cells.forEach((cell, i) => {
      const column = columns[i]
      tr.append(el("td", { class: column.num ? "num" : undefined, "data-label": column.label }, cell))
    })
    body.append(tr)
  }
  const node = el("table", { id, class: "stack" }, head, body)
  if (rows.length === 0 && options?.empty) return el("div", {}, node, el("p", { class: "muted empty" }, options.empty))
  return node
}

/** A status badge (`Completed`, `AwaitingApproval`...), styled by its value. */
export const badge = (status) =>
  el("span", { class: `badge status-${status}`, "data-status": status }, status.replace(/([a-z])([A-Z])/g, "$1 $2"))

/** A button that runs `action`, disabled while it runs. */
export const button = (label, action, attrs) =>
  el(
    "button",
    {
      type: "button",
      ...attrs,
      onclick: async (event) => {
        const target = event.currentTarget
        target.disabled = true
        try {
          await action(event)
        } finally {
          target.disabled = false
        }
      }
    },
    label
  )

/**
 * Re-renders `container` with `render` while keeping what the user was doing in it: the text typed into inputs with
 * an id, the focused control, and which `<details>` (keyed by their closest `data-event`) were open. Live refreshes
 * re-render often; without this a reason being typed or a raw event being read would vanish under the user.
 */
export const preserving = async (container, render) => {
  const values = new Map([...container.querySelectorAll("input[id]")].map((input) => [input.id, input.value]))
  const focused = container.contains(document.activeElement) ? document.activeElement.id : ""
  const open = new Set(
    [...container.querySelectorAll("details[open]")].map((d) => d.closest("[data-event]")?.dataset.event)
  )
  await render()
  for (const [id, value] of values) {
    const input = container.querySelector(`#${CSS.escape(id)}`)
    if (input && input.value === "" && value !== "") input.value = value
  }
  for (const details of container.querySelectorAll("details")) {
    if (open.has(details.closest("[data-event]")?.dataset.event)) details.open = true
  }
  if (focused) container.querySelector(`#${CSS.escape(focused)}`)?.focus()
}
