/**
 * @since 0.1.0
 */

export * as RedisClient from "./RedisClient.ts"
export * as RedisInbox from "./RedisInbox.ts"
export * as RedisPublisher from "./RedisPublisher.ts"
