import { EventStoreConformance } from "@facta/testing"
import * as Database from "../support/database.ts"

EventStoreConformance.run("postgres", Database.eventStore("conformance", { maxConnections: 20 }), { raceFibers: 32 })
