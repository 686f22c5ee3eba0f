import { assert, describe, it, layer } from "@effect/vitest"
import { PgBatch } from "@facta/postgres"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../support/database.ts"

const schema = Database.uniqueSchema("pgbatch")
const Live = Layer.mergeAll(Database.dropSchemaOnRelease(schema)).pipe(Layer.provideMerge(Database.client()))

interface Row {
  readonly id: string
  readonly n: number
  readonly big: bigint
  readonly price: string
  readonly ok: boolean | null
  readonly ratio: number
  readonly at: Date
  readonly uid: string
  readonly doc: unknown
  readonly note: string | null
}

const Rows = PgBatch.table<Row>(`${schema}.rows`, {
  id: "text",
  n: "integer",
  big: "bigint",
  price: "numeric",
  ok: "boolean",
  ratio: "double precision",
  at: "timestamptz",
  uid: "uuid",
  doc: "jsonb",
  note: "text"
})

const row = (id: string, n: number, overrides?: Partial<Row>): Row => ({
  id,
  n,
  big: 9_007_199_254_740_993n,
  price: "12.345",
  ok: n % 2 === 0 ? true : null,
  ratio: 0.5,
  at: new Date("2026-01-02T03:04:05.678Z"),
  uid: "0190f3c4-0000-7000-8000-000000000001",
  doc: { tag: "x", list: [1, "two"], quote: 'it\'s "quoted", {braces}' },
  // a column of nulls only
  note: null,
  ...overrides
})

describe("PgBatch.foldByKey", () => {
  it("folds each key's items in order from its state before the batch, keeping the state after every item", () => {
    const items = [
      { key: "a", n: 5 },
      { key: "b", n: 1 },
      { key: "a", n: -2 },
      { key: "c", n: 7 },
      { key: "a", n: 4 }
    ]
    const folded = PgBatch.foldByKey(items, {
      key: (item) => item.key,
      initial: (key) => (key === "c" ? undefined : 10),
      step: (state: number | undefined, item) => (state === undefined ? undefined : state + item.n)
    })
    assert.deepStrictEqual(Array.from(folded.final), [
      ["a", 17],
      ["b", 11],
      ["c", undefined]
    ])
    assert.deepStrictEqual(folded.steps, [15, 11, 13, undefined, 17])
  })
})

layer(Live, { excludeTestServices: true })("PgBatch on PostgreSQL", (it) => {
  it.effect("upsert writes every column type in one statement, updates on conflict, and load reads rows back", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE SCHEMA ${sql(schema)}`
      yield* sql`CREATE TABLE ${sql(schema)}.rows (id text PRIMARY KEY, n integer NOT NULL, big bigint NOT NULL,
        price numeric NOT NULL, ok boolean, ratio double precision NOT NULL, at timestamptz NOT NULL, uid uuid NOT NULL,
        doc jsonb NOT NULL, note text)`
      yield* PgBatch.upsert(Rows, [])
      const first = Array.from({ length: 300 }, (_, i) => row(`r-${i}`, i))
      yield* PgBatch.upsert(Rows, first)
      const [count] = yield* sql<{ n: bigint }>`SELECT count(*) AS n FROM ${sql(schema)}.rows`
      assert.strictEqual(count?.n, 300n)

      yield* PgBatch.upsert(Rows, [row("r-1", 1_001, { note: "changed", ok: false }), row("new", 7)], {
        onConflict: { key: ["id"], update: ["n", "note", "ok"] }
      })
      const loaded = yield* PgBatch.load(Rows, "id", ["r-1", "r-2", "new", "missing", "r-1"])
      assert.deepStrictEqual(Array.from(loaded.keys()).sort(), ["new", "r-1", "r-2"])
      const changed = loaded.get("r-1")!
      assert.deepStrictEqual([changed.n, changed.note, changed.ok], [1_001, "changed", false])
      const plain = loaded.get("r-2")!
      assert.strictEqual(plain.big, 9_007_199_254_740_993n)
      assert.strictEqual(plain.price, "12.345")
      assert.strictEqual(plain.ok, true)
      assert.strictEqual(plain.ratio, 0.5)
      assert.strictEqual(plain.at.toISOString(), "2026-01-02T03:04:05.678Z")
      assert.strictEqual(plain.uid, "0190f3c4-0000-7000-8000-000000000001")
      assert.deepStrictEqual(plain.doc, { tag: "x", list: [1, "two"], quote: 'it\'s "quoted", {braces}' })
      assert.isNull(plain.note)
      assert.isNull(loaded.get("r-3" as never) ?? null)

      // values the driver does not encode as they are (decimal strings, ISO text, a bigint given as a number) bind
      // as text the server casts, and read back the same
      const loose = { n: "41", big: "-9007199254740993", at: "2026-05-06T07:08:09.010Z" } as unknown as Partial<Row>
      yield* PgBatch.upsert(Rows, [row("loose", 0, loose), row("number", 0, { big: 12 as unknown as bigint })])
      const back = yield* PgBatch.load(Rows, "id", ["loose", "number"])
      assert.deepStrictEqual(
        [back.get("loose")!.n, back.get("loose")!.big, back.get("loose")!.at.toISOString(), back.get("number")!.big],
        [41, -9_007_199_254_740_993n, "2026-05-06T07:08:09.010Z", 12n]
      )
    })
  )

  it("table refuses a column type outside the list", () => {
    assert.throws(() => PgBatch.table<{ readonly x: string }>("t", { x: "text; DROP TABLE t" as never }))
  })
})
