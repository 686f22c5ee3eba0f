import { CheckpointStore, EventStore } from "@facta/core"
import { ProjectionConformance } from "@facta/testing"
import { Layer } from "effect"

// Projections on the in-memory stores must keep every law they keep on PostgreSQL.
ProjectionConformance.run("memory", Layer.mergeAll(EventStore.layerMemory, CheckpointStore.layerMemory))
