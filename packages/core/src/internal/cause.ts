import { Cause } from "effect"

/** A failure as one readable line (or a pretty cause), for messages, logs and parked events. */
export const describe = (cause: unknown): string =>
  Cause.isCause(cause) ? Cause.pretty(cause) : cause instanceof Error ? cause.message : String(cause)
