/* read_bench seed-lists, explain and raw-list (read_bench.h): the read models
 * of the list queries, the PostgreSQL plan FerretDB runs for each query shape,
 * and each shape's rate straight from libmongoc. */
#include "read_bench.h"
#include "bench_stats.h"

#include "projection.h"

#include "cqrs/ferretdb_keyset.h"
#include "cqrs/ferretdb_pg.h"
#include "cqrs/util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- seed-lists ---- */

static const char *const ORDER_STATUSES[] = {"Created", "Processing", "Shipped", "Delivered", "Cancelled"};
static const char *const FIRST_NAMES[] = {"anna",  "ben",   "carla", "david", "emma",  "felix", "greta",
                                          "hugo",  "ines",  "jonas", "karin", "leo",   "maria", "nils",
                                          "olga",  "paul",  "rosa",  "sven",  "tina",  "uwe"};
#define N_FIRST (sizeof FIRST_NAMES / sizeof *FIRST_NAMES)
#define SEED_EPOCH 1790000000 /* 2026-09-22: documents spread over the year before */

static void rfc3339(int64_t secs, char out[32]) {
  time_t t = (time_t)secs;
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A small deterministic mix, so the same run seeds the same documents. */
static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

/* Order k, the (k % 10)th of user k / 10: one to three items, one status of five. */
static void order_doc(const rb_ids_t *users, size_t k, const char *prefix, bson_t *d) {
  size_t u = k / 10;
  char id[CQRS_UUID_LEN], name[96], at[32], upd[32];
  snprintf(name, sizeof name, "%sorder-%zu", prefix, k);
  cqrs_uuid_from_name(name, id);
  uint64_t h = mix(k + 1);
  int64_t created = SEED_EPOCH - (int64_t)(h % (365 * 86400));
  rfc3339(created, at);
  size_t st = (size_t)(h >> 20) % 5;
  rfc3339(created + (int64_t)st * 3600, upd);
  BSON_APPEND_UTF8(d, "_id", id);
  BSON_APPEND_UTF8(d, "orderId", id);
  BSON_APPEND_UTF8(d, "userId", users->id[u]);
  bson_t items, it;
  BSON_APPEND_ARRAY_BEGIN(d, "items", &items);
  double total = 0;
  for (size_t i = 0, n = 1 + (size_t)(h >> 40) % 3; i < n; i++) {
    char key[4], product[32];
    snprintf(key, sizeof key, "%zu", i);
    snprintf(product, sizeof product, "SKU-%04u", (unsigned)((h >> (8 * i)) % 5000));
    int qty = 1 + (int)((h >> (4 * i + 2)) % 4);
    double price = (double)(199 + (h >> (6 * i)) % 9800) / 100.0;
    total += qty * price;
    bson_append_document_begin(&items, key, -1, &it);
    BSON_APPEND_UTF8(&it, "product", product);
    BSON_APPEND_INT32(&it, "quantity", qty);
    BSON_APPEND_DOUBLE(&it, "price", price);
    bson_append_document_end(&items, &it);
  }
  bson_append_array_end(d, &items);
  BSON_APPEND_DOUBLE(d, "totalAmount", total);
  BSON_APPEND_UTF8(d, "status", ORDER_STATUSES[st]);
  BSON_APPEND_UTF8(d, "createdAt", at);
  BSON_APPEND_UTF8(d, "updatedAt", upd);
  BSON_APPEND_INT64(d, "version", (int64_t)st + 1);
}

/* Customer k: <first>.<k / 20>@example.com, one in ten SUSPENDED. */
static void customer_doc(size_t k, const char *prefix, bson_t *d) {
  char id[CQRS_UUID_LEN], name[96], email[96], at[32], full[96];
  snprintf(name, sizeof name, "%scustomer-%zu", prefix, k);
  cqrs_uuid_from_name(name, id);
  snprintf(email, sizeof email, "%s.%zu@example.com", FIRST_NAMES[k % N_FIRST], k / N_FIRST);
  snprintf(full, sizeof full, "%c%s Customer %zu", FIRST_NAMES[k % N_FIRST][0] - 32, FIRST_NAMES[k % N_FIRST] + 1,
           k / N_FIRST);
  uint64_t h = mix(k + 7);
  rfc3339(SEED_EPOCH - (int64_t)(h % (3 * 365 * 86400)), at);
  bool suspended = k % 10 == 9;
  BSON_APPEND_UTF8(d, "_id", id);
  BSON_APPEND_UTF8(d, "customerId", id);
  BSON_APPEND_UTF8(d, "email", email);
  BSON_APPEND_UTF8(d, "name", full);
  BSON_APPEND_UTF8(d, "status", suspended ? "SUSPENDED" : "ACTIVE");
  BSON_APPEND_UTF8(d, "registrationDate", at);
  BSON_APPEND_UTF8(d, "lastUpdated", at);
  if (suspended) BSON_APPEND_UTF8(d, "suspensionReason", "payment overdue");
  else BSON_APPEND_NULL(d, "suspensionReason");
  BSON_APPEND_INT64(d, "version", suspended ? 2 : 1);
}

static bool insert_docs(mongoc_collection_t *coll, size_t n, size_t chunk, void (*make)(size_t, void *, bson_t *),
                        void *ctx, bson_error_t *e) {
  bson_t *docs = calloc(chunk, sizeof *docs);
  const bson_t **ptrs = calloc(chunk, sizeof *ptrs);
  bool ok = true;
  for (size_t a = 0; ok && a < n; a += chunk) {
    size_t k = a + chunk < n ? chunk : n - a;
    for (size_t i = 0; i < k; i++) {
      bson_init(&docs[i]);
      make(a + i, ctx, &docs[i]);
      ptrs[i] = &docs[i];
    }
    bson_t opts = BSON_INITIALIZER;
    BSON_APPEND_BOOL(&opts, "ordered", false);
    ok = mongoc_collection_insert_many(coll, ptrs, k, &opts, NULL, e);
    bson_destroy(&opts);
    for (size_t i = 0; i < k; i++) bson_destroy(&docs[i]);
  }
  free(docs);
  free(ptrs);
  return ok;
}

typedef struct {
  const rb_ids_t *users;
  const char *prefix;
} list_ctx_t;

static void make_order(size_t k, void *ctx, bson_t *d) {
  list_ctx_t *c = ctx;
  order_doc(c->users, k, c->prefix, d);
}

static void make_customer(size_t k, void *ctx, bson_t *d) {
  list_ctx_t *c = ctx;
  customer_doc(k, c->prefix, d);
}

static FILE *open_paths(const char *dir, const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (!f) {
    perror(path);
    exit(2);
  }
  return f;
}

int rb_seed_lists(const char *uri, const char *db, const char *idpath, long orders, long customers,
                      const char *outdir) {
  rb_ids_t users = rb_read_ids(idpath);
  if ((size_t)(orders + 9) / 10 > users.n) {
    fprintf(stderr, "%ld orders need %ld users, %s has %zu\n", orders, (orders + 9) / 10, idpath, users.n);
    return 2;
  }
  mongoc_client_pool_t *pool = rb_pool_new(uri, 1);
  mongoc_client_t *client = mongoc_client_pool_pop(pool);
  list_ctx_t ctx = {&users, db};
  bson_error_t e;
  mongoc_collection_t *oc = mongoc_client_get_collection(client, db, "order_summaries");
  int64_t t0 = bs_now_us();
  bool ok = insert_docs(oc, (size_t)orders, 500, make_order, &ctx, &e);
  double os = (double)(bs_now_us() - t0) / 1e6;
  mongoc_collection_t *cc = mongoc_client_get_collection(client, db, "customers");
  t0 = bs_now_us();
  ok = ok && insert_docs(cc, (size_t)customers, 500, make_customer, &ctx, &e);
  double cs = (double)(bs_now_us() - t0) / 1e6;
  mongoc_collection_destroy(oc);
  mongoc_collection_destroy(cc);
  mongoc_client_pool_push(pool, client);
  mongoc_client_pool_destroy(pool);
  if (!ok) {
    fprintf(stderr, "seed-lists: %s\n", e.message);
    return 1;
  }
  /* wrk path files (tests/bench/paths.lua picks a line at random per request) */
  FILE *f = open_paths(outdir, "orders_by_user.paths");
  for (size_t u = 0; u < (size_t)(orders + 9) / 10; u++) fprintf(f, "/v1/orders?userId=%s\n", users.id[u]);
  fclose(f);
  f = open_paths(outdir, "orders_by_status.paths");
  for (size_t s = 0; s < 5; s++) fprintf(f, "/v1/orders?status=%s\n", ORDER_STATUSES[s]);
  fclose(f);
  f = open_paths(outdir, "customers_by_status.paths");
  fprintf(f, "/v1/customers?status=ACTIVE\n");
  fclose(f);
  f = open_paths(outdir, "customers_by_email.paths"); /* <first>.<10..99>: about 111 customers each at 100k */
  for (size_t i = 0; i < N_FIRST; i++)
    for (int d = 10; d < 100; d += 7) fprintf(f, "/v1/customers?emailPrefix=%s.%d\n", FIRST_NAMES[i], d);
  fclose(f);
  f = open_paths(outdir, "users_by_email.paths");
  for (size_t i = 0; i < users.n; i += users.n / 1000 + 1) {
    char email[64], name[64];
    rb_user_fields(i, email, name);
    fprintf(f, "/v1/users?email=%s\n", email);
  }
  fclose(f);
  printf("seed-lists orders=%ld users_with_orders=%ld orders_seconds=%.2f orders_per_s=%.0f customers=%ld "
         "customers_seconds=%.2f customers_per_s=%.0f\n",
         orders, (orders + 9) / 10, os, (double)orders / os, customers, cs, (double)customers / cs);
  free(users.id);
  return 0;
}

/* ---- explain ---- */

/* "Limit > Sort > Bitmap Heap Scan on t > Bitmap Index Scan on i" */
static void plan_walk(bson_iter_t *node, bson_string_t *out) {
  bson_iter_t it, kids;
  const char *type = "?", *rel = NULL, *idx = NULL;
  bool has_kids = false;
  bson_iter_t copy = *node;
  while (bson_iter_next(&copy)) {
    const char *k = bson_iter_key(&copy);
    if (strcmp(k, "Node Type") == 0 && BSON_ITER_HOLDS_UTF8(&copy)) type = bson_iter_utf8(&copy, NULL);
    else if (strcmp(k, "Relation Name") == 0 && BSON_ITER_HOLDS_UTF8(&copy)) rel = bson_iter_utf8(&copy, NULL);
    else if (strcmp(k, "Index Name") == 0 && BSON_ITER_HOLDS_UTF8(&copy)) idx = bson_iter_utf8(&copy, NULL);
    else if (strcmp(k, "Plans") == 0 && BSON_ITER_HOLDS_ARRAY(&copy) && bson_iter_recurse(&copy, &kids))
      has_kids = true;
  }
  if (out->len) bson_string_append(out, " > ");
  bson_string_append(out, type);
  if (idx) bson_string_append_printf(out, " on %s", idx);
  else if (rel) bson_string_append_printf(out, " on %s", rel);
  if (!has_kids) return;
  bool first = true;
  while (bson_iter_next(&kids)) {
    if (!BSON_ITER_HOLDS_DOCUMENT(&kids) || !bson_iter_recurse(&kids, &it)) continue;
    if (!first) bson_string_append(out, " +");
    first = false;
    plan_walk(&it, out);
  }
}

/* One of query-svc's query shapes as query-svc sends it (query-svc/routes): the
 * collection, filter, sort (field, then _id) and limit of its find. */
typedef struct {
  const char *coll, *sort_field; /* sort_field NULL: no sort */
  bson_t filter;
  int64_t limit;
} shape_t;

/* False for an unknown shape. Call shape_cleanup either way. */
static bool shape_init(shape_t *q, const char *shape, const char *value) {
  bson_t range;
  *q = (shape_t){.limit = 51}; /* a list's default page, 50, and one more */
  bson_init(&q->filter);
  if (strcmp(shape, "id-in") == 0) { /* query-svc's waiter hub: one find for many waiting reads */
    bson_t in;
    q->coll = "user_profiles", q->limit = 0;
    BSON_APPEND_DOCUMENT_BEGIN(&q->filter, "_id", &range);
    BSON_APPEND_ARRAY_BEGIN(&range, "$in", &in);
    BSON_APPEND_UTF8(&in, "0", value);
    bson_append_array_end(&range, &in);
    bson_append_document_end(&q->filter, &range);
  } else if (strcmp(shape, "id") == 0 || strcmp(shape, "id-version") == 0) {
    q->coll = "user_profiles", q->limit = 1;
    BSON_APPEND_UTF8(&q->filter, "_id", value);
    if (strcmp(shape, "id-version") == 0) { /* the lookup of projector-svc's guarded update */
      BSON_APPEND_DOCUMENT_BEGIN(&q->filter, "version", &range);
      BSON_APPEND_INT64(&range, "$lt", 2);
      bson_append_document_end(&q->filter, &range);
    }
  } else if (strcmp(shape, "email") == 0) {
    q->coll = "user_profiles", q->sort_field = "createdAt", q->limit = 1;
    BSON_APPEND_UTF8(&q->filter, "email", value);
  } else if (strcmp(shape, "userId") == 0 || strcmp(shape, "status") == 0) {
    q->coll = "order_summaries", q->sort_field = "createdAt";
    BSON_APPEND_UTF8(&q->filter, shape, value);
  } else if (strcmp(shape, "customer-status") == 0) {
    q->coll = "customers", q->sort_field = "registrationDate";
    BSON_APPEND_UTF8(&q->filter, "status", value);
  } else if (strcmp(shape, "email-prefix") == 0) {
    q->coll = "customers", q->sort_field = "email";
    char *upper = bson_strdup_printf("%s\xf4\x8f\xbf\xbf", value); /* as routes/customers.c */
    BSON_APPEND_DOCUMENT_BEGIN(&q->filter, "email", &range);
    BSON_APPEND_UTF8(&range, "$gte", value);
    BSON_APPEND_UTF8(&range, "$lt", upper);
    bson_append_document_end(&q->filter, &range);
    bson_free(upper);
  } else {
    fprintf(stderr, "unknown shape %s\n", shape);
    return false;
  }
  return true;
}

/* The find's options: sort, limit, one batch. */
static void shape_opts(const shape_t *q, bson_t *opts) {
  bson_t sort;
  if (q->sort_field) {
    BSON_APPEND_DOCUMENT_BEGIN(opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, q->sort_field, 1);
    BSON_APPEND_INT32(&sort, "_id", 1);
    bson_append_document_end(opts, &sort);
  }
  if (q->limit) BSON_APPEND_INT64(opts, "limit", q->limit);
  BSON_APPEND_BOOL(opts, "singleBatch", true);
}

static void shape_cleanup(shape_t *q) { bson_destroy(&q->filter); }

int rb_explain(const char *uri, const char *db, const char *shape, const char *value) {
  shape_t q;
  if (!shape_init(&q, shape, value)) {
    shape_cleanup(&q);
    return 2;
  }
  bson_t cmd = BSON_INITIALIZER, find;
  BSON_APPEND_DOCUMENT_BEGIN(&cmd, "explain", &find);
  BSON_APPEND_UTF8(&find, "find", q.coll);
  BSON_APPEND_DOCUMENT(&find, "filter", &q.filter);
  shape_opts(&q, &find);
  bson_append_document_end(&cmd, &find);
  BSON_APPEND_UTF8(&cmd, "verbosity", "queryPlanner");
  mongoc_client_pool_t *pool = rb_pool_new(uri, 1);
  mongoc_client_t *client = mongoc_client_pool_pop(pool);
  bson_t reply;
  bson_error_t e;
  bool ok = mongoc_client_command_simple(client, db, &cmd, NULL, &reply, &e);
  bson_iter_t it, plan;
  bson_string_t *out = bson_string_new(NULL);
  if (ok && bson_iter_init(&it, &reply) && bson_iter_find_descendant(&it, "queryPlanner.Plan", &plan) &&
      BSON_ITER_HOLDS_DOCUMENT(&plan) && bson_iter_recurse(&plan, &it))
    plan_walk(&it, out);
  const char *flags[] = {"filterPushdown", "sortPushdown", "limitPushdown"};
  char fl[3][8] = {"?", "?", "?"};
  for (int i = 0; ok && i < 3; i++)
    if (bson_iter_init_find(&it, &reply, flags[i]) && BSON_ITER_HOLDS_BOOL(&it))
      snprintf(fl[i], sizeof fl[i], "%s", bson_iter_bool(&it) ? "true" : "false");
  if (ok)
    printf("explain shape=%s collection=%s filterPushdown=%s sortPushdown=%s limitPushdown=%s plan=\"%s\"\n", shape,
           q.coll, fl[0], fl[1], fl[2], out->str);
  else
    printf("explain shape=%s collection=%s error=\"%s\"\n", shape, q.coll, e.message);
  bson_string_free(out, true);
  bson_destroy(&reply);
  bson_destroy(&cmd);
  shape_cleanup(&q);
  mongoc_client_pool_push(pool, client);
  mongoc_client_pool_destroy(pool);
  return ok ? 0 : 1;
}

/* ---- the keyset path (query-svc/pg_lists.h) ---- */

/* q's list as query-svc's keyset path reads it: the statement over the
 * projection's keyset index (cqrs/ferretdb_keyset.h). False when the shape
 * pages on none. */
static bool shape_keyset(const shape_t *q, cqrs_keyset_query_t *k) {
  const cqrs_projection_t *proj = cqrs_projection_find(q->coll);
  if (!proj || !q->sort_field || !cqrs_projection_keyset_match(proj, &q->filter, q->sort_field, k)) return false;
  k->limit = q->limit;
  return true;
}

/* A session like query-svc's (CQRS_KEYSET_SESSION_SQL); NULL after printing why. */
static PGconn *keyset_session(const char *pg_uri) {
  cqrs_error_t err = {0};
  PGconn *c = cqrs_ferretdb_pg_connect(pg_uri, "read_bench", 5000, 60000, &err);
  PGresult *r = c ? PQexec(c, CQRS_KEYSET_SESSION_SQL) : NULL;
  if (!c || PQresultStatus(r) != PGRES_COMMAND_OK) {
    fprintf(stderr, "%s\n", c ? PQerrorMessage(c) : err.message);
    PQfinish(c);
    c = NULL;
  }
  PQclear(r);
  return c;
}

/* The statement of q's first page on db's table (to free), params into
 * params; NULL after printing why. *table: the table's name, looked up in
 * FerretDB's metadata when NULL (then kept, as query-svc keeps it). */
static char *keyset_sql(PGconn *c, const char *db, const shape_t *q, char **table, cqrs_keyset_query_t *k,
                        const char **params, int *n) {
  cqrs_error_t err = {0};
  if (!shape_keyset(q, k)) {
    fprintf(stderr, "%s sorted on %s pages on no keyset index\n", q->coll, q->sort_field ? q->sort_field : "-");
    return NULL;
  }
  if (!*table && !cqrs_ferretdb_pg_table(c, db, q->coll, table, &err)) {
    fprintf(stderr, "%s\n", err.message);
    return NULL;
  }
  return cqrs_keyset_select_sql(db, *table, k, params, n);
}

int rb_explain_keyset(const char *pg_uri, const char *db, const char *shape, const char *value) {
  shape_t q;
  cqrs_keyset_query_t k;
  const char *params[CQRS_KEYSET_KEYS_MAX + 4];
  int n;
  PGconn *c = NULL;
  char *sql = NULL, *explain = NULL, *table = NULL;
  int rc = 1;
  if (!shape_init(&q, shape, value)) goto done;
  if (!(c = keyset_session(pg_uri))) goto done;
  if (!(sql = keyset_sql(c, db, &q, &table, &k, params, &n))) goto done;
  explain = bson_strdup_printf("EXPLAIN (ANALYZE) %s", sql);
  PGresult *r = PQexecParams(c, explain, n, NULL, params, NULL, NULL, 0);
  if (PQresultStatus(r) == PGRES_TUPLES_OK) {
    /* "Limit > Index Scan using i on t" and the execution time */
    bson_string_t *plan = bson_string_new(NULL);
    const char *ms = "?";
    for (int i = 0; i < PQntuples(r); i++) {
      const char *line = PQgetvalue(r, i, 0), *arrow = strstr(line, "->  ");
      const char *node = arrow ? arrow + 4 : line;
      if (strncmp(line, "Execution Time: ", 16) == 0) ms = line + 16;
      int len = (int)strcspn(node, "(");
      while (len > 0 && node[len - 1] == ' ') len--;
      if (i == 0 || arrow) bson_string_append_printf(plan, "%s%.*s", plan->len ? " > " : "", len, node);
    }
    printf("explain-keyset shape=%s collection=%s execution=\"%s\" plan=\"%s\"\n", shape, q.coll, ms, plan->str);
    bson_string_free(plan, true);
    rc = 0;
  } else {
    printf("explain-keyset shape=%s collection=%s error=\"%s\"\n", shape, q.coll, PQerrorMessage(c));
  }
  PQclear(r);
done:
  bson_free(explain);
  free(sql);
  free(table);
  PQfinish(c);
  shape_cleanup(&q);
  return rc;
}

/* ---- raw-list and raw-keyset ---- */

typedef struct {
  mongoc_client_pool_t *pool;
  const char *pg_uri; /* raw-keyset: the PostgreSQL behind the store; NULL: raw-list */
  const char *db, *shape;
  char **values;
  size_t n_values;
  int64_t end_us;
  unsigned seed;
  int64_t *lat;
  size_t n, cap;
  long errors, docs;
} lister_t;

/* One page the keyset way: the statement, then each document by _id (as
 * routes/page.c reads it, without the HTTP and the JSON). */
static bool keyset_page(PGconn *c, mongoc_client_t *client, const char *db, const shape_t *q, char **table,
                        long *docs) {
  cqrs_keyset_query_t k;
  const char *params[CQRS_KEYSET_KEYS_MAX + 4];
  int n;
  char *sql = keyset_sql(c, db, q, table, &k, params, &n);
  if (!sql) return false;
  PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
  free(sql);
  bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
  mongoc_collection_t *coll = mongoc_client_get_collection(client, db, q->coll);
  int shown = ok ? PQntuples(r) : 0;
  if (shown > q->limit - 1) shown = (int)q->limit - 1;
  for (int i = 0; ok && i < shown; i++) {
    bson_t *f = BCON_NEW("_id", BCON_UTF8(PQgetvalue(r, i, 0))), opts = BSON_INITIALIZER;
    BSON_APPEND_INT64(&opts, "limit", 1);
    BSON_APPEND_BOOL(&opts, "singleBatch", true);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, f, &opts, NULL);
    const bson_t *doc;
    bson_error_t e;
    if (mongoc_cursor_next(cur, &doc) && cqrs_keyset_holds(&k, doc)) (*docs)++;
    ok = !mongoc_cursor_error(cur, &e);
    mongoc_cursor_destroy(cur);
    bson_destroy(&opts);
    bson_destroy(f);
  }
  mongoc_collection_destroy(coll);
  PQclear(r);
  return ok;
}

