/**
 * @since 0.1.0
 */

export * as Aggregate from "./Aggregate.ts"
export * as CheckpointStore from "./CheckpointStore.ts"
export * as CommandHandler from "./CommandHandler.ts"
export * as Decider from "./Decider.ts"
export * as Event from "./Event.ts"
export * as EventCodec from "./EventCodec.ts"
export * as EventStore from "./EventStore.ts"
export * as EventStoreError from "./EventStoreError.ts"
export * as ExpectedVersion from "./ExpectedVersion.ts"
export * as Inbox from "./Inbox.ts"
export * as IntegrationEvent from "./IntegrationEvent.ts"
export * as Position from "./Position.ts"
export * as Projection from "./Projection.ts"
export * as ProjectionError from "./ProjectionError.ts"
export * as Relay from "./Relay.ts"
export * as Snapshot from "./Snapshot.ts"
export * as StorageError from "./StorageError.ts"
export * as StoreKit from "./StoreKit.ts"
export * as StreamId from "./StreamId.ts"
export * as Subscription from "./Subscription.ts"
