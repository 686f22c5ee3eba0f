/**
 * Which message broker carries the bank's transfer facts, if any: NATS JetStream when `NATS_URL` is set, else Redis
 * Streams when `REDIS_URL` is set, else none (the bank then publishes nothing and the risk watch is off). The bank's
 * relay and the risk watch read the same settings, so that they meet on the same stream.
 *
 * | variable             | meaning                                                              | default          |
 * | -------------------- | -------------------------------------------------------------------- | ---------------- |
 * | `NATS_URL`           | the NATS server (`nats://127.0.0.1:4222` or `127.0.0.1:4222`)        | none             |
 * | `REDIS_URL`          | the Redis server (`redis://127.0.0.1:6379`), when `NATS_URL` is not set | none          |
 * | `BANK_EVENTS_PREFIX` | the subject prefix (NATS: `<prefix>.Transfer.<type>`) or key prefix (Redis: `<prefix>:Transfer`) | `bank` |
 * | `BANK_NATS_STREAM`   | the JetStream stream that stores the subjects `<prefix>.>`           | `BANK_TRANSFERS` |
 */
import { Config, Effect, Option } from "effect"
import { channels } from "./TransferFacts.ts"

/**
 * A configured broker.
 */
export type Broker =
  | { readonly _tag: "Nats"; readonly servers: string; readonly stream: string; readonly prefix: string }
  | { readonly _tag: "Redis"; readonly url: string; readonly prefix: string }

/** The Redis stream key the transfer facts go to (`<prefix>:Transfer`). */
export const redisKey = (prefix: string): string => `${prefix}:Transfer`

/** The NATS subjects of the transfer facts (`<prefix>.Transfer.>`). */
export const natsSubjects = (prefix: string): string => `${prefix}.Transfer.>`

/** A variable that is unset or empty is no broker (`NATS_URL= pnpm demo` runs without one). */
const optional = (name: string) =>
  Config.option(Config.String(name)).pipe(Config.map(Option.filter((value) => value.trim() !== "")))

/**
 * The broker from the environment (see the module's table), `None` when neither `NATS_URL` nor `REDIS_URL` is set.
 */
export const fromConfig: Effect.Effect<Option.Option<Broker>, Config.ConfigError> = Effect.gen(function* () {
  const nats = yield* optional("NATS_URL")
  const redis = yield* optional("REDIS_URL")
  const prefix = yield* Config.String("BANK_EVENTS_PREFIX").pipe(Config.withDefault(channels.subjectPrefix))
  const stream = yield* Config.String("BANK_NATS_STREAM").pipe(Config.withDefault(channels.natsStream))
  if (Option.isSome(nats)) return Option.some<Broker>({ _tag: "Nats", servers: nats.value, stream, prefix })
  if (Option.isSome(redis)) return Option.some<Broker>({ _tag: "Redis", url: redis.value, prefix })
  return Option.none()
})

/**
 * The environment a child process needs to find the same broker (the variables of the module's table).
 */
export const toEnv = (broker: Broker): Record<string, string> =>
  broker._tag === "Nats"
    ? { NATS_URL: broker.servers, BANK_EVENTS_PREFIX: broker.prefix, BANK_NATS_STREAM: broker.stream }
    : { REDIS_URL: broker.url, BANK_EVENTS_PREFIX: broker.prefix }

/**
 * The broker in one line, for logs and the demo's banner.
 */
export const describe = (broker: Broker): string =>
  broker._tag === "Nats"
    ? `NATS ${broker.servers} (stream ${broker.stream}, subjects ${natsSubjects(broker.prefix)})`
    : `Redis ${broker.url} (stream ${redisKey(broker.prefix)})`
