/**
 * Authentication and authorization: bearer tokens map to actors, and each actor has one role.
 *
 * - `customer`: opens accounts in their own name (with no opening deposit) and touches only accounts they own;
 *   initiates transfers and withdrawals from them. A customer never credits an account: money enters only through a
 *   teller or an admin (see {@link canDeposit}).
 * - `teller`: books deposits into any account, up to the teller deposit limit, and opens accounts for customers (with
 *   an opening deposit up to the same limit).
 * - `approver`: approves or rejects large transfers, withdrawals and fees (never their own requests).
 * - `auditor`: reads.
 * - `admin`: everything, including fees, freezing and unfreezing.
 *
 * One rule for reading an account (summary, history, explanation, as-of, audit trail, waiting outflows): its owner,
 * or any staff role (every role but customer). See {@link canRead}.
 */
import { randomBytes } from "node:crypto"
import { Context, Effect, Layer, Option, Redacted, Schema } from "effect"
import { HttpApiMiddleware, HttpApiSecurity } from "effect/http-api"
import { DepositsByTellersOnly, Forbidden, Unauthorized } from "./Problems.ts"

export const Role = Schema.Literals(["customer", "teller", "approver", "auditor", "admin"])

export type Role = typeof Role.Type

/**
 * Who is calling: a name (what events record as `actor`, and what accounts record as `owner`) and a role.
 */
export const Actor = Schema.Struct({ name: Schema.NonEmptyString, role: Role })

export type Actor = typeof Actor.Type

/**
 * A token handed out to an actor.
 */
export interface IssuedToken {
  readonly token: string
  readonly actor: Actor
}

/**
 * The users of the demo: two customers, a teller, an approver, an auditor and an admin.
 */
export const demoActors: ReadonlyArray<Actor> = [
  { name: "alice", role: "customer" },
  { name: "bob", role: "customer" },
  { name: "tina", role: "teller" },
  { name: "carol", role: "approver" },
  { name: "dave", role: "auditor" },
  { name: "admin", role: "admin" }
]

/**
 * A fresh random token (192 bits, base64url).
 */
export const makeToken = (): string => randomBytes(24).toString("base64url")

/**
 * The token → actor map.
 */
export class Tokens extends Context.Service<
  Tokens,
  {
    /** The actor a token belongs to. */
    readonly resolve: (token: string) => Option.Option<Actor>
    /** Every token with its actor, for the demo to print. */
    readonly issued: ReadonlyArray<IssuedToken>
    /** The token of the actor with this name, if one was issued. */
    readonly tokenOf: (name: string) => Option.Option<string>
  }
>()("@facta/example-bank/api/Tokens") {
  /**
   * Tokens from a list of issued tokens.
   */
  static readonly fromIssued = (issued: ReadonlyArray<IssuedToken>): Tokens["Service"] => {
    const byToken = new Map(issued.map((entry) => [entry.token, entry.actor] as const))
    return Tokens.of({
      resolve: (token) => Option.fromNullishOr(byToken.get(token)),
      issued,
      tokenOf: (name) => Option.fromNullishOr(issued.find((entry) => entry.actor.name === name)?.token)
    })
  }

  /**
   * A layer with exactly these tokens.
   */
  static readonly layer = (issued: ReadonlyArray<IssuedToken>): Layer.Layer<Tokens> =>
    Layer.succeed(Tokens, Tokens.fromIssued(issued))

  /**
   * A random token for each of {@link demoActors}, new each time the layer is built; read them with
   * `Tokens.use((tokens) => Effect.succeed(tokens.issued))` to print them.
   */
  static readonly layerDemo: Layer.Layer<Tokens> = Layer.effect(
    Tokens,
    Effect.sync(() => Tokens.fromIssued(demoActors.map((actor) => ({ token: makeToken(), actor }))))
  )
}

/**
 * The authenticated actor of the current request.
 */
export class CurrentActor extends Context.Service<CurrentActor, Actor>()("@facta/example-bank/api/CurrentActor") {}

/**
 * The bearer-token middleware: resolves the actor or answers 401.
 */
export class Authentication extends HttpApiMiddleware.Service<Authentication, { provides: CurrentActor }>()(
  "@facta/example-bank/api/Authentication",
  { security: { bearer: HttpApiSecurity.bearer }, error: Unauthorized }
) {}

