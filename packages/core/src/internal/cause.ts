import { Cause } from "effect"

const json = (value: unknown): string | undefined => {
  try {
    return JSON.stringify(value)
  } catch {
    return undefined
  }
}

/** A failure as readable text (a pretty cause, an error's message, or the value), for messages, logs and parked events. */
export const describe = (cause: unknown): string => {
  if (Cause.isCause(cause)) return Cause.pretty(cause)
  if (typeof cause === "string") return cause
  if (typeof cause === "object" && cause !== null) {
    const { message, cause: inner } = cause as { message?: unknown; cause?: unknown }
    const tag = (cause as { _tag?: unknown })._tag
    // a tagged error declared without a message says what it is through its tag and fields
    const text =
      typeof message === "string" && message !== ""
        ? message
        : `${typeof tag === "string" ? tag : ((cause as object).constructor?.name ?? "Error")} ${json(cause) ?? ""}`.trim()
    return inner === undefined || inner === cause ? text : `${text} (${describe(inner)})`
  }
  return json(cause) ?? Object.prototype.toString.call(cause)
}
