import { inspect } from "node:util"

const inspectOptions = { depth: 8, breakLength: Number.POSITIVE_INFINITY, compact: true } as const

/** One-line rendering of a value for failure messages; tagged errors show as `Tag { fields }`. */
export const show = (value: unknown): string => {
  if (!(value instanceof Error)) return inspect(value, inspectOptions)
  const { _tag, ...fields } = value as Error & { readonly _tag?: unknown }
  if (typeof _tag !== "string") return `${value.name}: ${value.message}`
  return Object.keys(fields).length === 0 ? _tag : `${_tag} ${inspect(fields, inspectOptions)}`
}
