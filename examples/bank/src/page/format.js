// Formatting amounts, instants and ids. Amounts arrive as integer minor units; the decimals of a currency come from the
// server (`GET /currencies`) and, until it answers, from the runtime's ISO 4217 data (`Intl.NumberFormat`).

const decimalsByCurrency = new Map()

/** Remembers the server's decimals per currency (`[{ code, decimals }]`). */
export const learnCurrencies = (currencies) => {
  for (const currency of currencies ?? []) {
    if (typeof currency?.code === "string" && Number.isInteger(currency.decimals)) {
      decimalsByCurrency.set(currency.code, currency.decimals)
    }
  }
}

/** The decimals of a currency's minor unit: the server's when known, else ISO 4217's as the runtime knows them. */
export const decimalsOf = (currency) => {
  const known = decimalsByCurrency.get(currency)
  if (known !== undefined) return known
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits
  } catch {
    return 2
  }
}

const group = (digits) => digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",")

/**
 * Minor units as a decimal with thousands separators and the currency code: `123456` USD is `1,234.56 USD`. Exact:
 * digits are moved as text, never through floating point. `signed` puts `+` before credits.
 */
export const money = (minor, currency, options) => {
  const places = decimalsOf(currency)
  const negative = minor < 0
  const digits = String(Math.abs(minor)).padStart(places + 1, "0")
  const whole = group(places === 0 ? digits : digits.slice(0, -places))
  const text = places === 0 ? whole : `${whole}.${digits.slice(-places)}`
  const sign = negative ? "−" : options?.signed && minor > 0 ? "+" : ""
  return `${sign}${text} ${currency}`
}

/** An ISO instant as local date and time, with seconds. */
export const when = (iso) => {
  if (!iso) return ""
  const date = new Date(iso)
  return Number.isNaN(date.getTime())
    ? iso
    : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" })
}

/** `AwaitingApproval` as "Awaiting approval". */
export const words = (tag) => tag.replace(/([a-z])([A-Z])/g, "$1 $2").replace(/^./, (c) => c.toUpperCase())

/** An `<input type="datetime-local">` value (local time) as an ISO instant. */
export const localToIso = (value) => (value ? new Date(value).toISOString() : "")

/** An ISO instant as an `<input type="datetime-local">` value with seconds, in local time. */
export const isoToLocal = (iso) => {
  const date = new Date(iso)
  const pad = (n) => String(n).padStart(2, "0")
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
}
