/* Read-side benchmark driver (not a test): the pieces tests/bench/read_run.sh
 * puts next to each other. Every rate here is measured against a raw baseline
 * in the same run by the script; this program only measures. This file: the
 * command line, seed-events, prepare, raw-write/raw-insert, raw-find, drop;
 * read_bench_lists.c: seed-lists, explain, raw-list, the keyset path;
 * read_bench_http.c: wait-applied, visible.
 *
 *   read_bench seed-events <brokers> <prefix> <count> <idfile>
 *       <count> UserCreated events onto <prefix>events, CloudEvents binary
 *       mode exactly as command-svc writes them; their ids into <idfile>
 *   read_bench prepare <mongo-uri> <pg-uri | -> <db> <collection> [<field>...]
 *       creates the collection with FerretDB index <field>_1 per field and,
 *       given the PostgreSQL behind FerretDB, the GIN indexes projector-svc
 *       creates (on _id and each field, same SQL, same names)
 *   read_bench raw-write <mongo-uri> <db> <collection> <idfile> <chunk> <threads>
 *       the user_profiles documents of those ids as version-guarded upserts
 *       ({_id, version: {$lt: 1}}, $set, upsert) in ordered bulk commands of
 *       <chunk> updates (0: all in one), <threads> commands in flight
 *   read_bench raw-insert <mongo-uri> <db> <collection> <idfile> <chunk> <threads>
 *       the same documents with unordered insert_many (no lookup)
 *   read_bench wait-applied <projector-port> <count> <timeout-s>
 *       polls projector-svc's /metrics until user_profiles applied <count>
 *   read_bench raw-find <mongo-uri> <db> <collection> <idfile> <threads> <seconds>
 *       find by _id of random ids, one client (from a pool) per thread
 *   read_bench prepare-models <mongo-uri> <pg-uri | -> <db> <read model>...
 *       the indexes projector-svc makes on each read model's collection before
 *       its first write there (projector-svc/indexes.h: FerretDB's, and with
 *       the PostgreSQL the GIN and keyset ones), for collections seeded here
 *   read_bench seed-lists <mongo-uri> <db> <user-idfile> <orders> <customers> <outdir>
 *       inserts order_summaries (10 per user, 5 statuses) and customers
 *       (90% ACTIVE) documents; writes wrk path files for the list routes
 *   read_bench explain <mongo-uri> <db> <shape> <value>
 *       the PostgreSQL plan FerretDB runs for one of query-svc's query shapes
 *       (id, id-version, id-in, email, userId, status, customer-status,
 *       email-prefix)
 *   read_bench raw-list <mongo-uri> <db> <shape> <wrk-path-file> <threads> <seconds>
 *       that shape's find as query-svc sends it (sort, limit 51, one batch),
 *       its value drawn per request from the path file (after the last '=')
 *   read_bench raw-keyset <mongo-uri> <pg-uri> <db> <shape> <wrk-path-file> <threads> <seconds>
 *       the same page as query-svc's keyset path reads it (query-svc/pg_lists.h):
 *       the statement over the projection's keyset index in PostgreSQL, then
 *       each document by _id through the store
 *   read_bench explain-keyset <pg-uri> <db> <shape> <value>
 *       EXPLAIN ANALYZE of that statement: the plan and its execution time
 *   read_bench visible <command-port> <query-port> <projector-port> <rate> <seconds> <wait-ms>
 *       CreateUser over HTTP at a fixed rate, each then read back from
 *       query-svc with minVersion=1&waitMs=<wait-ms>; send-to-visible
 *       latency, with the services' /metrics sampled meanwhile
 *   read_bench drop <mongo-uri> <db>
 *       drops the database */
#include "read_bench.h"
#include "bench_kafka.h"
#include "bench_stats.h"

#include "indexes.h"

#include "cqrs/ferretdb_pg.h"

#include "cqrs/config.h"
#include "cqrs/event.h"
#include "cqrs/json.h"
#include "cqrs/kafka.h"
#include "cqrs/util.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static cqrs_log_t quiet = {"read-bench", CQRS_LOG_WARN};

