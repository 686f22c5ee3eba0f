import { EmbeddedPostgres } from "@facta/embedded-postgres"

/**
 * Starts a throwaway PostgreSQL server (see `@facta/embedded-postgres`) in a temporary directory on a free port; or,
 * with `dataDir`, on the data kept there.
 */
export const start = (options?: { readonly dataDir?: string; readonly log?: (message: unknown) => void }) =>
  EmbeddedPostgres.startAsync(options)
