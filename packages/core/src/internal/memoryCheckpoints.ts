import { Clock, DateTime, Duration, Effect, Option } from "effect"
import type { CheckpointStore, Key, Lease, Parked, State, Status } from "../CheckpointStore.ts"
import { isLeaseLost, LeaseLost } from "../CheckpointStore.ts"
import * as Position from "../Position.ts"

interface Row {
  readonly key: Key
  checkpoint: Position.Position
  owner: string | undefined
  fence: number
  expiresAt: number
  state: State
  error: string | undefined
  updatedAt: number
}

const id = (key: Key) => `${key.name}\u0000${key.version}\u0000${key.partition}`

export const make: Effect.Effect<CheckpointStore["Service"]> = Effect.sync(() => {
  const rows = new Map<string, Row>()
  const parked = new Map<string, Parked>()
  const active = new Map<string, number>()
  const claims = new Set<string>()

  const row = (key: Key, now: number): Row => {
    let found = rows.get(id(key))
    if (found === undefined) {
      found = {
        key,
        checkpoint: Position.start,
        owner: undefined,
        fence: 0,
        expiresAt: 0,
        state: "stopped",
        error: undefined,
        updatedAt: now
      }
      rows.set(id(key), found)
    }
    return found
  }

  /** The row, when `lease` still holds it at `now`. */
  const held = (lease: Lease, now: number): Row | LeaseLost => {
    const found = rows.get(id(lease.key))
    return found !== undefined && found.owner === lease.owner && found.fence === lease.fence && found.expiresAt > now
      ? found
      : new LeaseLost({ ...lease.key, owner: lease.owner })
  }

  const withHeld = <A>(lease: Lease, f: (row: Row, now: number) => A) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const found = held(lease, now)
      return isLeaseLost(found) ? Effect.fail(found) : Effect.succeed(f(found, now))
    })

  const acquire: CheckpointStore["Service"]["acquire"] = (key, owner, ttl) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const found = row(key, now)
      const free = found.owner === undefined || found.expiresAt <= now
      if (!free && found.owner !== owner) return Option.none()
      // every acquisition is a new holding, even by the same owner: a lease object from before it is stale
      found.fence += 1
      found.owner = owner
      found.expiresAt = now + Duration.toMillis(ttl)
      found.updatedAt = now
      return Option.some<Lease>({ key, owner, fence: found.fence, checkpoint: found.checkpoint })
    })

  const renew: CheckpointStore["Service"]["renew"] = (lease, ttl) =>
    withHeld(lease, (found, now) => {
      found.expiresAt = now + Duration.toMillis(ttl)
    })

  const release: CheckpointStore["Service"]["release"] = (lease, state, error) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const found = held(lease, now)
      if (isLeaseLost(found)) return
      found.owner = undefined
      found.expiresAt = 0
      found.state = state
      found.error = error
      found.updatedAt = now
    })

  const commit: CheckpointStore["Service"]["commit"] = (lease, from, to, work) =>
    Effect.flatMap(work, (result) =>
      Effect.flatMap(
        withHeld(lease, (found, now) => {
          if (!Position.equals(found.checkpoint, from)) return false
          found.checkpoint = to
          found.updatedAt = now
          return true
        }),
        (moved) => (moved ? Effect.succeed(result) : Effect.fail(new LeaseLost({ ...lease.key, owner: lease.owner })))
      )
    )

  const setState: CheckpointStore["Service"]["setState"] = (lease, state, error) =>
    withHeld(lease, (found, now) => {
      found.state = state
      found.error = error
      found.updatedAt = now
    })

  const status: CheckpointStore["Service"]["status"] = (name) =>
    Effect.map(Clock.currentTimeMillis, (now) =>
      [...rows.values()]
        .filter((r) => r.key.name === name)
        .map(
          (r): Status => ({
            key: r.key,
            checkpoint: r.checkpoint,
            owner: r.owner !== undefined && r.expiresAt > now ? Option.some(r.owner) : Option.none(),
            leaseExpiresAt:
              r.owner !== undefined && r.expiresAt > now
                ? Option.some(DateTime.makeUnsafe(r.expiresAt))
                : Option.none(),
            state: r.state,
            error: Option.fromUndefinedOr(r.error),
            updatedAt: DateTime.makeUnsafe(r.updatedAt)
          })
        )
    )

  return {
    transactional: false,
    acquire,
    renew,
    release,
    commit,
    setState,
    status,
    park: (key, event, error) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        parked.set(`${id(key)}\u0000${event.eventId}`, { key, event, error, parkedAt: DateTime.makeUnsafe(now) })
      }),
    parked: (name) => Effect.sync(() => [...parked.values()].filter((p) => p.key.name === name)),
    unpark: (key, eventId) =>
      Effect.sync(() => {
        parked.delete(`${id(key)}\u0000${eventId}`)
      }),
    claim: (name, key) =>
      Effect.sync(() => {
        const claim = `${name}\u0000${key}`
        if (claims.has(claim)) return false
        claims.add(claim)
        return true
      }),
    unclaim: (name, key) =>
      Effect.sync(() => {
        claims.delete(`${name}\u0000${key}`)
      }),
    activeVersion: (name) => Effect.sync(() => Option.fromUndefinedOr(active.get(name))),
    promote: (name, version) =>
      Effect.sync(() => {
        if ((active.get(name) ?? 0) < version) active.set(name, version)
      })
  }
})