/* ---- ids ---- */

rb_ids_t rb_read_ids(const char *path) {
  rb_ids_t ids = {0};
  FILE *f = fopen(path, "r");
  if (!f) {
    perror(path);
    exit(2);
  }
  size_t cap = 1024;
  ids.id = malloc(cap * sizeof *ids.id);
  char line[128];
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = 0;
    if (strlen(line) != CQRS_UUID_LEN - 1) continue;
    if (ids.n == cap) ids.id = realloc(ids.id, (cap *= 2) * sizeof *ids.id);
    memcpy(ids.id[ids.n++], line, CQRS_UUID_LEN);
  }
  fclose(f);
  if (ids.n == 0) {
    fprintf(stderr, "%s: no ids\n", path);
    exit(2);
  }
  return ids;
}

/* The user of index i: the same fields in the event and in the raw write. */
void rb_user_fields(size_t i, char email[64], char name[64]) {
  snprintf(email, 64, "reader%zu@example.com", i);
  snprintf(name, 64, "Read Bench User %zu", i);
}

/* ---- seed-events ---- */

static int seed_events(const char *brokers, const char *prefix, long count, const char *idpath) {
  cqrs_config_t cfg;
  cqrs_error_t err;
  bench_load_cfg(&cfg, brokers, prefix);
  rd_kafka_conf_t *conf = cqrs_kafka_conf_new(&cfg, &quiet, &err, "linger.ms", "5", "enable.idempotence", "true", NULL);
  rd_kafka_t *prod = conf ? cqrs_kafka_new(RD_KAFKA_PRODUCER, conf, &err) : NULL;
  int parts;
  if (!prod || !cqrs_kafka_topics_ensure(prod, &cfg, 15000, &parts, &err)) {
    fprintf(stderr, "kafka: %s\n", err.message);
    return 2;
  }
  char *t_events = cqrs_config_topic(&cfg, CQRS_TOPIC_EVENTS);
  FILE *ids = fopen(idpath, "w");
  if (!ids) {
    perror(idpath);
    return 2;
  }
  int64_t t0 = cqrs_time_monotonic_ms();
  for (long i = 0; i < count; i++) {
    char name_key[300], id[CQRS_UUID_LEN], ev_id[CQRS_UUID_LEN], cid[320], now[32], email[64], name[64];
    snprintf(name_key, sizeof name_key, "%sreader-%ld", prefix, i);
    cqrs_uuid_from_name(name_key, id);
    cqrs_uuid_random(ev_id);
    snprintf(cid, sizeof cid, "read-bench-%s", name_key);
    cqrs_time_now_rfc3339(now);
    rb_user_fields((size_t)i, email, name);
    /* The event command-svc's user decider makes of a CreateUser. */
    bson_t data = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&data, "userId", id);
    BSON_APPEND_UTF8(&data, "email", email);
    BSON_APPEND_UTF8(&data, "name", name);
    BSON_APPEND_UTF8(&data, "createdAt", now);
    cqrs_event_t ev = {.id = ev_id, .type = "UserCreated", .source = "command-svc", .aggregate_type = "user",
                       .aggregate_id = id, .time = now, .correlation_id = cid, .causation_id = cid,
                       .version = 1, .data = &data};
    cqrs_header_t hdrs[CQRS_EVENT_MAX_HEADERS];
    char version[24];
    size_t nh = cqrs_event_to_headers(&ev, hdrs, version);
    size_t len;
    char *value = cqrs_json_write(&data, &len);
    for (;;) {
      rd_kafka_headers_t *h = cqrs_kafka_headers_new(hdrs, nh);
      rd_kafka_resp_err_t e = rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(t_events), RD_KAFKA_V_KEY(id, strlen(id)),
                                                RD_KAFKA_V_VALUE(value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                                RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
      if (!e) break;
      rd_kafka_headers_destroy(h);
      if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        fprintf(stderr, "produce: %s\n", rd_kafka_err2str(e));
        return 2;
      }
      rd_kafka_poll(prod, 10);
    }
    rd_kafka_poll(prod, 0);
    bson_free(value);
    bson_destroy(&data);
    fprintf(ids, "%s\n", id);
  }
  fclose(ids);
  if (rd_kafka_flush(prod, 60000)) {
    fprintf(stderr, "flush timed out\n");
    return 2;
  }
  printf("seed-events events=%ld partitions=%d seconds=%.2f\n", count, parts,
         (double)(cqrs_time_monotonic_ms() - t0) / 1000.0);
  rd_kafka_destroy(prod);
  free(t_events);
  cqrs_config_cleanup(&cfg);
  return 0;
}

