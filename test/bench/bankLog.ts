/**
 * The rebuild workload's log: the example bank's Account events, generated on the server, and the SQL that checks a
 * rebuilt read model (the bank's `accounts` and `account_entries`) against another.
 *
 * Event `g` (1-based, in log order) belongs to account `(g - 1) % accounts` at version `(g - 1) / accounts + 1`, so the
 * accounts take turns, as many customers' activity interleaves in a bank's log. Version 1 opens the account; later
 * versions are drawn from a hash of `g`: about 38% deposits, 23% withdrawals, 9% fees, 7.5% transfer debits (each
 * settled by the account's next event, `TransferDebitSettled`, which moves no money), 13.5% transfer credits. Debits are
 * at most `largestDebit` and every account opens with `largestDebit` times its number of events, so no balance ever
 * goes below zero (the bank's decider would refuse such a debit).
 */

/** The largest withdrawal, fee or transfer debit, in minor units. */
const largestDebit = 20_000

/** A value in `0 .. 2^32 - 1` drawn from `key` by PostgreSQL's integer hash (stable across runs and servers). */
const draw = (key: string) => `(hashint8(${key})::bigint + 2147483648)`

/**
 * `SELECT g, stream_id, version, type, data` for events `from..to` of a log of `accounts` accounts with about
 * `perAccount` events each, in log order. `data` is what the bank's `EventCodec` encodes (the fields without `_tag`).
 */
export const rows = (from: number, to: number, accounts: number, perAccount: number): string => `
  SELECT g, 'Account-' || account AS stream_id, version, type,
    CASE type
      WHEN 'AccountOpened' THEN jsonb_build_object('owner', 'owner-' || account,
        'currency', (ARRAY['USD', 'EUR', 'GBP'])[account % 3 + 1], 'initialDeposit', ${perAccount * largestDebit})
      WHEN 'MoneyDeposited' THEN jsonb_build_object('amount', 1 + size % 50000, 'reference', 'salary')
      WHEN 'MoneyWithdrawn' THEN jsonb_build_object('amount', 1 + size % ${largestDebit}, 'reference', 'cash machine')
      WHEN 'FeeCharged' THEN jsonb_build_object('amount', 1 + size % 500, 'reason', 'monthly fee')
      WHEN 'AccountDebitedForTransfer' THEN jsonb_build_object('transferId', 'transfer-' || g,
        'amount', 1 + size % ${largestDebit}, 'reference', 'rent')
      WHEN 'AccountCreditedForTransfer' THEN jsonb_build_object('transferId', 'transfer-in-' || g,
        'amount', 1 + size % 50000, 'reference', 'invoice')
      WHEN 'TransferDebitSettled' THEN jsonb_build_object('transferId', 'transfer-' || (g - ${accounts}))
    END AS data
  FROM (
    SELECT g, account, version, size,
      CASE
        WHEN version = 1 THEN 'AccountOpened'
        -- odd versions settle the transfer debit of the version before (debits are drawn at even versions only)
        WHEN version % 2 = 1 AND previous >= 700 AND previous < 850 THEN 'TransferDebitSettled'
        WHEN roll < 350 THEN 'MoneyDeposited'
        WHEN roll < 600 THEN 'MoneyWithdrawn'
        WHEN roll < 700 THEN 'FeeCharged'
        WHEN roll < 850 AND version % 2 = 0 THEN 'AccountDebitedForTransfer'
        WHEN roll < 850 THEN 'MoneyDeposited'
        ELSE 'AccountCreditedForTransfer'
      END AS type
    FROM (
      SELECT g, (g - 1) % ${accounts} AS account, ((g - 1) / ${accounts})::integer + 1 AS version,
        ${draw("g")} % 1000 AS roll, ${draw(`g - ${accounts}`)} % 1000 AS previous, ${draw("-g")} AS size
      FROM generate_series(${from}::bigint, ${to}::bigint) AS g
    ) AS drawn
  ) AS typed
  ORDER BY g`

/** The money an event moves, in SQL over its `type` and `data`: the bank's `Account.signedAmount`. */
export const signedAmount = (type: string, data: string) => `
  CASE ${type}
    WHEN 'AccountOpened' THEN (${data} ->> 'initialDeposit')::bigint
    WHEN 'MoneyDeposited' THEN (${data} ->> 'amount')::bigint
    WHEN 'AccountCreditedForTransfer' THEN (${data} ->> 'amount')::bigint
    WHEN 'TransferDebitReversed' THEN (${data} ->> 'amount')::bigint
    WHEN 'MoneyWithdrawn' THEN -(${data} ->> 'amount')::bigint
    WHEN 'FeeCharged' THEN -(${data} ->> 'amount')::bigint
    WHEN 'AccountDebitedForTransfer' THEN -(${data} ->> 'amount')::bigint
    ELSE 0
  END`

/**
 * What a rebuilt read model is checked by: row counts, sums, and an order-free checksum of every row (the sum of a
 * 64-bit hash of each row's text). `handled` is the sum of the accounts' versions: every event of the log sets its
 * account's version, so it counts the events the read model has taken in.
 */
export interface Fingerprint {
  readonly accounts: string
  readonly handled: string
  readonly balances: string
  readonly accountsHash: string
  readonly entries: string
  readonly balancesAfter: string
  readonly entriesHash: string
}

/**
 * The query of a read model's {@link Fingerprint}. Timestamps are left out (a system that reads no event time writes
 * its own clock), and so are the entries' log positions unless `withPositions` (they are Facta's only in Facta's
 * database).
 */
export const fingerprint = (readModel: string, withPositions: boolean): string => `
  SELECT
    (SELECT count(*) FROM ${readModel}.accounts)::text AS accounts,
    (SELECT coalesce(sum(version), 0) FROM ${readModel}.accounts)::text AS handled,
    (SELECT coalesce(sum(balance), 0) FROM ${readModel}.accounts)::text AS balances,
    (SELECT coalesce(sum(hashtextextended(ROW(account_id, owner, currency, balance, status, version)::text, 0)), 0)
      FROM ${readModel}.accounts)::text AS "accountsHash",
    (SELECT count(*) FROM ${readModel}.account_entries)::text AS entries,
    (SELECT coalesce(sum(balance_after), 0) FROM ${readModel}.account_entries)::text AS "balancesAfter",
    (SELECT coalesce(sum(hashtextextended(ROW(account_id, version, type, amount, balance_after, transfer_id, actor,
        reason, reference, correlation_id${withPositions ? ", position" : ""})::text, 0)), 0)
      FROM ${readModel}.account_entries)::text AS "entriesHash"`

/** The fields in which two fingerprints differ, as `field: this ≠ expected`. */
export const differences = (actual: Fingerprint, expected: Fingerprint): ReadonlyArray<string> =>
  (Object.keys(expected) as Array<keyof Fingerprint>).flatMap((key) =>
    actual[key] === expected[key] ? [] : [`${key}: ${actual[key]} ≠ ${expected[key]}`]
  )
