/**
 * The risk watch's two rules, pure: which requested transfers it flags, and why. Both read only the public
 * `TransferRequested` fact (`integration/TransferFacts.ts`), never the bank's internals.
 *
 * 1. **Large** (`large`): an amount at or above the currency's threshold ({@link defaultLargeThresholds}: 2,500.00
 *    USD, EUR, CHF; 2,000.00 GBP; 400,000 JPY; a currency without a threshold is not checked by this rule).
 * 2. **Just below the approval threshold, again and again** (`near-threshold`): a transfer that did not need an
 *    approval but comes within 80% of its approval threshold is *near* it; a near transfer is flagged when its
 *    account requested at least two other near transfers in the 24 hours before it. Splitting one large payment into
 *    several just under the limit is the classic way around a four-eyes rule.
 *
 * Times are the bank's request times, never the watch's clock, and both rules only ever add flags as facts arrive, so
 * the flags do not depend on the order the broker delivers transfers in, nor on when the watch reads them: a replay
 * gives the same flags.
 */
import { Duration } from "effect"

/** A rule's name, as the flags record it. */
export type Rule = "large" | "near-threshold"

/**
 * The rules' settings.
 */
export interface Settings {
  /** The large-transfer threshold per currency, as decimal strings in the major unit. */
  readonly largeThresholds: Readonly<Record<string, string>>
  /** A transfer at or above this share of its approval threshold (in percent) is near it. */
  readonly nearPercent: number
  /** How many near transfers (this one included) within the window flag it. */
  readonly nearCount: number
  readonly nearWindow: Duration.Duration
}

/** The large-transfer thresholds when none are configured. */
export const defaultLargeThresholds: Readonly<Record<string, string>> = {
  USD: "2500.00",
  EUR: "2500.00",
  CHF: "2500.00",
  GBP: "2000.00",
  JPY: "400000"
}

/** The settings of the module's description. */
export const defaults: Settings = {
  largeThresholds: defaultLargeThresholds,
  nearPercent: 80,
  nearCount: 3,
  nearWindow: Duration.hours(24)
}

/** Decimal places every amount is compared at (the public schema allows at most four). */
const scale = 4

/**
 * A decimal string (`"1500.5"`) as an integer of 10^-4 units (`15005000n`), so that amounts of any currency compare
 * exactly; `undefined` when it is not a plain non-negative decimal.
 */
export const units = (decimal: string): bigint | undefined => {
  const match = /^(\d+)(?:\.(\d{1,4}))?$/.exec(decimal)
  if (match === null) return undefined
  return BigInt(`${match[1]}${(match[2] ?? "").padEnd(scale, "0")}`)
}

/**
 * Parses `RISK_LARGE_THRESHOLDS` (`"USD=2500.00,EUR=2500.00"`); `undefined` when an entry is malformed.
 */
export const parseThresholds = (text: string): Readonly<Record<string, string>> | undefined => {
  const out: Record<string, string> = {}
  for (const entry of text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")) {
    const [currency, amount] = entry.split("=").map((s) => s.trim())
    if (currency === undefined || !/^[A-Z]{3}$/.test(currency) || amount === undefined || units(amount) === undefined)
      return undefined
    out[currency] = amount
  }
  return out
}

/**
 * What the rules need of a request.
 */
export interface Request {
  readonly fromAccount: string
  readonly amount: string
  readonly currency: string
  readonly requiresApproval: boolean
  readonly approvalThreshold: string
}

/**
 * Why a request is large, or `undefined` when it is not (or its currency has no threshold).
 */
export const large = (settings: Settings, request: Request): string | undefined => {
  const threshold = settings.largeThresholds[request.currency]
  const amount = units(request.amount)
  const limit = threshold === undefined ? undefined : units(threshold)
  if (amount === undefined || limit === undefined || amount < limit) return undefined
  return `${request.amount} ${request.currency} is at or above the large-transfer threshold of ${threshold} ${request.currency}`
}

/**
 * Whether a request is near its approval threshold without needing an approval (the `near-threshold` rule's
 * candidates).
 */
export const isNearThreshold = (settings: Settings, request: Request): boolean => {
  if (request.requiresApproval) return false
  const amount = units(request.amount)
  const threshold = units(request.approvalThreshold)
  if (amount === undefined || threshold === undefined || threshold === 0n) return false
  return amount * 100n >= threshold * BigInt(settings.nearPercent)
}

/**
 * The reason of a `near-threshold` flag: `count` near transfers of `account` within the window.
 */
export const nearReason = (settings: Settings, account: string, count: number): string =>
  `${count} transfers from ${account} within ${Duration.toHours(settings.nearWindow)} hours, each at least ` +
  `${settings.nearPercent}% of the approval threshold without reaching it`
