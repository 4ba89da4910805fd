/* The waiter hub's poll on FerretDB over PostgreSQL (see version_probe.h). */
#include "version_probe.h"

#include "single_read.h"

#include "cqrs/alloc.h"
#include "cqrs/ferretdb_pg.h"
#include "cqrs/map.h"
#include "cqrs/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECONNECT_MS 1000 /* after PostgreSQL failed, the next try; finds serve meanwhile */
#define FORGET_RUNS 200   /* a document or table not waited on for this many polls leaves the cache */
/* A poll reads the documents whose versions moved side by side: on the hub's
 * client and on up to PROBE_FETCHERS more of the pool's, one for every
 * PROBE_FETCH_SHARE documents. Why: one after the other they kept the hub
 * busy about 70% of the time at 500 commands/s (18 documents a poll, 1.4 ms
 * each), so anything that slowed the store for a moment (PostgreSQL's
 * autovacuum analyzing the table) left the hub behind for seconds. */
#define PROBE_FETCHERS 3
#define PROBE_FETCH_SHARE 4

/* The last document the probe read for a value, and at which version. */
typedef struct {
  int64_t version;
  bson_t *doc;
  uint64_t seen; /* the poll that last asked for it */
} cached_t;

/* The quoted "schema"."table" of one db.collection. */
typedef struct {
  char *sql;
  uint64_t seen; /* the poll that last used it */
} table_t;

struct cqrs_version_probe {
  const char *uri;
  int timeout_ms;
  const cqrs_log_t *log;
  cqrs_metrics_t *metrics;
  mongoc_client_pool_t *pool; /* for the fetchers; NULL: the hub's client alone */
  PGconn *conn;
  int64_t retry_at;
  bool down; /* logged as down: log the way back once */
  cqrs_map_t *tables; /* "<db>\n<collection>" -> table_t */
  cqrs_map_t *cache;  /* "<db>\n<collection>\n<value>" -> cached_t */
  uint64_t runs;
};

static void cached_free(void *v) {
  cached_t *c = v;
  if (c->doc) bson_destroy(c->doc);
  free(c);
}

static void table_free(void *v) {
  table_t *t = v;
  free(t->sql);
  free(t);
}

cqrs_version_probe_t *cqrs_version_probe_new(const char *pg_uri, int timeout_ms, mongoc_client_pool_t *pool,
                                             const cqrs_log_t *log, cqrs_metrics_t *metrics) {
  cqrs_version_probe_t *p = cqrs_xcalloc(1, sizeof *p);
  *p = (cqrs_version_probe_t){.uri = pg_uri, .timeout_ms = timeout_ms, .pool = pool, .log = log, .metrics = metrics};
  p->tables = cqrs_map_new(table_free);
  p->cache = cqrs_map_new(cached_free);
  cqrs_metrics_describe(metrics, "read_wait_fetches_total", CQRS_METRIC_COUNTER,
                        "Documents the waiter hub read because their version moved (FerretDB version probe).");
  cqrs_metrics_add(metrics, "read_wait_fetches_total", NULL, 0);
  return p;
}

/* PostgreSQL failed: drop the connection, try again in a while. */
static void went_down(cqrs_version_probe_t *p, const char *error) {
  PQfinish(p->conn);
  p->conn = NULL;
  cqrs_map_clear(p->tables);
  p->retry_at = cqrs_time_monotonic_ms() + RECONNECT_MS;
  if (!p->down)
    cqrs_log_warn(p->log, "the version probe's PostgreSQL did not answer; waiting reads use finds meanwhile", "error",
                  error, NULL);
  p->down = true;
}

static bool connected(cqrs_version_probe_t *p) {
  if (p->conn) return true;
  if (cqrs_time_monotonic_ms() < p->retry_at) return false;
  cqrs_error_t err = {0};
  if (!(p->conn = cqrs_ferretdb_pg_connect(p->uri, "query-svc", p->timeout_ms, p->timeout_ms, &err))) {
    went_down(p, err.message);
    return false;
  }
  if (p->down) cqrs_log_info(p->log, "the version probe's PostgreSQL answers again", NULL);
  p->down = false;
  return true;
}

/* The quoted table of db.collection (key "<db>\n<collection>"), or NULL
 * when FerretDB has no table for it (yet): the find serves. Each database is
 * its own schema. */
static const char *resolve(cqrs_version_probe_t *p, const char *key, const char *db, const char *collection) {
  table_t *t = cqrs_map_get(p->tables, key);
  if (t) {
    t->seen = p->runs;
    return t->sql;
  }
  char *raw;
  cqrs_error_t err = {0};
  if (!cqrs_ferretdb_pg_table(p->conn, db, collection, &raw, &err)) {
    if (PQstatus(p->conn) != CONNECTION_OK) went_down(p, err.message);
    return NULL;
  }
  char *schema = PQescapeIdentifier(p->conn, db, strlen(db));
  char *table = PQescapeIdentifier(p->conn, raw, strlen(raw));
  free(raw);
  char *sql = NULL;
  if (schema && table) {
    size_t n = strlen(schema) + strlen(table) + 2;
    sql = cqrs_xmalloc(n);
    snprintf(sql, n, "%s.%s", schema, table);
    t = cqrs_xcalloc(1, sizeof *t);
    *t = (table_t){sql, p->runs};
    cqrs_map_put(p->tables, key, t);
  }
  PQfreemem(schema);
  PQfreemem(table);
  return sql;
}

