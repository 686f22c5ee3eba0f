import { PgCheckpointStore } from "@facta/postgres"
import { ProjectionConformance } from "@facta/testing"
import { Layer } from "effect"
import * as Database from "../support/database.ts"

const schema = Database.uniqueSchema("projconf")

ProjectionConformance.run(
  "postgres",
  PgCheckpointStore.layer({ schema }).pipe(Layer.provideMerge(Database.eventStoreIn(schema, { maxConnections: 20 })))
)