static void *lister_main(void *arg) {
  lister_t *l = arg;
  mongoc_client_t *client = mongoc_client_pool_pop(l->pool);
  PGconn *c = l->pg_uri ? keyset_session(l->pg_uri) : NULL;
  char *table = NULL; /* the shape's table, once looked up */
  if (l->pg_uri && !c) {
    l->errors++;
    l->end_us = 0;
  }
  while (bs_now_us() < l->end_us) {
    shape_t q;
    shape_init(&q, l->shape, l->values[(size_t)rand_r(&l->seed) % l->n_values]);
    int64_t t = bs_now_us();
    if (c) {
      if (!keyset_page(c, client, l->db, &q, &table, &l->docs)) l->errors++;
    } else {
      mongoc_collection_t *coll = mongoc_client_get_collection(client, l->db, q.coll);
      bson_t opts = BSON_INITIALIZER;
      shape_opts(&q, &opts);
      mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &q.filter, &opts, NULL);
      const bson_t *doc;
      bson_error_t e;
      while (mongoc_cursor_next(cur, &doc)) l->docs++;
      if (mongoc_cursor_error(cur, &e)) l->errors++;
      mongoc_cursor_destroy(cur);
      bson_destroy(&opts);
      mongoc_collection_destroy(coll);
    }
    if (l->n == l->cap) l->lat = realloc(l->lat, (l->cap = l->cap ? l->cap * 2 : 1024) * sizeof *l->lat);
    l->lat[l->n++] = bs_now_us() - t;
    shape_cleanup(&q);
  }
  free(table);
  PQfinish(c);
  mongoc_client_pool_push(l->pool, client);
  return NULL;
}