/* values as a PostgreSQL text[] literal: {"a","b"} with " and \ escaped. */
static void text_array(bson_string_t *s, bson_iter_t *values) {
  bson_string_append_c(s, '{');
  bool first = true;
  while (bson_iter_next(values)) {
    if (!BSON_ITER_HOLDS_UTF8(values)) continue;
    if (!first) bson_string_append_c(s, ',');
    first = false;
    bson_string_append_c(s, '"');
    for (const char *c = bson_iter_utf8(values, NULL); *c; c++) {
      if (*c == '"' || *c == '\\') bson_string_append_c(s, '\\');
      bson_string_append_c(s, *c);
    }
    bson_string_append_c(s, '"');
  }
  bson_string_append_c(s, '}');
}

/* read's document for value, through the store: the find a single read
 * makes (an index-backed point find). */
static bool fetch(mongoc_collection_t *coll, const cqrs_single_read_t *read, const char *value, bson_t **doc,
                  bson_error_t *error) {
  bson_t filter, opts;
  cqrs_single_read_query(read, value, &filter, &opts);
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
  const bson_t *d;
  *doc = mongoc_cursor_next(cur, &d) ? bson_copy(d) : NULL;
  bool ok = !mongoc_cursor_error(cur, error);
  mongoc_cursor_destroy(cur);
  bson_destroy(&filter);
  bson_destroy(&opts);
  return ok;
}

static bool stale_entry(const char *key, void *value, void *ctx) {
  (void)key;
  return ((cached_t *)value)->seen + FORGET_RUNS < *(uint64_t *)ctx;
}

static bool stale_table(const char *key, void *value, void *ctx) {
  (void)key;
  return ((table_t *)value)->seen + FORGET_RUNS < *(uint64_t *)ctx;
}

/* The documents a poll reads because their versions moved, shared by the
 * threads reading them: each takes the next value until none is left. */
typedef struct {
  mongoc_client_pool_t *pool;
  const char *db, *collection;
  const cqrs_single_read_t *read;
  const char **values; /* n of them, borrowed from the poll's PGresult */
  bson_t **docs;       /* out: each value's document (NULL: none) */
  size_t n;
  atomic_size_t next;
  atomic_bool failed;
  bson_error_t error;  /* the first failure: written by the thread that set failed */
} fetches_t;

/* Reads f's documents with client until none is left or one failed. */
static void fetch_some(fetches_t *f, mongoc_client_t *client) {
  mongoc_collection_t *coll = mongoc_client_get_collection(client, f->db, f->collection);
  for (size_t i; !atomic_load(&f->failed) && (i = atomic_fetch_add(&f->next, 1)) < f->n;) {
    bson_error_t e = {0};
    if (!fetch(coll, f->read, f->values[i], &f->docs[i], &e) && !atomic_exchange(&f->failed, true)) f->error = e;
  }
  mongoc_collection_destroy(coll);
}

static void *fetcher_main(void *arg) {
  fetches_t *f = arg;
  mongoc_client_t *client = mongoc_client_pool_pop(f->pool);
  fetch_some(f, client);
  mongoc_client_pool_push(f->pool, client);
  return NULL;
}

/* Reads f's documents: on the hub's client, and with more of the pool's on
 * threads of their own when there are several (PROBE_FETCHERS at most, at
 * least PROBE_FETCH_SHARE documents each). False with f->error when a find
 * failed. */
static bool fetch_all(fetches_t *f, mongoc_client_t *client) {
  pthread_t th[PROBE_FETCHERS];
  size_t helpers = f->pool ? f->n / PROBE_FETCH_SHARE : 0, started = 0;
  if (helpers > PROBE_FETCHERS) helpers = PROBE_FETCHERS;
  for (size_t i = 0; i < helpers; i++)
    if (pthread_create(&th[started], NULL, fetcher_main, f) == 0) started++;
  fetch_some(f, client);
  for (size_t i = 0; i < started; i++) pthread_join(th[i], NULL);
  return !atomic_load(&f->failed);
}

/* The version of row i of the probe's answer r. */
static int64_t row_version(const PGresult *r, int i) {
  return PQgetisnull(r, i, 1) ? 0 : strtoll(PQgetvalue(r, i, 1), NULL, 10);
}

/* Reads the documents of the rows of r (value, version) the cache does not
 * hold at that version, side by side (fetch_all), and caches them under
 * "<place>\n<value>". False with error when a find failed: nothing is cached
 * then. */
