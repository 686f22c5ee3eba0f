/**
 * The example fintech app on Facta: its domain (money, accounts, transfers) and the transfer process that drives
 * transfers through the accounts.
 */

export * as TransferProcess from "./app/TransferProcess.ts"
export * as Account from "./domain/Account.ts"
export * as Money from "./domain/Money.ts"
export * as Transfer from "./domain/Transfer.ts"
