import { EventStore } from "@facta/core"
import { EventStoreConformance } from "@facta/testing"

// The in-memory store must keep every law the PostgreSQL store keeps.
EventStoreConformance.run("memory", EventStore.layerMemory)