/* ---- prepare-models ---- */

/* The indexes projector-svc makes on a read model's collection before its
 * first write there (indexes.h, the same code), for collections the
 * benchmark fills itself. */
static int prepare_models(const char *uri, const char *pg_uri, const char *db, char **models, int n) {
  cqrs_config_t cfg = {.ferretdb_pg_uri = strcmp(pg_uri, "-") == 0 ? NULL : (char *)pg_uri};
  cqrs_log_t log = {"read_bench", CQRS_LOG_WARN};
  mongoc_client_pool_t *pool = rb_pool_new(uri, 1);
  int rc = 0;
  for (int i = 0; i < n && rc == 0; i++) {
    const cqrs_projection_t *proj = cqrs_projection_find(models[i]);
    cqrs_error_t err = {0};
    int64_t t0 = bs_now_us();
    if (!proj || !cqrs_indexes_ensure(&cfg, &log, pool, db, models[i], proj, &err)) {
      fprintf(stderr, "prepare-models %s: %s\n", models[i], proj ? err.message : "no such read model");
      rc = 1;
    } else {
      printf("prepare-models collection=%s.%s keysets=%s seconds=%.2f\n", db, models[i],
             cfg.ferretdb_pg_uri && proj->keysets ? "yes" : "no", (double)(bs_now_us() - t0) / 1e6);
    }
  }
  mongoc_client_pool_destroy(pool);
  return rc;
}

/* ---- the store ---- */

mongoc_client_pool_t *rb_pool_new(const char *uri_s, int max) {
  mongoc_init();
  mongoc_log_set_handler(NULL, NULL); /* FerretDB has no endSessions: libmongoc warns at every pool end */
  bson_error_t e;
  mongoc_uri_t *uri = mongoc_uri_new_with_error(uri_s, &e);
  if (!uri) {
    fprintf(stderr, "uri: %s\n", e.message);
    exit(2);
  }
  if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 5000);
  mongoc_client_pool_t *pool = mongoc_client_pool_new(uri);
  mongoc_uri_destroy(uri);
  mongoc_client_pool_set_error_api(pool, MONGOC_ERROR_API_VERSION_2);
  mongoc_client_pool_max_size(pool, (uint32_t)(max > 0 ? max : 1));
  return pool;
}

/* ---- prepare: a collection with projector-svc's indexes ---- */

/* The GIN indexes projector-svc creates (cqrs/ferretdb_pg.h), on _id and
 * fields[0..n), for the table FerretDB keeps db.collection in (its name into
 * table_out). */
static bool gin_indexes(const char *pg_uri, const char *db, const char *collection, char *const *fields, int n,
                        char *table_out, size_t table_len) {
  cqrs_error_t err = {0};
  PGconn *c = cqrs_ferretdb_pg_connect(pg_uri, "read-bench", 5000, 0, &err);
  if (!c) {
    fprintf(stderr, "%s\n", err.message);
    return false;
  }
  const char *all[n + 1];
  all[0] = "_id";
  for (int i = 0; i < n; i++) all[i + 1] = fields[i];
  char *table = NULL;
  bool ok = cqrs_ferretdb_pg_gin_indexes(c, db, collection, all, (size_t)n + 1, &table, &err);
  if (ok)
    snprintf(table_out, table_len, "%s", table);
  else
    fprintf(stderr, "%s\n", err.message);
  free(table);
  PQfinish(c);
  return ok;
}

