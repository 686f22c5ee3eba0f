/**
 * @since 0.1.0
 */
export * as Migrations from "./Migrations.ts"
export * as PgBatch from "./PgBatch.ts"
export * as PgCheckpointStore from "./PgCheckpointStore.ts"
export * as PgEventStore from "./PgEventStore.ts"
export * as PgInboxStore from "./PgInboxStore.ts"
export * as PgSnapshotStore from "./PgSnapshotStore.ts"
export * as PgStorage from "./PgStorage.ts"
export * as PgStore from "./PgStore.ts"
