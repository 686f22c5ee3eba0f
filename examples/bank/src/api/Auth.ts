/**
 * Authentication and authorization: bearer tokens map to actors, and each actor has one role.
 *
 * - `customer`: opens accounts in their own name and touches only accounts they own; initiates transfers from them.
 * - `approver`: approves or rejects transfers (never their own) and reads accounts and transfers.
 * - `auditor`: reads everything, including the audit trail, explanations and as-of views of any account.
 * - `admin`: everything, including fees, freezing and unfreezing.
 */
import { randomBytes } from "node:crypto"
import { Context, Effect, Layer, Option, Redacted, Schema } from "effect"
import { HttpApiMiddleware, HttpApiSecurity } from "effect/http-api"
import { Forbidden, Unauthorized } from "./Problems.ts"

export const Role = Schema.Literals(["customer", "approver", "auditor", "admin"])

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
 * The users of the demo: two customers, an approver, an auditor and an admin.
 */
export const demoActors: ReadonlyArray<Actor> = [
  { name: "alice", role: "customer" },
  { name: "bob", role: "customer" },
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
 * Whether the actor may read the account (its summary and history): its owner, or any role but customer.
 */
export const canRead = (actor: Actor, owner: string): boolean => actor.role !== "customer" || actor.name === owner

/**
 * Fails with 403 unless the actor may read an account owned by `owner`.
 */
export const requireRead = (actor: Actor, owner: string): Effect.Effect<void, Forbidden> =>
  canRead(actor, owner) ? Effect.void : forbidden(`${actor.name} does not own this account`)

/**
 * Fails with 403 unless the actor may read the account's explanation and as-of views: its owner, an auditor or an
 * admin.
 */
export const requireInspect = (actor: Actor, owner: string): Effect.Effect<void, Forbidden> =>
  actor.role === "auditor" || actor.role === "admin" || (actor.role === "customer" && actor.name === owner)
    ? Effect.void
    : forbidden(`A ${actor.role} may not inspect this account`)

/**
 * Fails with 403 unless the actor may move the account's own money (deposit, withdraw, close, transfer from it): its
 * owner (a customer) or an admin.
 */
export const requireOperate = (actor: Actor, owner: string, action: string): Effect.Effect<void, Forbidden> => {
  if (actor.role === "admin") return Effect.void
  if (actor.role === "customer") {
    return actor.name === owner ? Effect.void : forbidden(`${actor.name} does not own this account`)
  }
  return forbidden(`A ${actor.role} may not ${action}`)
}