static bool refresh(cqrs_version_probe_t *p, mongoc_client_t *client, const char *place, const char *db,
                    const char *collection, const cqrs_single_read_t *read, const PGresult *r, bson_error_t *error) {
  int rows = PQntuples(r);
  size_t n = 0, cap = rows > 0 ? (size_t)rows : 1;
  int *moved = cqrs_xcalloc(cap, sizeof *moved);
  const char **values = cqrs_xcalloc(cap, sizeof *values);
  char key[1024];
  for (int i = 0; i < rows; i++) {
    snprintf(key, sizeof key, "%s\n%s", place, PQgetvalue(r, i, 0));
    cached_t *c = cqrs_map_get(p->cache, key);
    if (!c || c->version != row_version(r, i)) {
      moved[n] = i;
      values[n++] = PQgetvalue(r, i, 0);
    }
  }
  fetches_t f = {.pool = p->pool, .db = db, .collection = collection, .read = read, .values = values,
                 .docs = cqrs_xcalloc(cap, sizeof(bson_t *)), .n = n};
  bool ok = n == 0 || fetch_all(&f, client);
  for (size_t k = 0; k < n; k++) {
    if (!ok) {
      if (f.docs[k]) bson_destroy(f.docs[k]);
      continue;
    }
    cached_t *c = cqrs_xcalloc(1, sizeof *c);
    c->doc = f.docs[k];
    c->version = row_version(r, moved[k]);
    snprintf(key, sizeof key, "%s\n%s", place, values[k]);
    cqrs_map_put(p->cache, key, c);
  }
  if (ok)
    cqrs_metrics_add(p->metrics, "read_wait_fetches_total", NULL, (double)n);
  else
    *error = f.error;
  free(f.docs);
  free(moved);
  free(values);
  return ok;
}

cqrs_probe_result_t cqrs_version_probe_run(cqrs_version_probe_t *p, mongoc_client_t *client, const char *db,
                                           const char *collection, cqrs_wait_batch_t *b, bson_error_t *error) {
  const cqrs_single_read_t *read = cqrs_wait_batch_read(b);
  bson_iter_t it, in, values;
  if (read->sort || !connected(p)) return CQRS_PROBE_NOT_HERE;
  char place[512];
  snprintf(place, sizeof place, "%s\n%s", db, collection);
  const char *table_sql = resolve(p, place, db, collection);
  if (!table_sql) return CQRS_PROBE_NOT_HERE;
  /* the batch's filter: {field: {$in: [values...]}} */
  if (!bson_iter_init(&it, cqrs_wait_batch_filter(b)) || !bson_iter_next(&it) || !bson_iter_recurse(&it, &in) ||
      !bson_iter_find(&in, "$in") || !bson_iter_recurse(&in, &values))
    return CQRS_PROBE_NOT_HERE;
  const char *field = bson_iter_key(&it);
  bson_string_t *arr = bson_string_new(NULL);
  text_array(arr, &values);
  char *lit = PQescapeLiteral(p->conn, field, strlen(field));
  char sql[1024];
  /* ARRAY(...) is computed once, so "= ANY" is an index condition on
   * FerretDB's own index on (_jsonb->'_id'). */
  snprintf(sql, sizeof sql,
           "SELECT _jsonb->>%s, _jsonb->>'version' FROM %s WHERE _jsonb->%s = ANY "
           "(ARRAY(SELECT to_jsonb(v) FROM unnest($1::text[]) AS v))",
           lit ? lit : "''", table_sql, lit ? lit : "''");
  PQfreemem(lit);
  const char *params[] = {arr->str};
  PGresult *r = PQexecParams(p->conn, sql, 1, NULL, params, NULL, NULL, 0);
  bson_string_free(arr, true);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    if (PQstatus(p->conn) != CONNECTION_OK)
      went_down(p, PQerrorMessage(p->conn));
    else /* e.g. the table went with a rebuild's swap: resolve again next time */
      cqrs_map_delete(p->tables, place);
    PQclear(r);
    return CQRS_PROBE_NOT_HERE;
  }
  p->runs++;
  cqrs_probe_result_t result = refresh(p, client, place, db, collection, read, r, error)
                                   ? CQRS_PROBE_DONE
                                   : CQRS_PROBE_STORE_ERROR;
  for (int i = 0; result == CQRS_PROBE_DONE && i < PQntuples(r); i++) {
    char key[1024];
    snprintf(key, sizeof key, "%s\n%s", place, PQgetvalue(r, i, 0));
    cached_t *c = cqrs_map_get(p->cache, key);
    c->seen = p->runs;
    if (c->doc) cqrs_wait_batch_offer(b, c->doc);
  }
  PQclear(r);
  cqrs_map_filter(p->cache, stale_entry, &p->runs);
  cqrs_map_filter(p->tables, stale_table, &p->runs);
  return result;
}

void cqrs_version_probe_destroy(cqrs_version_probe_t *p) {
  if (!p) return;
  PQfinish(p->conn);
  cqrs_map_destroy(p->tables);
  cqrs_map_destroy(p->cache);
  free(p);
}
