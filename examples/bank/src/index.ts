/**
 * The example fintech app on Facta: its domain (money, accounts, transfers and the transfer process).
 *
 * @since 0.1.0
 */

export * as Account from "./domain/Account.ts"
export * as Money from "./domain/Money.ts"
export * as Transfer from "./domain/Transfer.ts"
export * as TransferProcess from "./domain/TransferProcess.ts"
