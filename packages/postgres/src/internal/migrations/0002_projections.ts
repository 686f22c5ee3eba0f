/**
 * Migration 0002 `projections`.
 *
 * What projections keep beside the log: checkpoints with their leases (one row per projection version and
 * partition; the fencing token and the expiry by the database's clock keep a zombie worker out), parked events (a
 * failed event set aside instead of skipped), the active version of each projection (blue/green rebuilds), and the
 * claims of effects a projection runs once. A migration of its own because the event store can run without
 * projections.
 *
 * Deployed databases recorded this migration by its number and name and ran this text: it never changes. A change
 * to the schema is a new migration.
 */

/** The name the migrations table records (after the number). */
export const name = "projections"

/** The statements, for the store's schema `s` (validated as a plain identifier before it gets here). */
export const statements = (s: string): ReadonlyArray<string> => [
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
