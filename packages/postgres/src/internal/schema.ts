/**
 * The store's DDL, versioned. Statements are built for one schema name, which is validated as a plain identifier
 * before it gets here (it is the only text ever spliced into SQL; every value is a bound parameter).
 */

/** Status codes returned by the append function. */
export const AppendStatus = {
  ok: 0,
  wrongVersion: 1,
  idsExist: 2,
  archived: 3,
  deleted: 4
} as const

/** Status codes returned by the close_stream function (archive and delete). */
export const CloseStatus = {
  ok: 0,
  wrongVersion: 1,
  deleted: 4,
  notFound: 5
} as const

/** Expected-version kinds as the append and close_stream functions take them. */
export const ExpectedKind = { any: 0, noStream: 1, streamExists: 2, exact: 3 } as const

export const notifyChannel = (schema: string) => `${schema}_events`

export const migrations = (s: string): ReadonlyArray<readonly [name: string, statements: ReadonlyArray<string>]> => [
  [
    "event_store",
    [
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
  ],
  [
    "projections",
    [
      // one row per projection version and partition: its checkpoint (Position.format text: compared for equality
      // only), the lease (owner, fencing token, expiry by the database's clock) and the state its holder reported
      `CREATE TABLE ${s}.checkpoints (
        name text NOT NULL,
        version integer NOT NULL,
        partition integer NOT NULL,
        checkpoint text NOT NULL,
        owner text,
        fence bigint NOT NULL DEFAULT 0,
        lease_expires_at timestamptz,
        state text NOT NULL DEFAULT 'stopped',
        error text,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (name, version, partition)
      )`,
      `CREATE TABLE ${s}.parked_events (
        name text NOT NULL,
        version integer NOT NULL,
        partition integer NOT NULL,
        event_id uuid NOT NULL,
        stream_id text NOT NULL,
        stream_version integer NOT NULL,
        position text NOT NULL,
        type text NOT NULL,
        schema_version smallint NOT NULL,
        data jsonb NOT NULL,
        metadata jsonb NOT NULL,
        recorded_at timestamptz NOT NULL,
        error text NOT NULL,
        parked_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (name, version, partition, event_id)
      )`,
      `CREATE TABLE ${s}.projection_versions (
        name text PRIMARY KEY,
        active_version integer NOT NULL
      )`,
      // effects a projection ran once (Projection.once), by key
      `CREATE TABLE ${s}.projection_claims (
        name text NOT NULL,
        key text NOT NULL,
        claimed_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (name, key)
      )`
    ]
  ],
  [
    "log_key",
    [
      // Every append maintains every index of the log, so it keeps only those a read needs. The log's order
      // (epoch, tx_id, global_position) becomes the table's key instead of an index beside a key on global_position,
      // which nothing looks up alone; the type index goes: a type filter walks the log or the category index in order
      // (and no longer tempts the planner into sorting a whole bitmap scan when the statistics are stale).
      `CREATE UNIQUE INDEX events_log_key ON ${s}.events (epoch, tx_id, global_position)`,
      `ALTER TABLE ${s}.events DROP CONSTRAINT events_pkey,
        ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_log_key`,
      `DROP INDEX ${s}.events_log_idx`,
      `DROP INDEX ${s}.events_type_idx`
    ]
  ],
  [
    "append_batch",
    [
      // Several appends in one statement: the concurrent appends of a process share one transaction, one commit and
      // one round trip, and a multi-stream append takes every stream's writer lock before its first write. Requests
      // are independent: each gets its own status row, in request order, and a refused one writes nothing. The
      // event arrays hold every request's events in order, `p_counts` says how many are whose. Writer locks are
      // taken first, in key order: the transaction has no id while it waits (so every stream's previous writer has
      // committed by the time it takes one, and the stream's events enter the log in version order), and two
      // batches cannot deadlock on each other. `append` (migration 1) stays for clients of earlier versions; both
      // queue on the same locks.
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
  ],
  [
    "read_log",
    [
      // A page of the global log below the horizon, as an ordered walk of an index whatever the statistics say. As a
      // plain query, a log that grew since it was last analyzed (or never was) got a full scan and a sort of the
      // table, or of the whole category, for every page: 58 and 268 ms a page at 300,000 events, against 0.1 and
      // 1.8 ms. Without categories it walks the log's key; with them, each category's part of the category index,
      // merged. Scans and bitmaps are off inside the function only; the plans are cached per connection.
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
  ],
  [
    "append_stream",
    [
      // The single-stream append of migration 1 with the events' data and metadata as one JSON array each instead
      // of `jsonb[]`: the same checks, locks and results, 0.05 to 0.4 ms less per 100-event append on the
      // benchmark's machine (docs/benchmarks.md, item 12). A copy, not a wrapper that builds the arrays and calls
      // `append`: the wrapper measured 1–5% slower. A request's data may total at most 256 MB, the limit of one jsonb
      // value. `append` and `append_batch` stay for clients of earlier versions and for several requests at once.
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
  ],
  [
    "append_epoch",
    [
      // The epoch an append writes under is the one current when it commits. The functions read it before they
      // queued on the stream's writer lock, so a bump (UPDATE store SET epoch = epoch + 1) that committed while an
      // append waited left its events in the old epoch, committed after readers had already moved on to the new
      // one: a live reader skipped them for good (test/postgres/EpochBump.test.ts). Now each append reads the epoch
      // once its writer locks are held, in a statement of its own (READ COMMITTED gives each one a fresh snapshot,
      // so it sees a bump that committed during the wait), and reads it FOR SHARE, so a bump cannot commit between
      // that read and the append's commit either: the bump's UPDATE waits for every append that holds the row, and
      // an append that meets a bump in progress waits for it and reads the new epoch. Under REPEATABLE READ and
      // SERIALIZABLE a bump committed since the transaction's snapshot makes the read fail with a serialization
      // failure, which the store retries. The row lock is the transaction's first write, taken after the writer
      // locks, so the transaction id is still drawn once the stream's previous writer has committed; it costs no
      // statement (the read moves), but an append the version check then refuses now holds a transaction id too.
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
  ]
]
