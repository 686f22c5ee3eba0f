/**
 * Migration 0004 `append_batch`.
 *
 * Several appends in one statement: the concurrent appends of a process share one transaction, one commit and
 * one round trip, and a multi-stream append takes every stream's writer lock before its first write. Requests
 * are independent: each gets its own status row, in request order, and a refused one writes nothing. The
 * event arrays hold every request's events in order, `p_counts` says how many are whose. Writer locks are
 * taken first, in key order: the transaction has no id while it waits (so every stream's previous writer has
 * committed by the time it takes one, and the stream's events enter the log in version order), and two
 * batches cannot deadlock on each other. `append` (migration 1) stays for clients of earlier versions; both
 * queue on the same locks.
 *
 * Deployed databases recorded this migration by its number and name and ran this text: it never changes. A change
 * to the schema is a new migration.
 */

/** The name the migrations table records (after the number). */
export const name = "append_batch"

/** The statements, for the store's schema `s` (validated as a plain identifier before it gets here). */
export const statements = (s: string): ReadonlyArray<string> => [
  `CREATE FUNCTION ${s}.append_batch(
        p_stream_ids text[],
        p_categories text[],
        p_expected_kinds smallint[],
        p_expected_versions integer[],
        p_counts integer[],
        p_event_ids uuid[],
        p_types text[],
        p_schema_versions smallint[],
        p_data jsonb[],
        p_metadata jsonb[],
        p_notify boolean
      ) RETURNS TABLE (status smallint, version integer, epoch integer, tx_id xid8, positions bigint[])
      LANGUAGE plpgsql
      -- as in append: plans that use the indexes whatever the statistics said when they were cached
      SET enable_seqscan = off
      SET jit = off
      AS $fn$
      DECLARE
        lock_key integer;
        r integer;
        n integer;
        lo integer := 1;
        hi integer;
        a_stream text;
        a_category text;
        kind smallint;
        expected integer;
        v integer;
        stream record;
        current_epoch integer;
        wrote boolean := false;
      BEGIN
        IF cardinality(p_stream_ids) = 1 THEN
          IF p_counts[1] > 0 THEN
            PERFORM pg_advisory_xact_lock(hashtext('${s}'), hashtext(p_stream_ids[1]));
          END IF;
        ELSE
          FOR lock_key IN
            SELECT DISTINCT hashtext(x.id) FROM unnest(p_stream_ids, p_counts) AS x(id, n) WHERE x.n > 0 ORDER BY 1
          LOOP
            PERFORM pg_advisory_xact_lock(hashtext('${s}'), lock_key);
          END LOOP;
        END IF;
        SELECT sto.epoch INTO current_epoch FROM ${s}.store sto WHERE sto.id;
        FOR r IN 1 .. coalesce(cardinality(p_stream_ids), 0) LOOP
          a_stream := p_stream_ids[r];
          a_category := p_categories[r];
          kind := p_expected_kinds[r];
          expected := p_expected_versions[r];
          n := p_counts[r];
          hi := lo + n - 1;
          v := NULL;
          -- a retry of an append that already landed (see append)
          IF n > 0 AND kind IN (0, 2)
             AND EXISTS (SELECT 1 FROM ${s}.events e WHERE e.event_id = ANY (p_event_ids[lo:hi])) THEN
            RETURN QUERY SELECT 2::smallint, NULL::integer, NULL::integer, NULL::xid8, NULL::bigint[];
          ELSIF n = 0 THEN
            SELECT st.version, st.archived_at, st.deleted_at INTO stream FROM ${s}.streams st
              WHERE st.stream_id = a_stream;
            v := coalesce(stream.version, 0);
            IF stream.deleted_at IS NOT NULL OR stream.archived_at IS NOT NULL THEN
              RETURN QUERY SELECT (CASE WHEN stream.deleted_at IS NOT NULL THEN 4 ELSE 3 END)::smallint, v,
                NULL::integer, NULL::xid8, NULL::bigint[];
            ELSIF (kind = 1 AND v <> 0) OR (kind = 2 AND v = 0) OR (kind = 3 AND v <> expected) THEN
              RETURN QUERY SELECT 1::smallint, v, NULL::integer, NULL::xid8, NULL::bigint[];
            ELSE
              RETURN QUERY SELECT 0::smallint, v, NULL::integer, NULL::xid8, ARRAY[]::bigint[];
            END IF;
          ELSE
            IF kind = 0 THEN
              INSERT INTO ${s}.streams AS st (stream_id, category, version, last_epoch, last_tx_id)
                VALUES (a_stream, a_category, n, current_epoch, pg_current_xact_id())
                ON CONFLICT (stream_id) DO UPDATE SET version = st.version + n, updated_at = now(),
                  last_epoch = current_epoch, last_tx_id = pg_current_xact_id()
                WHERE st.archived_at IS NULL AND st.deleted_at IS NULL
                  AND (st.last_epoch IS DISTINCT FROM current_epoch OR st.last_tx_id <= pg_current_xact_id())
                RETURNING st.version INTO v;
            ELSIF kind = 1 OR (kind = 3 AND expected = 0) THEN
              INSERT INTO ${s}.streams AS st (stream_id, category, version, last_epoch, last_tx_id)
                VALUES (a_stream, a_category, n, current_epoch, pg_current_xact_id())
                ON CONFLICT (stream_id) DO NOTHING
                RETURNING st.version INTO v;
            ELSE
              UPDATE ${s}.streams st SET version = st.version + n, updated_at = now(),
                  last_epoch = current_epoch, last_tx_id = pg_current_xact_id()
                WHERE st.stream_id = a_stream AND (kind = 2 OR st.version = expected)
                  AND st.archived_at IS NULL AND st.deleted_at IS NULL
                  AND (st.last_epoch IS DISTINCT FROM current_epoch OR st.last_tx_id <= pg_current_xact_id())
                RETURNING st.version INTO v;
            END IF;
            IF v IS NULL THEN
              SELECT st.version, st.archived_at, st.deleted_at INTO stream FROM ${s}.streams st
                WHERE st.stream_id = a_stream;
              -- only a transaction that owned its id before this statement (the caller's) gets here with the check
              -- passing: its id is older than the stream's last writer's
              IF stream.deleted_at IS NULL AND stream.archived_at IS NULL
                 AND (kind = 0 OR (kind = 2 AND stream.version > 0) OR (kind = 3 AND stream.version = expected)) THEN
                RAISE EXCEPTION USING ERRCODE = 'serialization_failure',
                  MESSAGE = format('an append to %s would be ordered before the stream''s last events; retry it',
                    a_stream);
              END IF;
              RETURN QUERY SELECT
                (CASE WHEN stream.deleted_at IS NOT NULL THEN 4 WHEN stream.archived_at IS NOT NULL THEN 3 ELSE 1 END)
                  ::smallint,
                coalesce(stream.version, 0), NULL::integer, NULL::xid8, NULL::bigint[];
            ELSE
              wrote := true;
              RETURN QUERY
              WITH inserted AS (
                INSERT INTO ${s}.events AS ev (epoch, stream_id, category, version, event_id, type, schema_version, data,
                  metadata)
                SELECT current_epoch, a_stream, a_category, v - n + x.ord::integer, x.id, x.type, x.sv, x.data, x.meta
                FROM unnest(p_event_ids[lo:hi], p_types[lo:hi], p_schema_versions[lo:hi], p_data[lo:hi],
                  p_metadata[lo:hi]) WITH ORDINALITY AS x(id, type, sv, data, meta, ord)
                RETURNING ev.global_position, ev.tx_id
              )
              SELECT 0::smallint, v, current_epoch, (array_agg(i.tx_id))[1],
                array_agg(i.global_position ORDER BY i.global_position)
              FROM inserted i;
            END IF;
          END IF;
          lo := hi + 1;
        END LOOP;
        IF p_notify AND wrote THEN
          PERFORM pg_notify('${s}_events', '');
        END IF;
      END
      $fn$`
]