/**
 * The middleware on the {@link Tokens} in context.
 */
export const layerAuthentication: Layer.Layer<Authentication, never, Tokens> = Layer.effect(
  Authentication,
  Effect.gen(function* () {
    const tokens = yield* Tokens
    return Authentication.of({
      bearer: (httpEffect, { credential }) => {
        const token = Redacted.value(credential).trim()
        if (token === "") {
          return Effect.fail(new Unauthorized({ code: "MissingToken", detail: "Send a bearer token" }))
        }
        return Option.match(tokens.resolve(token), {
          onNone: () => Effect.fail(new Unauthorized({ code: "InvalidToken", detail: "Unknown bearer token" })),
          onSome: (actor) => Effect.provideService(httpEffect, CurrentActor, actor)
        })
      }
    })
  })
)

// Policies

const forbidden = (detail: string) => Effect.fail(new Forbidden({ code: "Forbidden", detail }))

/**
 * Fails with 403 unless the actor has one of `roles`.
 */
export const requireRole = (
  actor: Actor,
  roles: ReadonlyArray<Role>,
  action: string
): Effect.Effect<void, Forbidden> =>
  roles.includes(actor.role) ? Effect.void : forbidden(`A ${actor.role} may not ${action}`)

/**
 * The read rule, the same for every read route of an account (summary, history, explanation, as-of, audit trail,
 * waiting outflows): its owner, or any staff role (every role but customer). Staff who review or book an account's
 * money need to see what they act on; a customer sees only their own accounts.
 */
export const canRead = (actor: Actor, owner: string): boolean => actor.role !== "customer" || actor.name === owner

/**
 * Fails with 403 unless the actor may read an account owned by `owner` (see {@link canRead}).
 */
export const requireRead = (actor: Actor, owner: string): Effect.Effect<void, Forbidden> =>
  canRead(actor, owner)
    ? Effect.void
    : Effect.fail(
        new Forbidden({
          code: "ReadOwnAccountsOnly",
          detail: `Read rule: a customer reads only their own accounts, and ${actor.name} does not own this one`
        })
      )

/**
 * The deposit rule: money enters an account only through a teller or an admin, who book deposits (and opening
 * deposits) up to the teller deposit limit. A customer never credits an account, not even their own: a deposit is a
 * teller's or an outside source's event, so that nobody can credit themselves money by repeating small deposits.
 */
export const canDeposit = (actor: Actor): boolean => actor.role === "teller" || actor.role === "admin"

/**
 * Fails with a 403 `DepositsByTellersOnly` problem unless the actor may book a deposit (see {@link canDeposit}):
 * `kind` says whether it is a deposit or the opening deposit of a new account.
 */
export const requireDeposit = (
  actor: Actor,
  kind: "deposit" | "opening" = "deposit"
): Effect.Effect<void, DepositsByTellersOnly> => {
  if (canDeposit(actor)) return Effect.void
  const rule = "Deposit rule: money enters an account only through a teller or an admin"
  const detail =
    actor.role !== "customer"
      ? `${rule}; an ${actor.role} does not book deposits`
      : kind === "opening"
        ? `${rule}; a customer opens an account with no initial deposit, and a teller books the money`
        : `${rule}; a customer may not deposit, not even into their own account`
  return Effect.fail(new DepositsByTellersOnly({ code: "DepositsByTellersOnly", detail }))
}

/**
 * Fails with 403 unless the actor may review (approve or reject) a large outflow: an approver or an admin. That the
 * reviewer is not the requester is the domain's four-eyes rule.
 */
export const requireReview = (actor: Actor, what: string): Effect.Effect<void, Forbidden> =>
  requireRole(actor, ["approver", "admin"], `review ${what}`)

/**
 * Fails with 403 unless the actor may move the account's own money (withdraw, close, transfer from it): its owner (a
 * customer) or an admin. Deposits have their own rule ({@link requireDeposit}).
 */
export const requireOperate = (actor: Actor, owner: string, action: string): Effect.Effect<void, Forbidden> => {
  if (actor.role === "admin") return Effect.void
  if (actor.role === "customer") {
    return actor.name === owner ? Effect.void : forbidden(`${actor.name} does not own this account`)
  }
  return forbidden(`A ${actor.role} may not ${action}`)
}
