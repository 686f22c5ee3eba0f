/**
 * Exact money: amounts are integers of a currency's minor unit (cents for USD, yen for JPY, fils for KWD), never
 * floats. Parsing reads decimal strings digit by digit with `BigInt`, and formatting writes the minor units back as
 * a decimal, so `"0.1" + "0.2"` is exactly `"0.30"`.
 */
import { Effect, Schema } from "effect"

/**
 * The ISO 4217 codes this runtime knows (`Intl.supportedValuesOf("currency")`): the list comes with the ICU data of
 * the runtime rather than from a hand-kept table, so it changes only with the runtime. Codes such as `XYZ` are not in
 * it.
 */
export const isoCurrencies: ReadonlySet<string> = new Set(Intl.supportedValuesOf("currency"))

/**
 * Whether `code` is an ISO 4217 currency code the runtime knows.
 */
export const isIsoCurrency = (code: string): boolean => isoCurrencies.has(code)

/**
 * An ISO 4217 currency code (`USD`, `EUR`, `JPY`): three upper-case letters, and one of {@link isoCurrencies}.
 */
export const Currency = Schema.String.check(
  Schema.isPattern(/^[A-Z]{3}$/, { message: "a currency is an ISO 4217 code of three upper-case letters" }),
  Schema.makeFilter((code: string) => isIsoCurrency(code) || `${code} is not an ISO 4217 currency code`)
).pipe(Schema.brand("Currency"))

export type Currency = typeof Currency.Type

/**
 * An amount of money in minor units: a non-negative safe integer.
 */
export const Amount = Schema.Int.check(
  Schema.isGreaterThanOrEqualTo(0),
  Schema.isLessThanOrEqualTo(Number.MAX_SAFE_INTEGER)
).pipe(Schema.brand("Amount"))

export type Amount = typeof Amount.Type

/**
 * An amount that moves money: a positive {@link Amount} (the same branded type, with one more check).
 */
export const PositiveAmount = Amount.check(Schema.isGreaterThan(0))

/**
 * An amount together with its currency.
 */
export const Money = Schema.Struct({ amount: Amount, currency: Currency })

export type Money = typeof Money.Type

/**
 * Zero minor units.
 */
export const zero: Amount = Amount.make(0)

/**
 * Whether `n` is a valid amount (a non-negative safe integer); a type guard for plain numbers.
 */
export const isAmount = (n: number): n is Amount => Number.isSafeInteger(n) && n >= 0

/**
 * Whether `n` is a valid amount that moves money (a positive safe integer).
 */
export const isPositiveAmount = (n: number): n is Amount => Number.isSafeInteger(n) && n > 0

/**
 * `a + b`, or `undefined` when the sum is not a safe integer.
 */
export const add = (a: Amount, b: Amount): Amount | undefined => {
  const sum = a + b
  return Number.isSafeInteger(sum) ? (sum as Amount) : undefined
}

/**
 * `a - b`, or `undefined` when the difference would be negative.
 */
export const subtract = (a: Amount, b: Amount): Amount | undefined => (b > a ? undefined : ((a - b) as Amount))

/** Symbols that identify a currency on their own; other currencies are written with their code. */
const symbols: Readonly<Record<string, string>> = {
  USD: "$",
  EUR: "€",
  GBP: "£",
  JPY: "¥",
  INR: "₹",
  KRW: "₩",
  ILS: "₪",
  NGN: "₦",
  VND: "₫"
}

/**
 * How many decimals the currency's minor unit has: 2 for USD and EUR, 0 for JPY, 3 for KWD. The runtime's `Intl`
 * data says (CLDR, which follows ISO 4217 except where a currency's smallest coin is what is used: `IDR`, `HUF` and
 * `COP` have 0 there), so the bank keeps no table of its own.
 *
 * @example
 * ```ts
 * import { Money } from "@facta/example-bank"
 *
 * Money.decimals(Money.Currency.make("JPY")) // 0
 * ```
 */
export const decimals = (currency: Currency): number => {
  let places = decimalsCache.get(currency)
  if (places === undefined) {
    places = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits ?? 2
    decimalsCache.set(currency, places)
  }
  return places
}

