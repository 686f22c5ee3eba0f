/**
 * @since 0.1.0
 */
export * as DeciderSpec from "./DeciderSpec.ts"
export * as EventStoreConformance from "./EventStoreConformance.ts"
export * as ProjectionConformance from "./ProjectionConformance.ts"
export * as ProjectionSpec from "./ProjectionSpec.ts"
export * as Properties from "./Properties.ts"
export * as RelayConformance from "./RelayConformance.ts"
