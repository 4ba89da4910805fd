/* query-svc's keyset lists on FerretDB v1 over PostgreSQL (FERRETDB_PG_URI):
 * which lists page on a keyset index of their read model
 * (cqrs_projection_t.keysets, made by the projector), and one page's ids
 * with their sort values, read from PostgreSQL itself through that index.
 *
 * Why: FerretDB v1 pushes neither sort, limit nor range down, so its find
 * took 18-34 s for one page of orders by status, active customers or
 * customers by email prefix at 100,000 documents, and query-svc answered 503
 * after MONGO_TIMEOUT_MS; through the index the ids of a page take 0.2-1.9 ms
 * at any depth (cqrs/ferretdb_keyset.h, BENCHMARKS.md). The documents are
 * then read through FerretDB by _id (routes/page.c), so decoding FerretDB's
 * storage stays FerretDB's.
 *
 * Each Mongo database (a tenant's "<MONGO_DB>_<tenant>") is its own schema;
 * a collection's table is looked up in FerretDB's metadata once and kept.
 * Every PostgreSQL wait is bounded by timeout_ms (connecting, and each
 * statement through statement_timeout); after a failure the next connection
 * is tried a second later, and meanwhile reads fail at once. Thread-safe: the
 * HTTP loops share one, each read on a connection of its own. */
#ifndef CQRS_PG_LISTS_H
#define CQRS_PG_LISTS_H

#include "cqrs/error.h"
#include "cqrs/ferretdb_keyset.h"
#include "cqrs/log.h"

#include <bson/bson.h>

typedef struct cqrs_pg_lists cqrs_pg_lists_t;

/* Lists read through the PostgreSQL at pg_uri (borrowed, like log); it
 * connects on first use. This function can't fail. */
cqrs_pg_lists_t *cqrs_pg_lists_new(const char *pg_uri, int timeout_ms, const cqrs_log_t *log);

/* Closes its connections. NULL is fine. */
void cqrs_pg_lists_destroy(cqrs_pg_lists_t *l);

/* Whether read_model's list with filter, sorted on (sort_field, _id), pages
 * on one of the read model's keyset indexes: true with q filled as
 * cqrs_keyset_match does (strings borrowed from filter). False when l is
 * NULL (no FERRETDB_PG_URI: the store's find serves every list). This
 * function can't fail. */
bool cqrs_pg_lists_match(const cqrs_pg_lists_t *l, const char *read_model, const bson_t *filter,
                         const char *sort_field, cqrs_keyset_query_t *q);

/* One page's rows in the list's order: ids[i] and values[i] (the sort key),
 * owned; cqrs_pg_page_cleanup frees them. */
typedef struct {
  size_t n;
  char **ids;
  char **values;
} cqrs_pg_page_t;

void cqrs_pg_page_cleanup(cqrs_pg_page_t *p);

typedef enum {
  CQRS_PG_LIST_DONE,     /* *out holds the page's rows */
  CQRS_PG_LIST_NO_TABLE, /* FerretDB has no table for db.collection (yet): the store's find serves */
  CQRS_PG_LIST_FAILED,   /* PostgreSQL failed or did not answer in time: err says why */
} cqrs_pg_list_result_t;

/* Reads q's page of db.collection (out zeroed first). */
cqrs_pg_list_result_t cqrs_pg_lists_read(cqrs_pg_lists_t *l, const char *db, const char *collection,
                                         const cqrs_keyset_query_t *q, cqrs_pg_page_t *out, cqrs_error_t *err);

#endif
