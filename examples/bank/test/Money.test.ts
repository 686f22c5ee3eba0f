import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as Limits from "../src/domain/Limits.ts"
import { Money } from "../src/index.ts"

const USD = Money.Currency.make("USD")
const JPY = Money.Currency.make("JPY")
const KWD = Money.Currency.make("KWD")
const CHF = Money.Currency.make("CHF")
const amount = Money.Amount.make

describe("Money schemas", () => {
  it("accepts ISO 4217 codes and non-negative safe integers only", () => {
    assert.isTrue(Schema.is(Money.Currency)("EUR"))
    for (const bad of ["usd", "US", "USDT", "U$D", "", "XYZ", "ABC"]) {
      assert.isFalse(Schema.is(Money.Currency)(bad), bad)
    }
    assert.isTrue(Schema.is(Money.Amount)(0))
    assert.isTrue(Schema.is(Money.Amount)(Number.MAX_SAFE_INTEGER))
    for (const bad of [-1, 0.5, Number.NaN, Number.MAX_SAFE_INTEGER + 1]) assert.isFalse(Schema.is(Money.Amount)(bad))
    assert.isFalse(Schema.is(Money.PositiveAmount)(0))
    assert.isTrue(Schema.is(Money.PositiveAmount)(1))
  })

  it("adds and subtracts without leaving the safe range or going negative", () => {
    assert.strictEqual(Money.add(amount(1), amount(2)), 3)
    assert.isUndefined(Money.add(amount(Number.MAX_SAFE_INTEGER), amount(1)))
    assert.strictEqual(Money.subtract(amount(5), amount(5)), 0)
    assert.isUndefined(Money.subtract(amount(5), amount(6)))
  })
})

describe("Money formatting", () => {
  it("writes minor units as a decimal with the currency's precision", () => {
    assert.strictEqual(Money.format(amount(23750), USD), "$237.50")
    assert.strictEqual(Money.formatWithCode(amount(23750), USD), "237.50 USD")
    assert.strictEqual(Money.format(amount(5), USD), "$0.05")
    assert.strictEqual(Money.format(amount(0), USD), "$0.00")
    assert.strictEqual(Money.format(amount(1200), JPY), "¥1200")
    assert.strictEqual(Money.format(amount(1234), KWD), "1.234 KWD")
    assert.strictEqual(Money.format(amount(100), CHF), "1.00 CHF")
    assert.strictEqual(Money.toDecimalString(amount(Number.MAX_SAFE_INTEGER), USD), "90071992547409.91")
  })
})

describe("Money parsing", () => {
  it.effect("reads decimal strings exactly", () =>
    Effect.gen(function* () {
      assert.strictEqual(yield* Money.parse("237.5", USD), 23750)
      assert.strictEqual(yield* Money.parse("237.50", USD), 23750)
      assert.strictEqual(yield* Money.parse("237", USD), 23700)
      assert.strictEqual(yield* Money.parse(" 0.05 ", USD), 5)
      assert.strictEqual(yield* Money.parse(".5", USD), 50)
      assert.strictEqual(yield* Money.parse("1.500", USD), 150)
      const tenth = yield* Money.parse("0.1", USD)
      const fifth = yield* Money.parse("0.2", USD)
      assert.strictEqual(Money.toDecimalString(Money.add(tenth, fifth)!, USD), "0.30")
      assert.strictEqual(yield* Money.parse("1200", JPY), 1200)
      assert.strictEqual(yield* Money.parse("1.234", KWD), 1234)
      assert.strictEqual(yield* Money.parse("90071992547409.91", USD), Number.MAX_SAFE_INTEGER)
    })
  )

  it.effect("round-trips with toDecimalString", () =>
    Effect.gen(function* () {
      for (const n of [0, 1, 99, 100, 23750, 1_000_000_07]) {
        assert.strictEqual(yield* Money.parse(Money.toDecimalString(amount(n), USD), USD), n)
      }
    })
  )

  it.effect.each(["", " ", ".", "-1", "+1", "1e3", "1,000.00", "12.3.4", "abc", "0x10", "Infinity", "NaN"])(
    "refuses %j as a malformed amount",
    (input) =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(Money.parse(input, USD))
        assert.deepStrictEqual(error, new Money.InvalidMoneyFormat({ input }))
        assert.include(error.message, "is not an amount")
      })
  )

  it.effect("refuses more decimals than the currency has", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Money.parse("1.234", USD))
      assert.deepStrictEqual(error, new Money.TooManyDecimals({ input: "1.234", currency: "USD", allowed: 2 }))
      assert.strictEqual(error.message, '"1.234" has more than 2 decimal(s), the precision of USD')
      assert.strictEqual((yield* Effect.flip(Money.parse("1.5", JPY)))._tag, "TooManyDecimals")
    })
  )

  it.effect("refuses amounts past the largest safe integer", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Money.parse("90071992547409.92", USD))
      assert.deepStrictEqual(error, new Money.AmountTooLarge({ input: "90071992547409.92", currency: "USD" }))
    })
  )
})

describe("Money: ISO 4217 from the runtime", () => {
  it("takes the list of codes and their minor units from Intl, with no table of its own", () => {
    assert.deepStrictEqual([...Money.isoCurrencies].sort(), [...Intl.supportedValuesOf("currency")].sort())
    assert.isFalse(Money.isIsoCurrency("XYZ"))
    for (const code of ["USD", "EUR", "JPY", "KWD", "BHD", "ISK"]) {
      const expected = new Intl.NumberFormat("en", { style: "currency", currency: code }).resolvedOptions()
        .maximumFractionDigits
      assert.strictEqual(Money.decimals(Money.Currency.make(code)), expected, code)
    }
    assert.deepStrictEqual([USD, JPY, KWD].map(Money.decimals), [2, 0, 3])
    const refused = Schema.decodeUnknownExit(Money.Currency)("XYZ")
    assert.isTrue(refused._tag === "Failure")
    assert.include(String(refused), "XYZ is not an ISO 4217 currency code")
  })
})

describe("Limits: one threshold, converted per currency", () => {
  const settings = { referenceCurrency: "USD", exchangeRates: Limits.defaultRates }

  it("converts the reference amount with the stated rate and rounds down to the minor unit", () => {
    assert.strictEqual(Limits.inCurrency("1000.00", USD, settings), 100_000)
    assert.strictEqual(Limits.inCurrency("1000.00", JPY, settings), 150_000, "150000 JPY")
    assert.strictEqual(Limits.inCurrency("1000.00", KWD, settings), 307_000, "307.000 KWD")
    assert.strictEqual(Limits.inCurrency("1000.00", CHF, settings), 88_000)
    assert.strictEqual(Limits.inCurrency("0.01", JPY, settings), 1)
    assert.strictEqual(Limits.inCurrency("0.001", JPY, settings), 0, "rounded down, never up")
    // 1,001 JPY stays under the threshold, 999.999 KWD is far above it
    assert.isAtMost(1_001, Limits.inCurrency("1000.00", JPY, settings))
    assert.isAbove(999_999, Limits.inCurrency("1000.00", KWD, settings))
  })

  it("a currency without a rate, or an unreadable setting, gets a limit of 0 (the safe side)", () => {
    assert.strictEqual(Limits.inCurrency("1000.00", Money.Currency.make("MNT"), settings), 0)
    assert.strictEqual(Limits.inCurrency("a lot", USD, settings), 0)
    assert.deepStrictEqual(Limits.parseRates("JPY=140, KWD=0.3,XYZ=1,EUR=abc"), { JPY: "140", KWD: "0.3" })
  })
})
