/**
 * The bank's money limits in every currency: the approval threshold (outflows above it need a second person) and the
 * per-deposit limits are stated once, in a reference currency, and converted into each account's currency with a
 * stated table of rates. A threshold of "1000.00 USD" is then 150000 JPY and 307.000 KWD, not 1000 of each: 1,001 JPY
 * needs no approval while 999.999 KWD does.
 *
 * The rates are for limits, not for pricing: round, stated numbers an operator can read and override
 * (`BANK_EXCHANGE_RATES`), never fetched. A currency without a rate gets a limit of 0 (every outflow needs a second
 * person, no deposit is accepted): the safe side, and a visible one.
 */
import * as Money from "./Money.ts"

/**
 * Units of each currency per one unit of the reference currency (USD), as decimal strings. Approximate on purpose:
 * they place limits, they never convert money.
 */
export const defaultRates: Readonly<Record<string, string>> = {
  USD: "1",
  EUR: "0.92",
  GBP: "0.79",
  CHF: "0.88",
  JPY: "150",
  CNY: "7.2",
  CAD: "1.36",
  AUD: "1.52",
  NZD: "1.65",
  SEK: "10.5",
  NOK: "10.7",
  DKK: "6.9",
  PLN: "4",
  CZK: "23",
  HUF: "360",
  INR: "83",
  KRW: "1350",
  SGD: "1.35",
  HKD: "7.8",
  MXN: "17",
  BRL: "5",
  ZAR: "18.5",
  TRY: "32",
  ILS: "3.7",
  AED: "3.67",
  SAR: "3.75",
  KWD: "0.307",
  BHD: "0.376",
  OMR: "0.385",
  JOD: "0.709",
  TND: "3.1",
  ISK: "138",
  CLP: "940",
  VND: "25000",
  IDR: "15700",
  THB: "36",
  PHP: "56",
  NGN: "1500",
  EGP: "48"
}

/**
 * How the limits are stated: amounts in major units of `referenceCurrency`, and the rates to convert them.
 */
export interface LimitSettings {
  /** The currency the amounts below are written in (default `USD`). */
  readonly referenceCurrency: string
  /** Units of a currency per one unit of the reference currency (see {@link defaultRates}). */
  readonly exchangeRates: Readonly<Record<string, string>>
}

const decimalPattern = /^\s*(\d+)(?:\.(\d+))?\s*$/

/** A non-negative decimal as an integer mantissa and a scale (`"0.307"` is 307 and 3); `undefined` if unreadable. */
const readDecimal = (input: string): { readonly mantissa: bigint; readonly scale: number } | undefined => {
  const match = decimalPattern.exec(input)
  if (match === null) return undefined
  const fraction = match[2] ?? ""
  return { mantissa: BigInt(`${match[1]}${fraction}`), scale: fraction.length }
}

/**
 * `amount` (a decimal in the reference currency's major unit) in minor units of `currency`: multiplied by the
 * currency's rate and rounded down to its minor unit (a limit never grows by rounding). 0 when the currency has no
 * rate or the setting is unreadable (the safe side); at most the largest amount.
 */
export const inCurrency = (amount: string, currency: Money.Currency, settings: LimitSettings): Money.Amount => {
  const rate = currency === settings.referenceCurrency ? "1" : settings.exchangeRates[currency]
  const base = readDecimal(amount)
  const factor = rate === undefined ? undefined : readDecimal(rate)
  if (base === undefined || factor === undefined) return Money.zero
  const places = Money.decimals(currency)
  const minor = (base.mantissa * factor.mantissa * 10n ** BigInt(places)) / 10n ** BigInt(base.scale + factor.scale)
  return Number(minor > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(Number.MAX_SAFE_INTEGER) : minor) as Money.Amount
}

/**
 * Reads `"JPY=150,KWD=0.307"` (the form of `BANK_EXCHANGE_RATES`) into a table; entries that do not read are
 * skipped.
 */
export const parseRates = (input: string): Record<string, string> => {
  const rates: Record<string, string> = {}
  for (const entry of input.split(",")) {
    const [code, rate] = entry.split("=").map((part) => part.trim())
    if (code !== undefined && rate !== undefined && Money.isIsoCurrency(code) && readDecimal(rate) !== undefined) {
      rates[code] = rate
    }
  }
  return rates
}
