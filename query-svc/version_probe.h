/* The waiter hub's poll on FerretDB v1 over PostgreSQL (FERRETDB_PG_URI).
 *
 * Why: FerretDB v1 pushes no $in down, so the hub's one find per tick,
 * {_id: {$in: [...]}}, read the whole collection: 18-34 s at 100,000
 * documents with a few at once, and command-to-visible broke at 100
 * commands/s (BENCHMARKS.md). The probe asks PostgreSQL itself, through the
 * unique index FerretDB keeps on _id, for the version of every document
 * waited on: still one store round trip per tick for all waiters of a read
 * (0.2 ms at 100,000 documents), and a document is read through FerretDB (a
 * point find, index-backed) only when its version moved since the probe last
 * read it. So the store's work is a query per tick plus a find per document
 * written, never a scan.
 *
 * Each Mongo database is a PostgreSQL schema in FerretDB, so a tenant's
 * database "<MONGO_DB>_<tenant>" is probed in its own schema: the probe is
 * told the database with every batch and never mixes two tenants' tables or
 * cached documents.
 *
 * Only for reads on a unique field (no sort): _id. Owned by the hub thread. */
#ifndef CQRS_VERSION_PROBE_H
#define CQRS_VERSION_PROBE_H

#include "waitset.h"

#include "cqrs/log.h"
#include "cqrs/metrics.h"

#include <mongoc/mongoc.h>

typedef struct cqrs_version_probe cqrs_version_probe_t;

/* A probe on the PostgreSQL at pg_uri (borrowed, like pool, log and
 * metrics) behind the store; it connects on first use. Every PostgreSQL wait
 * is bounded by timeout_ms. The documents a poll reads through the store go
 * side by side on clients of pool (NULL: one after the other on the hub's).
 * This function can't fail. */
cqrs_version_probe_t *cqrs_version_probe_new(const char *pg_uri, int timeout_ms, mongoc_client_pool_t *pool,
                                             const cqrs_log_t *log, cqrs_metrics_t *metrics);

typedef enum {
  CQRS_PROBE_DONE,        /* b got the documents of its values, as its find would have given them */
  CQRS_PROBE_NOT_HERE,    /* not for this read, or PostgreSQL did not answer: run b's find instead */
  CQRS_PROBE_STORE_ERROR, /* a point find failed: error says why */
} cqrs_probe_result_t;

/* Polls batch b of a round, whose read model is in db.collection (b's
 * tenant's database), offering its documents to b. client is the hub's. */
cqrs_probe_result_t cqrs_version_probe_run(cqrs_version_probe_t *p, mongoc_client_t *client, const char *db,
                                           const char *collection, cqrs_wait_batch_t *b, bson_error_t *error);

void cqrs_version_probe_destroy(cqrs_version_probe_t *p);

#endif
