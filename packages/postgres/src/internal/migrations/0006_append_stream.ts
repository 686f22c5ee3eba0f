/**
 * Migration 0006 `append_stream`.
 *
 * The single-stream append of migration 1 with the events' data and metadata as one JSON array each instead
 * of `jsonb[]`: the same checks, locks and results, and measurably cheaper per append (docs/benchmarks.md,
 * item 12). A copy, not a wrapper that builds the arrays and calls `append`: the wrapper measured slower (same
 * item). A request's data may total at most 256 MB, the limit of one jsonb
 * value. `append` and `append_batch` stay for clients of earlier versions and for several requests at once.
 *
 * Deployed databases recorded this migration by its number and name and ran this text: it never changes. A change
 * to the schema is a new migration.
 */

/** The name the migrations table records (after the number). */
export const name = "append_stream"

/** The statements, for the store's schema `s` (validated as a plain identifier before it gets here). */
export const statements = (s: string): ReadonlyArray<string> => [
  `CREATE FUNCTION ${s}.append_stream(
        p_stream_id text,
        p_category text,
        p_expected_kind smallint,
        p_expected_version integer,
        p_event_ids uuid[],
        p_types text[],
        p_schema_versions smallint[],
        p_data jsonb,
        p_metadata jsonb,
        p_notify boolean
      ) RETURNS TABLE (status smallint, version integer, epoch integer, tx_id xid8, positions bigint[])
      LANGUAGE plpgsql
      -- as in append: plans that use the indexes whatever the statistics said when they were cached
      SET enable_seqscan = off
      SET jit = off
      AS $fn$
      DECLARE
        n integer := coalesce(cardinality(p_event_ids), 0);
        v integer;
        stream record;
        current_epoch integer;
      BEGIN
        IF (CASE WHEN jsonb_typeof(p_data) = 'array' THEN jsonb_array_length(p_data) END) IS DISTINCT FROM n
           OR (CASE WHEN jsonb_typeof(p_metadata) = 'array' THEN jsonb_array_length(p_metadata) END) IS DISTINCT FROM n
           OR coalesce(cardinality(p_types), 0) <> n OR coalesce(cardinality(p_schema_versions), 0) <> n THEN
          RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'append_stream: every event needs an id, a type, a schema version, data and metadata';
        END IF;
        -- a retry of an append that already landed (see append)
        IF n > 0 AND p_expected_kind IN (0, 2)
           AND EXISTS (SELECT 1 FROM ${s}.events e WHERE e.event_id = ANY (p_event_ids)) THEN
          RETURN QUERY SELECT 2::smallint, NULL::integer, NULL::integer, NULL::xid8, NULL::bigint[];
          RETURN;
        END IF;
        IF n = 0 THEN
          SELECT st.version, st.archived_at, st.deleted_at INTO stream FROM ${s}.streams st
            WHERE st.stream_id = p_stream_id;
          v := coalesce(stream.version, 0);
          IF stream.deleted_at IS NOT NULL OR stream.archived_at IS NOT NULL THEN
            RETURN QUERY SELECT (CASE WHEN stream.deleted_at IS NOT NULL THEN 4 ELSE 3 END)::smallint, v,
              NULL::integer, NULL::xid8, NULL::bigint[];
          ELSIF (p_expected_kind = 1 AND v <> 0) OR (p_expected_kind = 2 AND v = 0)
             OR (p_expected_kind = 3 AND v <> p_expected_version) THEN
            RETURN QUERY SELECT 1::smallint, v, NULL::integer, NULL::xid8, NULL::bigint[];
          ELSE
            RETURN QUERY SELECT 0::smallint, v, NULL::integer, NULL::xid8, ARRAY[]::bigint[];
          END IF;
          RETURN;
        END IF;
        SELECT sto.epoch INTO current_epoch FROM ${s}.store sto WHERE sto.id;
        -- writers of a stream queue here before the transaction takes an id (see append)
        PERFORM pg_advisory_xact_lock(hashtext('${s}'), hashtext(p_stream_id));
        IF p_expected_kind = 0 THEN
          INSERT INTO ${s}.streams AS st (stream_id, category, version, last_epoch, last_tx_id)
            VALUES (p_stream_id, p_category, n, current_epoch, pg_current_xact_id())
            ON CONFLICT (stream_id) DO UPDATE SET version = st.version + n, updated_at = now(),
              last_epoch = current_epoch, last_tx_id = pg_current_xact_id()
            WHERE st.archived_at IS NULL AND st.deleted_at IS NULL
              AND (st.last_epoch IS DISTINCT FROM current_epoch OR st.last_tx_id <= pg_current_xact_id())
            RETURNING st.version INTO v;
        ELSIF p_expected_kind = 1 OR (p_expected_kind = 3 AND p_expected_version = 0) THEN
          INSERT INTO ${s}.streams AS st (stream_id, category, version, last_epoch, last_tx_id)
            VALUES (p_stream_id, p_category, n, current_epoch, pg_current_xact_id())
            ON CONFLICT (stream_id) DO NOTHING
            RETURNING st.version INTO v;
        ELSE
          UPDATE ${s}.streams st SET version = st.version + n, updated_at = now(),
              last_epoch = current_epoch, last_tx_id = pg_current_xact_id()
            WHERE st.stream_id = p_stream_id AND (p_expected_kind = 2 OR st.version = p_expected_version)
              AND st.archived_at IS NULL AND st.deleted_at IS NULL
              AND (st.last_epoch IS DISTINCT FROM current_epoch OR st.last_tx_id <= pg_current_xact_id())
            RETURNING st.version INTO v;
        END IF;
        IF v IS NULL THEN
          SELECT st.version, st.archived_at, st.deleted_at INTO stream FROM ${s}.streams st
            WHERE st.stream_id = p_stream_id;
          -- only a transaction that owned its id before this statement gets here with the check passing (see append)
          IF stream.deleted_at IS NULL AND stream.archived_at IS NULL
             AND (p_expected_kind = 0 OR (p_expected_kind = 2 AND stream.version > 0)
               OR (p_expected_kind = 3 AND stream.version = p_expected_version)) THEN
            RAISE EXCEPTION USING ERRCODE = 'serialization_failure',
              MESSAGE = format('an append to %s would be ordered before the stream''s last events; retry it', p_stream_id);
          END IF;
          RETURN QUERY SELECT
            (CASE WHEN stream.deleted_at IS NOT NULL THEN 4 WHEN stream.archived_at IS NOT NULL THEN 3 ELSE 1 END)::smallint,
            coalesce(stream.version, 0), NULL::integer, NULL::xid8, NULL::bigint[];
          RETURN;
        END IF;
        RETURN QUERY
        WITH inserted AS (
          INSERT INTO ${s}.events AS ev (epoch, stream_id, category, version, event_id, type, schema_version, data, metadata)
          SELECT current_epoch, p_stream_id, p_category, v - n + x.ord::integer, x.id, x.type, x.sv, x.data, x.meta
          FROM ROWS FROM (unnest(p_event_ids), unnest(p_types), unnest(p_schema_versions),
            jsonb_array_elements(p_data), jsonb_array_elements(p_metadata))
            WITH ORDINALITY AS x(id, type, sv, data, meta, ord)
          RETURNING ev.global_position, ev.tx_id
        )
        SELECT 0::smallint, v, current_epoch, (array_agg(i.tx_id))[1], array_agg(i.global_position ORDER BY i.global_position)
        FROM inserted i;
        IF p_notify THEN
          PERFORM pg_notify('${s}_events', '');
        END IF;
      END
      $fn$`
]
