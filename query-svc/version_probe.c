/* The waiter hub's poll on FerretDB over PostgreSQL (see version_probe.h). */
#include "version_probe.h"

#include "single_read.h"

#include "cqrs/alloc.h"
#include "cqrs/ferretdb_pg.h"
#include "cqrs/map.h"
#include "cqrs/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECONNECT_MS 1000 /* after PostgreSQL failed, the next try; finds serve meanwhile */
#define FORGET_RUNS 200   /* a document or table not waited on for this many polls leaves the cache */

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

cqrs_version_probe_t *cqrs_version_probe_new(const char *pg_uri, int timeout_ms, const cqrs_log_t *log,
                                             cqrs_metrics_t *metrics) {
  cqrs_version_probe_t *p = cqrs_xcalloc(1, sizeof *p);
  *p = (cqrs_version_probe_t){.uri = pg_uri, .timeout_ms = timeout_ms, .log = log, .metrics = metrics};
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
  cqrs_probe_result_t result = CQRS_PROBE_DONE;
  mongoc_collection_t *coll = NULL;
  for (int i = 0; i < PQntuples(r); i++) {
    const char *value = PQgetvalue(r, i, 0);
    int64_t version = PQgetisnull(r, i, 1) ? 0 : strtoll(PQgetvalue(r, i, 1), NULL, 10);
    char key[1024];
    snprintf(key, sizeof key, "%s\n%s", place, value);
    cached_t *c = cqrs_map_get(p->cache, key);
    if (!c || c->version != version) {
      bson_t *doc;
      if (!coll) coll = mongoc_client_get_collection(client, db, collection);
      if (!fetch(coll, read, value, &doc, error)) {
        result = CQRS_PROBE_STORE_ERROR;
        break;
      }
      cqrs_metrics_add(p->metrics, "read_wait_fetches_total", NULL, 1);
      c = cqrs_xcalloc(1, sizeof *c);
      c->doc = doc;
      c->version = version;
      cqrs_map_put(p->cache, key, c);
    }
    c->seen = p->runs;
    if (c->doc) cqrs_wait_batch_offer(b, c->doc);
  }
  PQclear(r);
  if (coll) mongoc_collection_destroy(coll);
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