static int prepare(const char *uri, const char *pg_uri, const char *db, const char *collection, char *const *fields,
                   int n) {
  mongoc_client_pool_t *pool = rb_pool_new(uri, 1);
  mongoc_client_t *client = mongoc_client_pool_pop(pool);
  bson_t cmd = BSON_INITIALIZER, idx, one, key;
  bson_error_t e;
  bool ok;
  if (n == 0) {
    BSON_APPEND_UTF8(&cmd, "create", collection);
  } else { /* createIndexes also creates the collection */
    BSON_APPEND_UTF8(&cmd, "createIndexes", collection);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &idx);
    for (int i = 0; i < n; i++) {
      char k[16], name[80];
      const char *ks;
      bson_uint32_to_string((uint32_t)i, &ks, k, sizeof k);
      snprintf(name, sizeof name, "%s_1", fields[i]);
      bson_append_document_begin(&idx, ks, -1, &one);
      BSON_APPEND_DOCUMENT_BEGIN(&one, "key", &key);
      BSON_APPEND_INT32(&key, fields[i], 1);
      bson_append_document_end(&one, &key);
      BSON_APPEND_UTF8(&one, "name", name);
      bson_append_document_end(&idx, &one);
    }
    bson_append_array_end(&cmd, &idx);
  }
  ok = mongoc_client_write_command_with_opts(client, db, &cmd, NULL, NULL, &e);
  if (!ok) fprintf(stderr, "%s.%s: %s\n", db, collection, e.message);
  bson_destroy(&cmd);
  mongoc_client_pool_push(pool, client);
  mongoc_client_pool_destroy(pool);
  char table[128] = "-";
  if (ok && strcmp(pg_uri, "-") != 0) ok = gin_indexes(pg_uri, db, collection, fields, n, table, sizeof table);
  printf("prepare collection=%s.%s table=%s gin=%s ok=%s\n", db, collection, table,
         strcmp(pg_uri, "-") != 0 ? "yes" : "no", ok ? "yes" : "no");
  return ok ? 0 : 1;
}

/* ---- raw-write, raw-insert ---- */

typedef struct {
  mongoc_client_pool_t *pool;
  const char *db, *coll;
  const rb_ids_t *ids;
  size_t chunk;
  bool insert;
  char now[32];
  atomic_size_t next, commands;
  atomic_bool failed;
  pthread_mutex_t lock;
  char error[512];
} raw_t;

static void raw_user_doc(const raw_t *r, size_t i, bson_t *d) {
  char email[64], name[64];
  rb_user_fields(i, email, name);
  BSON_APPEND_UTF8(d, "userId", r->ids->id[i]);
  BSON_APPEND_UTF8(d, "email", email);
  BSON_APPEND_UTF8(d, "name", name);
  BSON_APPEND_UTF8(d, "createdAt", r->now);
  BSON_APPEND_UTF8(d, "updatedAt", r->now);
  BSON_APPEND_INT64(d, "version", 1);
}

/* One bulk command of ids [a, b). */
static bool raw_command(raw_t *r, mongoc_collection_t *coll, size_t a, size_t b, bson_error_t *error) {
  bson_t opts = BSON_INITIALIZER;
  BSON_APPEND_BOOL(&opts, "ordered", !r->insert);
  bool ok;
  if (r->insert) {
    size_t k = b - a;
    bson_t *docs = calloc(k, sizeof *docs);
    const bson_t **ptrs = calloc(k, sizeof *ptrs);
    for (size_t i = 0; i < k; i++) {
      bson_init(&docs[i]);
      BSON_APPEND_UTF8(&docs[i], "_id", r->ids->id[a + i]);
      raw_user_doc(r, a + i, &docs[i]);
      ptrs[i] = &docs[i];
    }
    ok = mongoc_collection_insert_many(coll, ptrs, k, &opts, NULL, error);
    for (size_t i = 0; i < k; i++) bson_destroy(&docs[i]);
    free(docs);
    free(ptrs);
  } else {
    mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(coll, &opts);
    for (size_t i = a; i < b; i++) {
      /* projector-svc's guard: only a document older than the event moves */
      bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, lt, set, o = BSON_INITIALIZER;
      BSON_APPEND_UTF8(&filter, "_id", r->ids->id[i]);
      BSON_APPEND_DOCUMENT_BEGIN(&filter, "version", &lt);
      BSON_APPEND_INT64(&lt, "$lt", 1);
      bson_append_document_end(&filter, &lt);
      BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
      raw_user_doc(r, i, &set);
      bson_append_document_end(&update, &set);
      BSON_APPEND_BOOL(&o, "upsert", true);
      mongoc_bulk_operation_update_one_with_opts(bulk, &filter, &update, &o, error);
      bson_destroy(&o);
      bson_destroy(&filter);
      bson_destroy(&update);
    }
    bson_t reply;
    ok = mongoc_bulk_operation_execute(bulk, &reply, error) != 0;
    bson_destroy(&reply);
    mongoc_bulk_operation_destroy(bulk);
  }
  bson_destroy(&opts);
  return ok;
}

