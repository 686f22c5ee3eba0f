/**
 * Migration 0003 `log_key`.
 *
 * Every append maintains every index of the log, so it keeps only those a read needs. The log's order
 * (epoch, tx_id, global_position) becomes the table's key instead of an index beside a key on global_position,
 * which nothing looks up alone; the type index goes: a type filter walks the log or the category index in order
 * (and no longer tempts the planner into sorting a whole bitmap scan when the statistics are stale).
 *
 * Deployed databases recorded this migration by its number and name and ran this text: it never changes. A change
 * to the schema is a new migration.
 */

/** The name the migrations table records (after the number). */
export const name = "log_key"

/** The statements, for the store's schema `s` (validated as a plain identifier before it gets here). */
export const statements = (s: string): ReadonlyArray<string> => [
  `CREATE UNIQUE INDEX events_log_key ON ${s}.events (epoch, tx_id, global_position)`,
  `ALTER TABLE ${s}.events DROP CONSTRAINT events_pkey,
        ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_log_key`,
  `DROP INDEX ${s}.events_log_idx`,
  `DROP INDEX ${s}.events_type_idx`
]
