/**
 * Migration 0005 `read_log`.
 *
 * A page of the global log below the horizon, as an ordered walk of an index whatever the statistics say. As a
 * plain query, a log that grew since it was last analyzed (or never was) got a full scan and a sort of the
 * table, or of the whole category, for every page (figures in docs/benchmarks.md, item 9). Without categories it
 * walks the log's key; with them, each category's part of the category index,
 * merged. Scans and bitmaps are off inside the function only; the plans are cached per connection.
 *
 * Deployed databases recorded this migration by its number and name and ran this text: it never changes. A change
 * to the schema is a new migration.
 */

/** The name the migrations table records (after the number). */
export const name = "read_log"

/** The statements, for the store's schema `s` (validated as a plain identifier before it gets here). */
export const statements = (s: string): ReadonlyArray<string> => [
  `CREATE FUNCTION ${s}.read_log(
        p_epoch integer,
        p_tx_id xid8,
        p_position bigint,
        p_categories text[],
        p_types text[],
        p_limit integer
      ) RETURNS SETOF ${s}.events
      LANGUAGE plpgsql STABLE
      SET enable_seqscan = off
      SET enable_bitmapscan = off
      SET jit = off
      AS $fn$
      BEGIN
        IF p_categories IS NULL THEN
          RETURN QUERY SELECT e.* FROM ${s}.events e
            WHERE (e.epoch, e.tx_id, e.global_position) > (p_epoch, p_tx_id, p_position)
              AND (e.epoch < (SELECT sto.epoch FROM ${s}.store sto) OR e.tx_id < pg_snapshot_xmin(pg_current_snapshot()))
              AND (p_types IS NULL OR e.type = ANY (p_types))
            ORDER BY e.epoch, e.tx_id, e.global_position
            LIMIT p_limit;
        ELSE
          RETURN QUERY SELECT e.* FROM (SELECT DISTINCT c FROM unnest(p_categories) AS c) AS wanted
            CROSS JOIN LATERAL (
              SELECT * FROM ${s}.events ev
              WHERE ev.category = wanted.c
                AND (ev.epoch, ev.tx_id, ev.global_position) > (p_epoch, p_tx_id, p_position)
                AND (ev.epoch < (SELECT sto.epoch FROM ${s}.store sto)
                  OR ev.tx_id < pg_snapshot_xmin(pg_current_snapshot()))
                AND (p_types IS NULL OR ev.type = ANY (p_types))
              ORDER BY ev.epoch, ev.tx_id, ev.global_position
              LIMIT p_limit
            ) AS e
            ORDER BY e.epoch, e.tx_id, e.global_position
            LIMIT p_limit;
        END IF;
      END
      $fn$`
]