/* The values of a wrk path file: what follows the last '=' of each line. */
static char **path_values(const char *path, size_t *n) {
  FILE *f = fopen(path, "r");
  if (!f) {
    perror(path);
    exit(2);
  }
  char **v = NULL, line[512];
  size_t cap = 0;
  *n = 0;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = 0;
    char *eq = strrchr(line, '=');
    if (!eq || !eq[1]) continue;
    if (*n == cap) v = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof *v);
    v[(*n)++] = bson_strdup(eq + 1);
  }
  fclose(f);
  if (*n == 0) {
    fprintf(stderr, "%s: no values\n", path);
    exit(2);
  }
  return v;
}

int rb_raw_list(const char *uri, const char *pg_uri, const char *db, const char *shape, const char *pathfile,
                int threads, int seconds) {
  shape_t probe;
  bool known = shape_init(&probe, shape, "x");
  shape_cleanup(&probe);
  if (!known) return 2;
  size_t nv;
  char **values = path_values(pathfile, &nv);
  mongoc_client_pool_t *pool = rb_pool_new(uri, threads);
  lister_t *l = calloc((size_t)threads, sizeof *l);
  pthread_t *th = calloc((size_t)threads, sizeof *th);
  int64_t t0 = bs_now_us();
  for (int i = 0; i < threads; i++) {
    l[i] = (lister_t){.pool = pool, .pg_uri = pg_uri, .db = db, .shape = shape, .values = values, .n_values = nv,
                      .end_us = t0 + (int64_t)seconds * 1000000, .seed = (unsigned)(t0 + i * 7919)};
    pthread_create(&th[i], NULL, lister_main, &l[i]);
  }
  size_t total = 0;
  long errors = 0, docs = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(th[i], NULL);
    total += l[i].n;
    errors += l[i].errors;
    docs += l[i].docs;
  }
  double secs = (double)(bs_now_us() - t0) / 1e6;
  int64_t *all = malloc((total ? total : 1) * sizeof *all);
  for (size_t i = 0, k = 0; i < (size_t)threads; k += l[i].n, i++) {
    if (l[i].n) memcpy(all + k, l[i].lat, l[i].n * sizeof *all);
    free(l[i].lat);
  }
  qsort(all, total, sizeof *all, bs_cmp_i64);
  printf("%s shape=%s threads=%d seconds=%.2f requests=%zu requests_per_s=%.2f p50_ms=%.2f p99_ms=%.2f "
         "docs_per_request=%.1f errors=%ld\n",
         pg_uri ? "raw-keyset" : "raw-list", shape, threads, secs, total, (double)total / secs,
         bs_pct_ms(all, total, 0.50), bs_pct_ms(all, total, 0.99),
         total ? (double)docs / (double)total : 0.0, errors);
  for (size_t i = 0; i < nv; i++) bson_free(values[i]);
  free(values);
  free(all);
  free(l);
  free(th);
  mongoc_client_pool_destroy(pool);
  return errors ? 1 : 0;
}
