/**
 * Migration 0007 `append_epoch`.
 *
 * The epoch an append writes under is the one current when it commits. The functions read it before they
 * queued on the stream's writer lock, so a bump (UPDATE store SET epoch = epoch + 1) that committed while an
 * append waited left its events in the old epoch, committed after readers had already moved on to the new
 * one: a live reader skipped them for good (test/postgres/EpochBump.test.ts). Now each append reads the epoch
 * once its writer locks are held, in a statement of its own (READ COMMITTED gives each one a fresh snapshot,
 * so it sees a bump that committed during the wait), and reads it FOR SHARE, so a bump cannot commit between
 * that read and the append's commit either: the bump's UPDATE waits for every append that holds the row, and
 * an append that meets a bump in progress waits for it and reads the new epoch. Under REPEATABLE READ and
 * SERIALIZABLE a bump committed since the transaction's snapshot makes the read fail with a serialization
 * failure, which the store retries. The row lock is the transaction's first write, taken after the writer
 * locks, so the transaction id is still drawn once the stream's previous writer has committed; it costs no
 * statement (the read moves), but an append the version check then refuses now holds a transaction id too.
 *
 * Deployed databases recorded this migration by its number and name and ran this text: it never changes. A change
 * to the schema is a new migration.
 */

/** The name the migrations table records (after the number). */
export const name = "append_epoch"

/** The statements, for the store's schema `s` (validated as a plain identifier before it gets here). */
export const statements = (s: string): ReadonlyArray<string> => [
  `CREATE OR REPLACE FUNCTION ${s}.append(
        p_stream_id text,
        p_category text,
        p_expected_kind smallint,
        p_expected_version integer,
        p_event_ids uuid[],
        p_types text[],
        p_schema_versions smallint[],
        p_data jsonb[],
        p_metadata jsonb[],
        p_notify boolean
      ) RETURNS TABLE (status smallint, version integer, epoch integer, tx_id xid8, positions bigint[])
      LANGUAGE plpgsql
      -- PL/pgSQL caches generic plans; one made while the log was small would scan the whole log for every append
      -- from then on, so the plans of this function are made to use the indexes whatever the statistics say (and,
      -- as that inflates the cost of any scan left, never to JIT-compile its tiny statements)
      SET enable_seqscan = off
      SET jit = off
      AS $fn$
      DECLARE
        n integer := coalesce(cardinality(p_event_ids), 0);
        v integer;
        stream record;
        current_epoch integer;
      BEGIN
        -- a retry of an append that already landed: a read, which takes no transaction id. Only the kinds whose check
        -- a retry could pass need it; a retry of an exact or no-stream append fails its version check, which writes
        -- nothing either, and the client settles it with the same lookup
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
        -- writers of a stream queue here first: an advisory lock takes no transaction id, so a transaction that starts
        -- without one (an autocommit append) takes its id only once the stream's previous writer has committed
        PERFORM pg_advisory_xact_lock(hashtext('${s}'), hashtext(p_stream_id));
        -- the epoch, read now that the stream is this transaction's (a statement of its own, so a bump committed
        -- while it waited is seen) and held in share mode until commit (see migration 7)
        SELECT sto.epoch INTO current_epoch FROM ${s}.store sto WHERE sto.id FOR SHARE;
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
          FROM unnest(p_event_ids, p_types, p_schema_versions, p_data, p_metadata)
            WITH ORDINALITY AS x(id, type, sv, data, meta, ord)
          RETURNING ev.global_position, ev.tx_id
        )
        SELECT 0::smallint, v, current_epoch, (array_agg(i.tx_id))[1], array_agg(i.global_position ORDER BY i.global_position)
        FROM inserted i;
        IF p_notify THEN
          PERFORM pg_notify('${s}_events', '');
        END IF;
      END
      $fn$`,
  `CREATE OR REPLACE FUNCTION ${s}.append_batch(
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
            -- the epoch, read once all the writer locks are held (so a bump committed while the batch waited is seen)
            -- and held in share mode until commit (see migration 7); only a batch that may write reads it
            IF current_epoch IS NULL THEN
              SELECT sto.epoch INTO current_epoch FROM ${s}.store sto WHERE sto.id FOR SHARE;
            END IF;
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
      $fn$`,
  `CREATE OR REPLACE FUNCTION ${s}.append_stream(
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
        -- writers of a stream queue here before the transaction takes an id (see append)
        PERFORM pg_advisory_xact_lock(hashtext('${s}'), hashtext(p_stream_id));
        -- the epoch, read now that the stream is this transaction's (a statement of its own, so a bump committed
        -- while it waited is seen) and held in share mode until commit (see migration 7)
        SELECT sto.epoch INTO current_epoch FROM ${s}.store sto WHERE sto.id FOR SHARE;
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