static void *raw_main(void *arg) {
  raw_t *r = arg;
  mongoc_client_t *client = mongoc_client_pool_pop(r->pool);
  mongoc_collection_t *coll = mongoc_client_get_collection(client, r->db, r->coll);
  while (!atomic_load(&r->failed)) {
    size_t a = atomic_fetch_add(&r->next, 1) * r->chunk;
    if (a >= r->ids->n) break;
    size_t b = a + r->chunk < r->ids->n ? a + r->chunk : r->ids->n;
    bson_error_t e;
    if (!raw_command(r, coll, a, b, &e)) {
      pthread_mutex_lock(&r->lock);
      if (!atomic_load(&r->failed)) snprintf(r->error, sizeof r->error, "%s", e.message);
      atomic_store(&r->failed, true);
      pthread_mutex_unlock(&r->lock);
    }
    atomic_fetch_add(&r->commands, 1);
  }
  mongoc_collection_destroy(coll);
  mongoc_client_pool_push(r->pool, client);
  return NULL;
}

static int raw_write(const char *uri, const char *db, const char *coll_name, const char *idpath, long chunk,
                     int threads, bool insert) {
  rb_ids_t ids = rb_read_ids(idpath);
  if (threads < 1) threads = 1;
  raw_t r = {.pool = rb_pool_new(uri, threads), .db = db, .coll = coll_name, .ids = &ids,
             .chunk = chunk > 0 ? (size_t)chunk : ids.n, .insert = insert};
  cqrs_time_now_rfc3339(r.now);
  pthread_mutex_init(&r.lock, NULL);
  pthread_t *th = calloc((size_t)threads, sizeof *th);
  int64_t t0 = bs_now_us();
  for (int i = 0; i < threads; i++) pthread_create(&th[i], NULL, raw_main, &r);
  for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
  double secs = (double)(bs_now_us() - t0) / 1e6;
  bool ok = !atomic_load(&r.failed);
  mongoc_client_t *client = mongoc_client_pool_pop(r.pool);
  mongoc_collection_t *coll = mongoc_client_get_collection(client, db, coll_name);
  bson_t all = BSON_INITIALIZER;
  bson_error_t error;
  int64_t count = mongoc_collection_count_documents(coll, &all, NULL, NULL, NULL, &error);
  ok = ok && count == (int64_t)ids.n;
  printf("raw-%s docs=%zu chunk=%s%zu threads=%d bulk_commands=%zu ok=%s seconds=%.2f docs_per_s=%.0f count=%lld%s%s\n",
         insert ? "insert" : "write", ids.n, chunk > 0 ? "" : "all:", r.chunk, threads, atomic_load(&r.commands),
         ok ? "yes" : "no", secs, ok ? (double)ids.n / secs : 0.0, (long long)count, r.error[0] ? " error=" : "",
         r.error);
  mongoc_collection_destroy(coll);
  mongoc_client_pool_push(r.pool, client);
  mongoc_client_pool_destroy(r.pool);
  free(th);
  free(ids.id);
  return ok ? 0 : 1;
}

/* ---- raw-find ---- */

