import { Cause } from "effect"

/** A failure as readable text (a pretty cause, an error's message, or the value), for messages, logs and parked events. */
export const describe = (cause: unknown): string => {
  if (Cause.isCause(cause)) return Cause.pretty(cause)
  if (typeof cause === "object" && cause !== null && typeof (cause as { message?: unknown }).message === "string") {
    const message = (cause as { message: string }).message
    const inner = (cause as { cause?: unknown }).cause
    return inner === undefined || inner === cause ? message : `${message} (${describe(inner)})`
  }
  try {
    return typeof cause === "string" ? cause : (JSON.stringify(cause) ?? String(cause))
  } catch {
    return Object.prototype.toString.call(cause)
  }
}
