/* The PostgreSQL behind a FerretDB v1 store (FERRETDB_PG_URI), for the
 * places that talk to it directly because FerretDB's own query path cannot
 * use an index there, or cannot keep a guarantee: the projector's GIN and
 * keyset indexes and its version guard (projector-svc/indexes.h), the waiter hub's version probe
 * (query-svc/version_probe.h) and the lists' keyset pages
 * (query-svc/pg_lists.h, cqrs/ferretdb_keyset.h). Each Mongo
 * database is a schema; FerretDB's metadata table in it maps a collection to
 * its table, whose one column _jsonb holds the documents. */
#ifndef CQRS_FERRETDB_PG_H
#define CQRS_FERRETDB_PG_H

#include "cqrs/error.h"

#include <libpq-fe.h>

/* Connects to uri (a libpq URI or conninfo) as application app, giving up
 * after timeout_ms (at least 1 s: libpq counts whole seconds); with
 * statement_timeout_ms > 0 every statement is bounded by it. NULL with err
 * (naming FERRETDB_PG_URI) when it cannot. Close with PQfinish. */
PGconn *cqrs_ferretdb_pg_connect(const char *uri, const char *app, int timeout_ms, int statement_timeout_ms,
                                 cqrs_error_t *err);

/* The name of the table FerretDB keeps db.collection in, unquoted, into *table
 * (free with free). False with err when PostgreSQL fails or FerretDB has no
 * such collection there. */
bool cqrs_ferretdb_pg_table(PGconn *c, const char *db, const char *collection, char **table, cqrs_error_t *err);

/* Makes sure the table FerretDB keeps db.collection in (its name into *table,
 * free with free; may be NULL) has a GIN expression index
 * `(_jsonb->'<field>') jsonb_path_ops` on each of fields[0..n), created
 * without a pending list (fastupdate off). Why: FerretDB v1 runs an equality
 * filter as `_jsonb->'<field>' @> '<value>'`, which its own btree indexes
 * cannot serve: every lookup scanned the table (12 guarded upserts/s at
 * 100,000 documents against 99-215/s with these; a find by _id right after a
 * bulk load took 7.9 ms with a pending list and 0.1 ms without, BENCHMARKS.md).
 * Idempotent (named cqrs_gin_<hash of table and field>). False with err. */
bool cqrs_ferretdb_pg_gin_indexes(PGconn *c, const char *db, const char *collection, const char *const *fields,
                                  size_t n, char **table, cqrs_error_t *err);

/* Makes sure the table FerretDB keeps db.collection in has the btree
 * expression index a keyset list pages on, over keys[0..n) in order
 * (cqrs/ferretdb_keyset.h), named cqrs_keyset_<hash of table and keys>.
 * Idempotent. False with err when PostgreSQL fails, FerretDB has no such
 * collection, or the keys are not plain names. */
bool cqrs_ferretdb_pg_keyset_index(PGconn *c, const char *db, const char *collection, const char *const *keys,
                                   size_t n, cqrs_error_t *err);

/* The statistics target of the read models' index expressions (PostgreSQL's
 * default is 100). */
#define CQRS_FERRETDB_PG_INDEX_STATISTICS 10

/* Makes PostgreSQL's ANALYZE of the table FerretDB keeps db.collection in
 * cheap: no statistics on its one column, _jsonb (target 0), and
 * CQRS_FERRETDB_PG_INDEX_STATISTICS on the expression of every index on it,
 * which is what the planner uses for FerretDB's `_jsonb->'<field>'` filters.
 * Why: ANALYZE sampled and hashed 30,000 whole documents; for 20,000
 * user_profiles it cost 690 ms of CPU, 180 ms without the column's
 * statistics, 25 ms with the index expressions at 10, and at 500 commands/s
 * on two cores an autovacuum ANALYZE held the projector's writes and the
 * waiting reads up for seconds (BENCHMARKS.md). Ten buckets are enough for
 * what the read models ask: unique keys, a few statuses, keyset pages read
 * in index order under a LIMIT (the plans test checks every lookup is still
 * index-backed). Call after creating the indexes. Idempotent (no DDL, no
 * lock once set). False with err. */
bool cqrs_ferretdb_pg_lean_analyze(PGconn *c, const char *db, const char *collection, cqrs_error_t *err);

/* Makes sure the table FerretDB keeps db.collection in refuses an update that
 * takes a document's numeric field `field` lower: a BEFORE UPDATE trigger
 * (cqrs_guard_<hash>) that skips such a row update, so the update changes
 * nothing, as the version guard's filter would on MongoDB. Why: FerretDB v1
 * runs update_one({_id, version: {$lt: v}}, ...) as a read, then an UPDATE
 * by _id, not atomically; with two writers of one document (a rebuild and the
 * live loop after a swap, the old and the new owner of a partition in a
 * rebalance, a frozen zombie) an older version could overwrite a newer one:
 * 101-130 of 2,000 reads below the writer's own version with two racing
 * writers (tests/bench/store_guard_race.c), none with the trigger. Documents
 * without the field, or with a non-numeric one, are not guarded. The function
 * lives in db's schema (dropped with the database). Idempotent and safe to
 * run concurrently (an advisory lock around the DDL). False with err. */
bool cqrs_ferretdb_pg_monotonic(PGconn *c, const char *db, const char *collection, const char *field,
                                cqrs_error_t *err);

#endif