typedef struct {
  mongoc_client_pool_t *pool;
  const char *db, *coll;
  const rb_ids_t *ids;
  int64_t end_us;
  unsigned seed;
  int64_t *lat;
  size_t n, cap;
  long errors, missing;
} finder_t;

static void *finder_main(void *arg) {
  finder_t *f = arg;
  mongoc_client_t *client = mongoc_client_pool_pop(f->pool);
  mongoc_collection_t *coll = mongoc_client_get_collection(client, f->db, f->coll);
  /* The options query-svc's single reads use (routes/common.c). */
  bson_t opts = BSON_INITIALIZER, proj;
  BSON_APPEND_INT64(&opts, "limit", 1);
  BSON_APPEND_BOOL(&opts, "singleBatch", true);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, "_id", 0);
  bson_append_document_end(&opts, &proj);
  while (bs_now_us() < f->end_us) {
    bson_t filter = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&filter, "_id", f->ids->id[(size_t)rand_r(&f->seed) % f->ids->n]);
    int64_t t = bs_now_us();
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    const bson_t *doc;
    bson_error_t e;
    bool found = mongoc_cursor_next(cur, &doc);
    if (!found && mongoc_cursor_error(cur, &e)) f->errors++;
    else if (!found) f->missing++;
    mongoc_cursor_destroy(cur);
    bson_destroy(&filter);
    if (f->n == f->cap) f->lat = realloc(f->lat, (f->cap = f->cap ? f->cap * 2 : 4096) * sizeof *f->lat);
    f->lat[f->n++] = bs_now_us() - t;
  }
  bson_destroy(&opts);
  mongoc_collection_destroy(coll);
  mongoc_client_pool_push(f->pool, client);
  return NULL;
}

static int raw_find(const char *uri, const char *db, const char *coll, const char *idpath, int threads, int seconds) {
  rb_ids_t ids = rb_read_ids(idpath);
  mongoc_client_pool_t *pool = rb_pool_new(uri, threads);
  finder_t *f = calloc((size_t)threads, sizeof *f);
  pthread_t *th = calloc((size_t)threads, sizeof *th);
  int64_t t0 = bs_now_us();
  for (int i = 0; i < threads; i++) {
    f[i] = (finder_t){.pool = pool, .db = db, .coll = coll, .ids = &ids, .end_us = t0 + (int64_t)seconds * 1000000,
                      .seed = (unsigned)(t0 + i * 7919)};
    pthread_create(&th[i], NULL, finder_main, &f[i]);
  }
  size_t total = 0;
  long errors = 0, missing = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(th[i], NULL);
    total += f[i].n;
    errors += f[i].errors;
    missing += f[i].missing;
  }
  double secs = (double)(bs_now_us() - t0) / 1e6;
  int64_t *all = malloc((total ? total : 1) * sizeof *all);
  for (size_t i = 0, k = 0; i < (size_t)threads; k += f[i].n, i++) {
    if (f[i].n) memcpy(all + k, f[i].lat, f[i].n * sizeof *all);
    free(f[i].lat);
  }
  qsort(all, total, sizeof *all, bs_cmp_i64);
  printf("raw-find threads=%d seconds=%.2f requests=%zu requests_per_s=%.0f p50_ms=%.2f p99_ms=%.2f errors=%ld "
         "missing=%ld\n",
         threads, secs, total, (double)total / secs, bs_pct_ms(all, total, 0.50), bs_pct_ms(all, total, 0.99), errors,
         missing);
  free(all);
  free(f);
  free(th);
  free(ids.id);
  mongoc_client_pool_destroy(pool);
  return errors ? 1 : 0;
}

/* ---- drop ---- */

static int drop(const char *uri, const char *db) {
  mongoc_client_pool_t *pool = rb_pool_new(uri, 1);
  mongoc_client_t *client = mongoc_client_pool_pop(pool);
  mongoc_database_t *d = mongoc_client_get_database(client, db);
  bson_error_t e;
  bool ok = mongoc_database_drop(d, &e);
  printf("drop database=%s ok=%s%s%s\n", db, ok ? "yes" : "no", ok ? "" : " error=", ok ? "" : e.message);
  mongoc_database_destroy(d);
  mongoc_client_pool_push(pool, client);
  mongoc_client_pool_destroy(pool);
  return ok ? 0 : 1;
}

