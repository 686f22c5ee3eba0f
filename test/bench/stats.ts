/** Small statistics and formatting helpers for the benchmark's report. */

export interface Summary {
  readonly median: number
  readonly p99: number
  readonly min: number
  readonly max: number
  readonly samples: number
}

const sortedCopy = (values: ReadonlyArray<number>) => [...values].sort((a, b) => a - b)

/** The nearest-rank percentile (`q` in 0..1) of sorted values. */
const rank = (sorted: ReadonlyArray<number>, q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!

export const summarize = (values: ReadonlyArray<number>): Summary => {
  if (values.length === 0) return { median: Number.NaN, p99: Number.NaN, min: Number.NaN, max: Number.NaN, samples: 0 }
  const sorted = sortedCopy(values)
  const mid = Math.floor(sorted.length / 2)
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
  return { median, p99: rank(sorted, 0.99), min: sorted[0]!, max: sorted[sorted.length - 1]!, samples: sorted.length }
}

/** A rate such as `12,345`. */
export const rate = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "n/a")

/** Milliseconds with a precision that suits their size. */
export const ms = (n: number): string =>
  !Number.isFinite(n) ? "n/a" : n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0)

export const rateSpread = (s: Summary): string => (s.samples === 0 ? "n/a" : `${rate(s.min)}–${rate(s.max)}`)

export const msSpread = (s: Summary): string => (s.samples === 0 ? "n/a" : `${ms(s.min)}–${ms(s.max)}`)

export const ratio = (a: number, b: number): string => {
  if (!(b > 0) || !Number.isFinite(a)) return "n/a"
  const r = a / b
  return `${r >= 0.1 ? r.toFixed(2) : r.toPrecision(2)}x`
}

/**
 * Ratios of two systems' samples taken side by side (round `i` of one against round `i` of the other): their median
 * and range. Drift between rounds cancels out of each ratio, so this spread is the comparison's own.
 */
export const pairedRatios = (a: ReadonlyArray<number>, b: ReadonlyArray<number>): string => {
  const ratios = a.flatMap((x, i) => (b[i]! > 0 && Number.isFinite(x) ? [x / b[i]!] : []))
  if (ratios.length === 0) return "n/a"
  const s = summarize(ratios)
  return `${ratio(s.median, 1)} (${ratio(s.min, 1)}–${ratio(s.max, 1)})`
}

/** Renders a markdown table with right-aligned numeric columns (every column but the first). */
export const markdownTable = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ")} |`
  const rule = `|${widths.map((w, i) => (i === 0 ? `${"-".repeat(w + 2)}` : `${"-".repeat(w + 1)}:`)).join("|")}|`
  return [line(header), rule, ...rows.map(line)].join("\n")
}
