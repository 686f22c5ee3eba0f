/**
 * The seed's plan: which accounts the demo bank has and the operations it goes through, as plain data from a seeded
 * random generator. Pure: no services, no I/O, the same inputs always give the same plan (`Seed.run` carries it out).
 */
import * as Limits from "../domain/Limits.ts"
import * as Money from "../domain/Money.ts"

/** The API's default limits (`Settings.defaults`): stated in USD, converted with the default rates. */
const limits: Limits.LimitSettings = { referenceCurrency: "USD", exchangeRates: Limits.defaultRates }

/**
 * Outflows above this amount of `currency` (the equivalent of $1000.00) wait for a second person's approval.
 */
export const approvalThresholdIn = (currency: Money.Currency): Money.Amount =>
  Limits.inCurrency("1000.00", currency, limits)

/**
 * The approval threshold of USD accounts ($1000.00).
 */
export const approvalThreshold: Money.Amount = approvalThresholdIn(Money.Currency.make("USD"))

/**
 * The largest deposit the seed's teller books in `currency` (the equivalent of $50,000.00, the teller limit).
 */
export const depositLimitIn = (currency: Money.Currency): Money.Amount =>
  Limits.inCurrency("50000.00", currency, limits)

/**
 * The approver of the seeded transfers.
 */
export const approver = "carol"

const USD = Money.Currency.make("USD")
const EUR = Money.Currency.make("EUR")

export interface AccountPlan {
  readonly id: string
  readonly owner: string
  readonly currency: Money.Currency
  /** Minor units. */
  readonly initialDeposit: number
}

/**
 * The seeded accounts. `oscar-old` is opened empty and closed at once: the transfer to it is compensated.
 */
export const accounts: ReadonlyArray<AccountPlan> = [
  { id: "alice-checking", owner: "alice", currency: USD, initialDeposit: 500_000 },
  { id: "alice-savings", owner: "alice", currency: USD, initialDeposit: 2_000_000 },
  { id: "bob-checking", owner: "bob", currency: USD, initialDeposit: 250_000 },
  { id: "bob-euro", owner: "bob", currency: EUR, initialDeposit: 300_000 },
  { id: "erin-checking", owner: "erin", currency: USD, initialDeposit: 400_000 },
  { id: "erin-euro", owner: "erin", currency: EUR, initialDeposit: 150_000 },
  { id: "frank-checking", owner: "frank", currency: USD, initialDeposit: 80_000 },
  { id: "grace-business", owner: "grace", currency: USD, initialDeposit: 1_500_000 },
  { id: "heidi-checking", owner: "heidi", currency: USD, initialDeposit: 120_000 },
  { id: "ivan-checking", owner: "ivan", currency: USD, initialDeposit: 30_000 },
  { id: "judy-checking", owner: "judy", currency: USD, initialDeposit: 300_000 },
  { id: "ken-checking", owner: "ken", currency: USD, initialDeposit: 180_000 },
  { id: "laura-checking", owner: "laura", currency: USD, initialDeposit: 220_000 },
  { id: "mike-checking", owner: "mike", currency: USD, initialDeposit: 90_000 },
  { id: "nina-checking", owner: "nina", currency: USD, initialDeposit: 260_000 },
  { id: "peggy-business", owner: "peggy", currency: USD, initialDeposit: 900_000 },
  { id: "trent-checking", owner: "trent", currency: USD, initialDeposit: 140_000 },
  { id: "victor-checking", owner: "victor", currency: USD, initialDeposit: 75_000 },
  { id: "walter-euro", owner: "walter", currency: EUR, initialDeposit: 200_000 },
  { id: "oscar-old", owner: "oscar", currency: USD, initialDeposit: 0 }
]

/**
 * The account that is closed before a transfer is sent to it.
 */
export const closedAccount = "oscar-old"

/**
 * One operation of the plan. Amounts are minor units.
 */
export type Operation =
  | { readonly _tag: "Open"; readonly account: AccountPlan }
  | { readonly _tag: "Close"; readonly account: string; readonly reason: string }
  | {
      readonly _tag: "Deposit" | "Withdraw" | "Fee"
      readonly account: string
      readonly currency: Money.Currency
      readonly amount: number
      readonly reference: string
    }
  | {
      readonly _tag: "Transfer"
      readonly transferId: string
      readonly from: string
      readonly to: string
      readonly currency: Money.Currency
      readonly amount: number
      readonly reference: string
      readonly initiatedBy: string
      /** What the approver does with a transfer above the threshold; `"leave"` keeps it waiting. */
      readonly review: "approve" | "reject" | "leave" | undefined
    }