int main(int argc, char **argv) {
  const char *m = argc > 1 ? argv[1] : "";
  if (strcmp(m, "seed-events") == 0 && argc == 6) return seed_events(argv[2], argv[3], atol(argv[4]), argv[5]);
  if (strcmp(m, "prepare") == 0 && argc >= 6) return prepare(argv[2], argv[3], argv[4], argv[5], argv + 6, argc - 6);
  if ((strcmp(m, "raw-write") == 0 || strcmp(m, "raw-insert") == 0) && argc == 8)
    return raw_write(argv[2], argv[3], argv[4], argv[5], atol(argv[6]), atoi(argv[7]), m[4] == 'i');
  if (strcmp(m, "wait-applied") == 0 && argc == 5) return rb_wait_applied(atoi(argv[2]), atol(argv[3]), atoi(argv[4]));
  if (strcmp(m, "raw-find") == 0 && argc == 8)
    return raw_find(argv[2], argv[3], argv[4], argv[5], atoi(argv[6]), atoi(argv[7]));
  if (strcmp(m, "prepare-models") == 0 && argc >= 6) return prepare_models(argv[2], argv[3], argv[4], argv + 5, argc - 5);
  if (strcmp(m, "seed-lists") == 0 && argc == 8)
    return rb_seed_lists(argv[2], argv[3], argv[4], atol(argv[5]), atol(argv[6]), argv[7]);
  if (strcmp(m, "explain") == 0 && argc == 6) return rb_explain(argv[2], argv[3], argv[4], argv[5]);
  if (strcmp(m, "raw-list") == 0 && argc == 8)
    return rb_raw_list(argv[2], NULL, argv[3], argv[4], argv[5], atoi(argv[6]), atoi(argv[7]));
  if (strcmp(m, "raw-keyset") == 0 && argc == 9)
    return rb_raw_list(argv[2], argv[3], argv[4], argv[5], argv[6], atoi(argv[7]), atoi(argv[8]));
  if (strcmp(m, "explain-keyset") == 0 && argc == 6) return rb_explain_keyset(argv[2], argv[3], argv[4], argv[5]);
  if (strcmp(m, "visible") == 0 && argc == 8)
    return rb_visible(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]), atoi(argv[7]));
  if (strcmp(m, "drop") == 0 && argc == 4) return drop(argv[2], argv[3]);
  fprintf(stderr,
          "usage: %s seed-events <brokers> <prefix> <count> <idfile>\n"
          "       %s prepare <mongo-uri> <pg-uri | -> <db> <collection> [<field>...]\n"
          "       %s raw-write|raw-insert <mongo-uri> <db> <collection> <idfile> <chunk, 0 = all> <threads>\n"
          "       %s wait-applied <projector-port> <count> <timeout-s>\n"
          "       %s raw-find <mongo-uri> <db> <collection> <idfile> <threads> <seconds>\n"
          "       %s prepare-models <mongo-uri> <pg-uri | -> <db> <read model>...\n"
          "       %s seed-lists <mongo-uri> <db> <user-idfile> <orders> <customers> <outdir>\n"
          "       %s explain <mongo-uri> <db> <id|id-version|id-in|email|userId|status|customer-status|email-prefix> "
          "<value>\n"
          "       %s raw-list <mongo-uri> <db> <shape> <wrk-path-file> <threads> <seconds>\n"
          "       %s raw-keyset <mongo-uri> <pg-uri> <db> <userId|status|customer-status|email-prefix> "
          "<wrk-path-file> <threads> <seconds>\n"
          "       %s explain-keyset <pg-uri> <db> <shape> <value>\n"
          "       %s visible <command-port> <query-port> <projector-port> <rate> <seconds> <wait-ms>\n"
          "       %s drop <mongo-uri> <db>\n",
          argv[0], argv[0], argv[0], argv[0], argv[0], argv[0], argv[0], argv[0], argv[0], argv[0], argv[0], argv[0],
          argv[0]);
  return 2;
}
