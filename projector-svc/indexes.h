/* The indexes a read model's queries need, in one place: at the start of a
 * live loop and on a rebuild's fresh collection before the swap, for any
 * database (a tenant's gets the same). Idempotent: only what is missing is
 * created.
 *
 * Two layers:
 * - the projection's own indexes, through createIndexes: what a real MongoDB
 *   uses, and what FerretDB records;
 * - with FERRETDB_PG_URI (the PostgreSQL behind a FerretDB v1), GIN
 *   expression indexes `(_jsonb->'<field>') jsonb_path_ops` on _id and on the
 *   first field of each of the projection's indexes. Why: FerretDB pushes an
 *   equality filter down as `_jsonb->'<field>' @> '<value>'`, which its own
 *   btree indexes cannot serve, so every lookup (and the lookup inside every
 *   upsert) scanned the whole table: 12 upserts/s at 100k documents, against
 *   99-215/s with these indexes (LOCAL-STACK-NOTES.md, BENCHMARKS.md). FerretDB
 *   does not know them; a renamed collection keeps them (same table), a
 *   dropped one loses them with its table;
 * - with FERRETDB_PG_URI too, a btree expression index per keyset list of
 *   the projection (cqrs_projection_t.keysets): what query-svc reads those
 *   lists' pages through, since FerretDB v1 pushes neither sort, limit nor
 *   range down (18-34 s a page at 100,000 documents without it; see
 *   cqrs/ferretdb_keyset.h);
 * - with FERRETDB_PG_URI too, the version guard (cqrs_ferretdb_pg_monotonic):
 *   a trigger that skips a row update taking CQRS_PROJECTION_VERSION lower,
 *   since FerretDB v1 applies the guarded update's filter and its write as
 *   two steps, and an older version could overwrite a newer one whenever two
 *   writers meet on a document (a rebuild's handoff, a rebalance, a zombie).
 *   A real MongoDB applies the filter atomically and needs none. */
#ifndef CQRS_INDEXES_H
#define CQRS_INDEXES_H

#include "projection.h"

#include "cqrs/config.h"
#include "cqrs/log.h"

#include <mongoc/mongoc.h>

/* Makes sure db.collection exists with proj's indexes (and, with
 * cfg->ferretdb_pg_uri, the GIN and keyset indexes and the version guard). Borrowed: everything. False with
 * err when the store refused or did not answer. */
bool cqrs_indexes_ensure(const cqrs_config_t *cfg, const cqrs_log_t *log, mongoc_client_pool_t *pool, const char *db,
                         const char *collection, const cqrs_projection_t *proj, cqrs_error_t *err);

/* The fields that get a GIN index: "_id" and the first key of each of proj's
 * indexes, without repeats, copied into out (at most max - 1 of them, then an
 * empty string). Returns how many. */
size_t cqrs_indexes_gin_fields(const cqrs_projection_t *proj, char out[][64], size_t max);

#endif