/** mulberry32: a small, fast, seeded generator of floats in [0, 1). */
const generator = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const references = ["rent", "groceries", "dinner", "concert tickets", "utilities", "invoice", "gift", "car repair"]

/**
 * The operations for a seed number and a number of transfers: the same inputs always give the same plan.
 */
export const plan = (options: { readonly seed: number; readonly transfers: number }): ReadonlyArray<Operation> => {
  const random = generator(options.seed)
  const int = (min: number, max: number) => min + Math.floor(random() * (max - min + 1))
  const pick = <A>(items: ReadonlyArray<A>): A => items[Math.floor(random() * items.length)]!
  const open = accounts.filter((a) => a.id !== closedAccount)
  const usd = open.filter((a) => a.currency === USD)
  const eur = open.filter((a) => a.currency === EUR)
  const ops: Array<Operation> = accounts.map((account) => ({ _tag: "Open", account }))
  ops.push({ _tag: "Close", account: closedAccount, reason: "customer moved abroad" })
  const total = Math.max(0, Math.floor(options.transfers))
  const large: Array<number> = []
  for (let i = 0; i < total; i++) {
    const roll = random()
    if (roll < 0.1) {
      const account = pick(open)
      ops.push({
        _tag: "Deposit",
        account: account.id,
        currency: account.currency,
        amount: int(500, 4_000) * 100,
        reference: pick(["salary", "cash deposit", "refund"])
      })
    } else if (roll < 0.17) {
      const account = pick(open)
      ops.push({
        _tag: "Withdraw",
        account: account.id,
        currency: account.currency,
        amount: int(20, 400) * 100,
        reference: "ATM"
      })
    } else if (roll < 0.2) {
      const account = pick(open)
      ops.push({
        _tag: "Fee",
        account: account.id,
        currency: account.currency,
        amount: int(100, 1_500),
        reference: "monthly account fee"
      })
    }
    if (i === Math.floor(total / 3)) {
      // a withdrawal above the threshold: it waits for the seed's approver, who approves it
      ops.push({
        _tag: "Withdraw",
        account: "grace-business",
        currency: USD,
        amount: 250_000,
        reference: "equipment purchase"
      })
    }
    const transferId = `seed-${String(i + 1).padStart(5, "0")}`
    if (i === Math.floor(total / 2)) {
      ops.push({
        _tag: "Transfer",
        transferId,
        from: "alice-checking",
        to: closedAccount,
        currency: USD,
        amount: 15_000,
        reference: "old debt to oscar",
        initiatedBy: "alice",
        review: undefined
      })
      continue
    }
    const pool = random() < 0.1 ? eur : usd
    const from = pick(pool)
    let to = pick(pool)
    while (to.id === from.id) to = pick(pool)
    const isLarge = random() < 0.05
    const amount = isLarge ? int(100_001, 500_000) : int(500, 60_000)
    const threshold = approvalThresholdIn(from.currency)
    if (amount > threshold) large.push(ops.length)
    ops.push({
      _tag: "Transfer",
      transferId,
      from: from.id,
      to: to.id,
      currency: from.currency,
      amount,
      reference: pick(references),
      initiatedBy: from.owner,
      review: amount > threshold ? (random() < 0.1 ? "reject" : "approve") : undefined
    })
  }
  // the last two large transfers stay waiting for an approver, for the demo
  for (const index of large.slice(-2)) {
    const op = ops[index]
    if (op?._tag === "Transfer") ops[index] = { ...op, review: "leave" }
  }
  return ops
}

/** The accounts an operation touches. */
export const accountsOf = (op: Operation): ReadonlyArray<string> => {
  switch (op._tag) {
    case "Open":
      return [op.account.id]
    case "Transfer":
      return [op.from, op.to]
    default:
      return [op.account]
  }
}

/** The indexes of the operations from `start` on that touch no account in common (at most 32). */
export const roundFrom = (ops: ReadonlyArray<Operation>, start: number): ReadonlyArray<number> => {
  const touched = new Set<string>()
  const round: Array<number> = []
  for (let i = start; i < ops.length && round.length < 32; i++) {
    const accounts = accountsOf(ops[i]!)
    if (accounts.some((a) => touched.has(a))) break
    for (const a of accounts) touched.add(a)
    round.push(i)
  }
  return round
}
