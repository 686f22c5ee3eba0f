/**
 * @since 0.1.0
 */

export * as NatsClient from "./NatsClient.ts"
export * as NatsInbox from "./NatsInbox.ts"
export * as NatsPublisher from "./NatsPublisher.ts"
export * as NatsStream from "./NatsStream.ts"
