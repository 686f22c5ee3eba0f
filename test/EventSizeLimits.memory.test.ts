import { it } from "@effect/vitest"
import { EventStore } from "@facta/core"
import * as SizeLimits from "./support/sizeLimits.ts"

// The size cases with small limits, on the in-memory store built with them (the conformance suite runs the defaults).
SizeLimits.register("memory", EventStore.layerMemoryWith(SizeLimits.smallLimits))

it.effect("layerMemoryWith refuses a limit that is not a positive integer", () =>
  SizeLimits.assertRefusedToStart(EventStore.layerMemoryWith({ maxEventBytes: 0 }), "maxEventBytes must be a positive")
)