// `Intl.NumberFormat` is slow to build; the minor units of a currency never change while the process runs
const decimalsCache = new Map<string, number>()

/**
 * The amount as a plain decimal, with exactly the currency's number of decimals: 23750 USD is `"237.50"`.
 */
export const toDecimalString = (amount: Amount, currency: Currency): string => {
  const places = decimals(currency)
  const digits = BigInt(amount).toString()
  if (places === 0) return digits
  const padded = digits.padStart(places + 1, "0")
  return `${padded.slice(0, -places)}.${padded.slice(-places)}`
}

/**
 * The amount with its currency code: 23750 USD is `"237.50 USD"`.
 */
export const formatWithCode = (amount: Amount, currency: Currency): string =>
  `${toDecimalString(amount, currency)} ${currency}`

/**
 * The amount as people read it: with the currency's symbol when it has a well-known one (23750 USD is `"$237.50"`,
 * 1200 JPY is `"¥1200"`), otherwise as {@link formatWithCode} (`"237.50 CHF"`). No grouping separators, so the
 * output does not depend on a locale.
 */
export const format = (amount: Amount, currency: Currency): string => {
  const symbol = symbols[currency]
  return symbol === undefined ? formatWithCode(amount, currency) : `${symbol}${toDecimalString(amount, currency)}`
}

/**
 * A string that is not a plain non-negative decimal number (`"12"`, `"12.5"`, `".5"`, `"0.05"`).
 */
export class InvalidMoneyFormat extends Schema.TaggedError<InvalidMoneyFormat>()("InvalidMoneyFormat", {
  input: Schema.String
}) {
  override get message() {
    return `${JSON.stringify(this.input)} is not an amount: write a non-negative decimal such as "237.50"`
  }
}

/**
 * A decimal with more places than the currency's minor unit can hold (`"1.234"` USD).
 */
export class TooManyDecimals extends Schema.TaggedError<TooManyDecimals>()("TooManyDecimals", {
  input: Schema.String,
  currency: Schema.String,
  allowed: Schema.Int
}) {
  override get message() {
    return `${JSON.stringify(this.input)} has more than ${this.allowed} decimal(s), the precision of ${this.currency}`
  }
}

/**
 * A decimal whose minor units exceed the largest safe integer.
 */
export class AmountTooLarge extends Schema.TaggedError<AmountTooLarge>()("AmountTooLarge", {
  input: Schema.String,
  currency: Schema.String
}) {
  override get message() {
    return `${JSON.stringify(this.input)} ${this.currency} is too large an amount`
  }
}

/**
 * Every way {@link parse} can refuse its input.
 */
export type ParseError = InvalidMoneyFormat | TooManyDecimals | AmountTooLarge

const decimalPattern = /^(\d*)(?:\.(\d*))?$/

/**
 * Reads a decimal string as minor units of `currency`, without floating point: `"237.5"` USD is 23750. Surrounding
 * whitespace is ignored; signs, exponents, grouping separators and more decimals than the currency has are refused
 * with a typed error. Trailing zeros beyond the precision are accepted (`"1.500"` USD is 150).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Money } from "@facta/example-bank"
 *
 * const cents = Effect.runSync(Money.parse("237.5", Money.Currency.make("USD"))) // 23750
 * ```
 */
export const parse = (input: string, currency: Currency): Effect.Effect<Amount, ParseError> => {
  const trimmed = input.trim()
  const match = decimalPattern.exec(trimmed)
  const whole = match?.[1] ?? ""
  const fraction = match?.[2] ?? ""
  if (match === null || (whole === "" && fraction === "")) return Effect.fail(new InvalidMoneyFormat({ input }))
  const places = decimals(currency)
  const significant = fraction.replace(/0+$/, "")
  if (significant.length > places) {
    return Effect.fail(new TooManyDecimals({ input, currency, allowed: places }))
  }
  const minor =
    BigInt(whole === "" ? "0" : whole) * 10n ** BigInt(places) + BigInt(significant.padEnd(places, "0") || "0")
  if (minor > BigInt(Number.MAX_SAFE_INTEGER)) return Effect.fail(new AmountTooLarge({ input, currency }))
  return Effect.succeed(Number(minor) as Amount)
}
