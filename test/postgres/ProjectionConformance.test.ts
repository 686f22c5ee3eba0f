import { ProjectionConformance } from "@facta/testing"
import * as Database from "../support/database.ts"

const schema = Database.uniqueSchema("projconf")

ProjectionConformance.run("postgres", Database.projectionStoresIn(schema, { maxConnections: 20 }))
