/**
 * Migration 0001 `event_store`.
 *
 * The event store itself: the store row (its epoch, which a restore into a new cluster bumps), one row per stream
 * (its head version, lifecycle stamps, and the transaction that wrote its last events), the events (each stamped
 * with its writer's transaction id, so that the global log is read below the transaction-id horizon and never skips
 * an event that commits late), the snapshots, and the first generation of the `append` function (one round trip per
 * append) beside `close_stream` (archive and delete in one statement). Versions are contiguous and
 * `UNIQUE (stream_id, version)` is the arbiter of concurrent appends; event ids are unique so that a retried append
 * is recognised.
 *
 * Deployed databases recorded this migration by its number and name and ran this text: it never changes. A change
 * to the schema is a new migration.
 */

/** The name the migrations table records (after the number). */
export const name = "event_store"

/** The statements, for the store's schema `s` (validated as a plain identifier before it gets here). */
export const statements = (s: string): ReadonlyArray<string> => [
  `CREATE TABLE ${s}.store (
        id boolean PRIMARY KEY DEFAULT true CHECK (id),
        epoch integer NOT NULL DEFAULT 1
      )`,
  `INSERT INTO ${s}.store DEFAULT VALUES`,
  `CREATE TABLE ${s}.streams (
        stream_id text PRIMARY KEY,
        category text NOT NULL,
        version integer NOT NULL CHECK (version >= 0),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        archived_at timestamptz,
        deleted_at timestamptz,
        -- the transaction that wrote the stream's last events: a later append must not order before it
        last_epoch integer,
        last_tx_id xid8
      )`,
  `CREATE TABLE ${s}.events (
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
        CONSTRAINT events_stream_version_key UNIQUE (stream_id, version),
        CONSTRAINT events_event_id_key UNIQUE (event_id)
      )`,
  `CREATE INDEX events_log_idx ON ${s}.events (epoch, tx_id, global_position)`,
  `CREATE INDEX events_category_idx ON ${s}.events (category, epoch, tx_id, global_position)`,
  `CREATE INDEX events_type_idx ON ${s}.events (type, epoch, tx_id, global_position)`,
  `CREATE TABLE ${s}.snapshots (
        stream_id text PRIMARY KEY,
        version integer NOT NULL,
        state_version integer NOT NULL,
        state jsonb NOT NULL,
        taken_at timestamptz NOT NULL
      )`,
  // One round trip per append. Writers of a stream first queue on a transaction-level advisory lock, which takes
  // no transaction id; the stream row is then the first write, so the transaction id that orders the global log
  // is taken after the stream's previous writer committed, and a stream's events appear in the log in version
  // order. A transaction that owned its id before (an appendMany, an append inside the caller's transaction)
  // could still order before the stream's last events: the head update refuses it with a serialization failure,
  // and it is retried in a new transaction (by the client when the transaction is its own).
  `CREATE FUNCTION ${s}.append(
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
        SELECT sto.epoch INTO current_epoch FROM ${s}.store sto WHERE sto.id;
        -- writers of a stream queue here first: an advisory lock takes no transaction id, so a transaction that starts
        -- without one (an autocommit append) takes its id only once the stream's previous writer has committed
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
  // Archive (p_delete false) or delete with tombstone (p_delete true), in one statement. The stream row is locked
  // first, so an append in flight either lands before (and its events are deleted with the rest) or sees the
  // stream closed.
  `CREATE FUNCTION ${s}.close_stream(
        p_stream_id text,
        p_delete boolean,
        p_expected_kind smallint,
        p_expected_version integer
      ) RETURNS TABLE (status smallint, version integer)
      LANGUAGE plpgsql AS $fn$
      DECLARE
        stream record;
      BEGIN
        SELECT st.version, st.archived_at, st.deleted_at INTO stream FROM ${s}.streams st
          WHERE st.stream_id = p_stream_id FOR UPDATE;
        IF NOT FOUND THEN
          RETURN QUERY SELECT 5::smallint, 0;
          RETURN;
        END IF;
        IF NOT p_delete AND stream.deleted_at IS NOT NULL THEN
          RETURN QUERY SELECT 4::smallint, stream.version;
          RETURN;
        END IF;
        IF (p_expected_kind = 1 AND stream.version <> 0) OR (p_expected_kind = 2 AND stream.version = 0)
           OR (p_expected_kind = 3 AND stream.version <> p_expected_version) THEN
          RETURN QUERY SELECT 1::smallint, stream.version;
          RETURN;
        END IF;
        IF p_delete AND stream.deleted_at IS NULL THEN
          UPDATE ${s}.streams SET deleted_at = now(), updated_at = now() WHERE stream_id = p_stream_id;
          DELETE FROM ${s}.events WHERE stream_id = p_stream_id;
          DELETE FROM ${s}.snapshots WHERE stream_id = p_stream_id;
        ELSIF NOT p_delete AND stream.archived_at IS NULL THEN
          UPDATE ${s}.streams SET archived_at = now(), updated_at = now() WHERE stream_id = p_stream_id;
        END IF;
        RETURN QUERY SELECT 0::smallint, stream.version;
      END
      $fn$`
]
