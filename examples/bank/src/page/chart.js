// The running balance of an account as a step line: the balance holds until the next movement.
import { svg } from "./dom.js"
import { money } from "./format.js"

/** An SVG chart of `entries` (`recordedAt`, `balanceAfter`), scaled to its box. */
export const balanceChart = (entries, currency) => {
  const width = 640
  const height = 220
  const pad = { left: 86, right: 16, top: 14, bottom: 26 }
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": `Running balance over ${entries.length} movement(s)`,
    preserveAspectRatio: "xMidYMid meet"
  })
  if (entries.length === 0) return root
  const times = entries.map((e) => Date.parse(e.recordedAt))
  const values = entries.map((e) => e.balanceAfter)
  const t0 = Math.min(...times)
  const t1 = Math.max(...times)
  const max = Math.max(...values, 1)
  const min = Math.min(...values, 0)
  // x by time; movements recorded in the same instant are spread by their order
  const x = (i) =>
    pad.left +
    (t1 === t0 ? (entries.length === 1 ? 0.5 : i / (entries.length - 1)) : (times[i] - t0) / (t1 - t0)) *
      (width - pad.left - pad.right)
  const y = (v) => pad.top + (1 - (v - min) / (max - min)) * (height - pad.top - pad.bottom)
  root.append(svg("line", { class: "axis", x1: pad.left, x2: width - pad.right, y1: y(0), y2: y(0) }))
  root.append(svg("line", { class: "axis", x1: pad.left, x2: pad.left, y1: pad.top, y2: height - pad.bottom }))
  for (const v of [min, max / 2, max]) {
    if (v === min && min === 0 && max === 0) continue
    const label = svg("text", { x: pad.left - 6, y: y(v) + 4, "text-anchor": "end" })
    label.textContent = money(Math.round(v), currency).replace(` ${currency}`, "")
    root.append(label)
  }
  let d = ""
  entries.forEach((e, i) => {
    d +=
      i === 0
        ? `M${x(0).toFixed(1)},${y(e.balanceAfter).toFixed(1)}`
        : ` H${x(i).toFixed(1)} V${y(e.balanceAfter).toFixed(1)}`
  })
  d += ` H${width - pad.right}`
  root.append(svg("path", { class: "area", d: `${d} V${y(Math.max(min, 0))} H${x(0)} Z` }))
  root.append(svg("path", { class: "line", d }))
  // a dot per movement while they can be told apart; past that the line says it all
  if (entries.length <= 60)
    entries.forEach((e, i) => {
      const dot = svg("circle", { cx: x(i), cy: y(e.balanceAfter), r: 4 })
      const title = svg("title", {})
      title.textContent = `${e.type}: ${money(e.balanceAfter, currency)}`
      dot.append(title)
      root.append(dot)
    })
  const start = svg("text", { x: pad.left, y: height - 8 })
  start.textContent = new Date(t0).toLocaleString()
  const end = svg("text", { x: width - pad.right, y: height - 8, "text-anchor": "end" })
  end.textContent = entries.length > 1 ? new Date(t1).toLocaleString() : ""
  root.append(start, end)
  return root
}
