/* The accounting checker on a test environment: topics and store in, report
 * out (see accounting_env.h). */
#include "accounting_env.h"

#include "cqrs/events.h"
#include "cqrs/json.h"
#include "cqrs/map.h"
#include "cqrs/read_model.h"
#include "cqrs/tenant.h"
#include "saga.h"

#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CATCHUP_MS_DEFAULT 60000
#define STORE_TIMEOUT_MS 30000

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* What was read: the checker's input and what it borrows from. */
typedef struct {
  tk_record_t *ev_recs, *res_recs;
  size_t n_ev_recs, n_res_recs;
  tk_acct_event_t *events;
  size_t n_events, n_decoded; /* the first n_decoded own their event */
  tk_acct_result_t *results;
  char **result_strings; /* 3 per result: tenant, aggregateId, eventId */
  size_t n_results;
  char **tenants;
  size_t n_tenants;
  /* sagas (opts->sagas): the newest instance of each saga id, the saga
   * command records of the commands topic */
  tk_record_t *saga_recs, *cmd_recs;
  size_t n_saga_recs, n_cmd_recs;
  bson_t **sagas;
  size_t n_sagas;
  tk_acct_emitted_t *emitted;
  char **emitted_strings; /* 3 per record: tenant, commandId, correlationId */
  size_t n_emitted;
  /* per (tenant, projection): the stored documents */
  tk_acct_docs_t *stores;
  bson_t ***store_docs;
  size_t n_stores;
} read_t;

/* Reads and decodes the log; *undecodable counts the records that are no
 * event (each logged to stderr). */
static void read_events(const tk_env_t *env, read_t *rd, size_t *undecodable) {
  char topic[128];
  rd->ev_recs = tk_kafka_read_all(env, tk_topic(env, "events", topic), &rd->n_ev_recs);
  rd->events = calloc(rd->n_ev_recs + 2, sizeof *rd->events); /* room for a doctored copy */
  for (size_t i = 0; i < rd->n_ev_recs; i++) {
    tk_record_t *r = &rd->ev_recs[i];
    tk_acct_event_t *e = &rd->events[rd->n_events];
    cqrs_error_t err = {0};
    if (!cqrs_event_from_record(&e->ev, r->headers, r->n_headers, r->value, r->value ? strlen(r->value) : 0, &err)) {
      cqrs_event_cleanup(&e->ev);
      memset(e, 0, sizeof *e);
      (*undecodable)++;
      fprintf(stderr, "accounting: the record at %d/%lld is no event: %s\n", r->partition, (long long)r->offset,
              err.message);
      continue;
    }
    e->partition = r->partition;
    e->offset = r->offset;
    rd->n_events++;
  }
  rd->n_decoded = rd->n_events;
}

/* The tenant of a record keyed "<tenant>/<id>" (malloc'd), or NULL for another key. */
static char *key_tenant(const tk_record_t *r) {
  const char *slash = r->key ? strchr(r->key, '/') : NULL;
  return slash ? strndup(r->key, (size_t)(slash - r->key)) : NULL;
}

static void read_results(const tk_env_t *env, read_t *rd) {
  char topic[128];
  rd->res_recs = tk_kafka_read_all(env, tk_topic(env, "command-results", topic), &rd->n_res_recs);
  rd->results = calloc(rd->n_res_recs + 1, sizeof *rd->results);
  rd->result_strings = calloc(3 * rd->n_res_recs + 1, sizeof *rd->result_strings);
  for (size_t i = 0; i < rd->n_res_recs; i++) {
    tk_record_t *r = &rd->res_recs[i];
    char *tenant = r->value ? key_tenant(r) : NULL;
    if (!tenant) continue;
    char **s = &rd->result_strings[3 * rd->n_results];
    s[0] = tenant;
    s[1] = tk_json_string(r->value, "aggregateId");
    s[2] = tk_json_string(r->value, "eventId");
    int64_t status = tk_json_int(r->value, "status"), version = tk_json_int(r->value, "version");
    rd->results[rd->n_results++] = (tk_acct_result_t){
        .tenant = s[0],
        .command_id = r->key + strlen(tenant) + 1,
        .status = status == INT64_MIN ? -1 : (int)status,
        .aggregate_id = s[1],
        .version = version == INT64_MIN ? 0 : version,
        .event_id = s[2],
    };
  }
}

/* The newest value of each key of saga-state (a tombstone removes it). */
static void read_sagas(const tk_env_t *env, read_t *rd) {
  char topic[128];
  rd->saga_recs = tk_kafka_read_all(env, tk_topic(env, "saga-state", topic), &rd->n_saga_recs);
  cqrs_map_t *newest = cqrs_map_new(NULL);
  for (size_t i = 0; i < rd->n_saga_recs; i++)
    if (rd->saga_recs[i].key) cqrs_map_put(newest, rd->saga_recs[i].key, &rd->saga_recs[i]);
  rd->sagas = calloc(rd->n_saga_recs + 1, sizeof *rd->sagas);
  for (size_t i = 0; i < rd->n_saga_recs; i++) {
    const tk_record_t *r = &rd->saga_recs[i];
    if (!r->key || cqrs_map_get(newest, r->key) != r || !r->value) continue;
    cqrs_error_t err = {0};
    bson_t *doc = cqrs_json_parse(r->value, strlen(r->value), &err);
    cr_assert_not_null(doc, "accounting: saga-state %d/%lld is no JSON: %s", r->partition, (long long)r->offset,
                       err.message);
    rd->sagas[rd->n_sagas++] = doc;
  }
  cqrs_map_destroy(newest);
}

/* The records of the commands topic that carry a correlationId (a saga's). */
static void read_emitted(const tk_env_t *env, read_t *rd) {
  char topic[128];
  rd->cmd_recs = tk_kafka_read_all(env, tk_topic(env, "commands", topic), &rd->n_cmd_recs);
  rd->emitted = calloc(rd->n_cmd_recs + 1, sizeof *rd->emitted);
  rd->emitted_strings = calloc(3 * rd->n_cmd_recs + 1, sizeof *rd->emitted_strings);
  for (size_t i = 0; i < rd->n_cmd_recs; i++) {
    const tk_record_t *r = &rd->cmd_recs[i];
    char *correlation = r->value ? tk_json_string(r->value, "correlationId") : NULL;
    char *tenant = correlation ? key_tenant(r) : NULL;
    if (!tenant) {
      free(correlation);
      continue;
    }
    char **s = &rd->emitted_strings[3 * rd->n_emitted];
    s[0] = tenant;
    s[1] = tk_json_string(r->value, "commandId");
    s[2] = correlation;
    rd->emitted[rd->n_emitted++] = (tk_acct_emitted_t){s[0], s[1], s[2], r->partition, r->offset};
  }
}

static void collect_tenants(read_t *rd) {
  rd->tenants = calloc(rd->n_events + 1, sizeof *rd->tenants);
  rd->tenants[rd->n_tenants++] = strdup(CQRS_TENANT_DEFAULT);
  for (size_t i = 0; i < rd->n_events; i++) {
    const char *t = rd->events[i].ev.tenant ? rd->events[i].ev.tenant : CQRS_TENANT_DEFAULT;
    bool known = false;
    for (size_t j = 0; j < rd->n_tenants; j++) known |= strcmp(rd->tenants[j], t) == 0;
    if (!known) rd->tenants[rd->n_tenants++] = strdup(t);
  }
}

static void stores_free(read_t *rd) {
  for (size_t i = 0; i < rd->n_stores; i++) {
    for (size_t j = 0; j < rd->stores[i].n; j++) bson_destroy(rd->store_docs[i][j]);
    free(rd->store_docs[i]);
  }
  free(rd->stores);
  free(rd->store_docs);
  rd->stores = NULL;
  rd->store_docs = NULL;
  rd->n_stores = 0;
}

/* Every document of every read model of every tenant, through the alias. */
static void read_stores(const tk_env_t *env, mongoc_client_t *client, cqrs_read_models_t *rm, read_t *rd) {
  stores_free(rd);
  size_t n_proj = 0;
  while (cqrs_projections[n_proj]) n_proj++;
  rd->stores = calloc(rd->n_tenants * n_proj + 1, sizeof *rd->stores);
  rd->store_docs = calloc(rd->n_tenants * n_proj + 1, sizeof *rd->store_docs);
  for (size_t t = 0; t < rd->n_tenants; t++)
    for (size_t p = 0; p < n_proj; p++) {
      char db[128], coll_name[CQRS_COLLECTION_NAME_MAX];
      tk_tenant_db(env, rd->tenants[t], db);
      cqrs_read_models_resolve_in(rm, client, db, cqrs_projections[p]->name, coll_name);
      mongoc_collection_t *coll = mongoc_client_get_collection(client, db, coll_name);
      bson_t filter = BSON_INITIALIZER;
      mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, NULL, NULL);
      size_t cap = 64, n = 0;
      bson_t **docs = calloc(cap, sizeof *docs);
      const bson_t *doc;
      while (mongoc_cursor_next(cur, &doc)) {
        if (n == cap) docs = realloc(docs, (cap *= 2) * sizeof *docs);
        docs[n++] = bson_copy(doc);
      }
      bson_error_t e;
      cr_assert(!mongoc_cursor_error(cur, &e), "accounting: reading %s.%s: %s", db, coll_name, e.message);
      mongoc_cursor_destroy(cur);
      bson_destroy(&filter);
      mongoc_collection_destroy(coll);
      rd->store_docs[rd->n_stores] = docs;
      rd->stores[rd->n_stores++] = (tk_acct_docs_t){rd->tenants[t], cqrs_projections[p], (const bson_t *const *)docs, n};
    }
}

static int64_t doc_version(const bson_t *d) {
  bson_iter_t it;
  return bson_iter_init_find(&it, d, "version") && BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_int64(&it) : -1;
}

static const char *doc_id(const bson_t *d) {
  bson_iter_t it;
  return bson_iter_init_find(&it, d, "_id") && BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : "";
}

/* True when every document the log implies is stored at least at its
 * version: the projector has caught up (what it wrote is compared later). */
static bool caught_up(const read_t *rd, char *why, size_t cap) {
  for (size_t s = 0; s < rd->n_stores; s++) {
    bson_t **want = NULL;
    size_t n_want = 0;
    cqrs_error_t err = {0};
    if (!tk_acct_expected_docs(rd->stores[s].projection, rd->stores[s].tenant, rd->events, rd->n_events, &want,
                               &n_want, &err))
      return true; /* the check reports it */
    bool ok = true;
    cqrs_map_t *stored = cqrs_map_new(NULL);
    for (size_t j = 0; j < rd->stores[s].n; j++)
      cqrs_map_put(stored, doc_id(rd->stores[s].docs[j]), (void *)rd->stores[s].docs[j]);
    for (size_t i = 0; ok && i < n_want; i++) {
      const char *id = doc_id(want[i]);
      const bson_t *got = cqrs_map_get(stored, id);
      if (!got || doc_version(got) < doc_version(want[i])) {
        snprintf(why, cap, "%s of %s: %s %s", rd->stores[s].projection->name, rd->stores[s].tenant, id,
                 got ? "is behind" : "is missing");
        ok = false;
      }
    }
    cqrs_map_destroy(stored);
    tk_acct_docs_free(want, n_want);
    if (!ok) return false;
  }
  return true;
}

/* ---- the sagas settle ---- */

#define MAX_PARTITIONS 64

/* The committed offsets of saga-svc's consumer group (named like its topics)
 * on events [0] and command-results [1]; -1: none. */
typedef struct {
  int64_t at[2][MAX_PARTITIONS];
} saga_offsets_t;

static void saga_offsets(const tk_env_t *env, saga_offsets_t *o) {
  char errstr[256], group[128], topics[2][128];
  tk_topic(env, "saga-svc", group);
  tk_topic(env, "events", topics[0]);
  tk_topic(env, "command-results", topics[1]);
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", env->brokers, errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof errstr);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  cr_assert_not_null(rk, "accounting: %s", errstr);
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(2 * MAX_PARTITIONS);
  for (int t = 0; t < 2; t++) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topics[t], NULL);
    cr_assert_eq(rd_kafka_metadata(rk, 0, rkt, &md, 10000), 0, "accounting: no metadata for %s", topics[t]);
    for (int p = 0; p < md->topics[0].partition_cnt && p < MAX_PARTITIONS; p++)
      rd_kafka_topic_partition_list_add(l, topics[t], p);
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
  }
  rd_kafka_resp_err_t e = rd_kafka_committed(rk, l, 10000);
  cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "accounting: the offsets of %s: %s", group, rd_kafka_err2str(e));
  for (int t = 0; t < 2; t++)
    for (int p = 0; p < MAX_PARTITIONS; p++) o->at[t][p] = -1;
  for (int i = 0; i < l->cnt; i++)
    o->at[strcmp(l->elems[i].topic, topics[0]) == 0 ? 0 : 1][l->elems[i].partition] =
        l->elems[i].offset >= 0 ? l->elems[i].offset : -1;
  rd_kafka_topic_partition_list_destroy(l);
  rd_kafka_destroy(rk);
}

/* The first record of recs saga-svc's group has not committed past, or NULL. */
static const tk_record_t *not_consumed(const tk_record_t *recs, size_t n, const int64_t *committed) {
  for (size_t i = 0; i < n; i++)
    if (recs[i].partition < MAX_PARTITIONS && recs[i].offset >= committed[recs[i].partition]) return &recs[i];
  return NULL;
}

static void count_pending(const char *command_id, void *ctx) {
  (void)command_id;
  (*(size_t *)ctx)++;
}

/* True when the sagas have settled over what rd holds (read after before):
 * the group committed past every event and result, then did not move, and
 * no step waits for a result. */
static bool sagas_settled(const read_t *rd, const saga_offsets_t *before, const saga_offsets_t *after, char *why,
                          size_t cap) {
  if (memcmp(before, after, sizeof *before) != 0) return snprintf(why, cap, "saga-svc committed meanwhile"), false;
  const tk_record_t *left = not_consumed(rd->ev_recs, rd->n_ev_recs, after->at[0]);
  if (!left) left = not_consumed(rd->res_recs, rd->n_res_recs, after->at[1]);
  if (left) return snprintf(why, cap, "saga-svc has not consumed %s %d/%lld", left->ce_type ? "event" : "result",
                            left->partition, (long long)left->offset), false;
  size_t pending = 0;
  for (size_t i = 0; i < rd->n_sagas; i++) cqrs_saga_pending_steps(rd->sagas[i], count_pending, &pending);
  if (pending) return snprintf(why, cap, "%zu saga steps wait for their result", pending), false;
  return true;
}

/* ---- doctoring (test only) ---- */

/* Drops event victim from what the checker sees. */
static void drop_event(read_t *rd, size_t victim) {
  fprintf(stderr, "accounting: DOCTORED: event %s (%s of %s) dropped from the log\n", rd->events[victim].ev.id,
          rd->events[victim].ev.type, rd->events[victim].ev.aggregate_id);
  cqrs_event_cleanup(&rd->events[victim].ev);
  memmove(&rd->events[victim], &rd->events[victim + 1], (rd->n_events - victim - 1) * sizeof *rd->events);
  rd->n_events--;
  rd->n_decoded--;
}

/* The first UserOrderRecorded of the log (a saga step's event), or SIZE_MAX. */
static size_t first_user_order_recorded(const read_t *rd) {
  for (size_t i = 0; i < rd->n_events; i++)
    if (rd->events[i].ev.type && strcmp(rd->events[i].ev.type, cqrs_user_order_recorded_event.name) == 0) return i;
  return SIZE_MAX;
}

/* "saga-twice": event i again as its aggregate's next version, caused by
 * another commandId (the copy shares the strings but those two: not cleaned
 * up twice). */
static void decide_again(read_t *rd, size_t i) {
  static char id[160], cause[160];
  tk_acct_event_t copy = rd->events[i];
  for (size_t j = 0; j < rd->n_events; j++)
    if (strcmp(rd->events[j].ev.aggregate_id, copy.ev.aggregate_id) == 0 && rd->events[j].ev.version >= copy.ev.version)
      copy.ev.version = rd->events[j].ev.version + 1;
  snprintf(id, sizeof id, "%s-again", copy.ev.id);
  snprintf(cause, sizeof cause, "%s-again", copy.ev.causation_id ? copy.ev.causation_id : "");
  copy.ev.id = id;
  copy.ev.causation_id = cause;
  copy.offset += 1000000000;
  fprintf(stderr, "accounting: DOCTORED: %s of %s decided again as v%lld, caused by %s\n", copy.ev.type,
          copy.ev.aggregate_id, (long long)copy.ev.version, cause);
  rd->events[rd->n_events++] = copy;
}

static void doctor_log(read_t *rd, const char *doctor, const tk_acct_command_t *cmds, size_t n_cmds) {
  if (!rd->n_events) return;
  if (strcmp(doctor, "saga-twice") == 0 || strcmp(doctor, "saga-lost") == 0) {
    size_t i = first_user_order_recorded(rd);
    if (i == SIZE_MAX)
      fprintf(stderr, "accounting: DOCTOR %s: the log has no UserOrderRecorded\n", doctor);
    else if (strcmp(doctor, "saga-twice") == 0)
      decide_again(rd, i);
    else
      drop_event(rd, i);
  } else if (strcmp(doctor, "drop-event") == 0) {
    size_t victim = rd->n_events / 2;
    for (size_t i = 0; i < rd->n_events; i++) {
      bool acked = false;
      for (size_t c = 0; !acked && c < n_cmds; c++)
        acked = cmds[c].status == 201 && cmds[c].event_id && rd->events[i].ev.id &&
                strcmp(cmds[c].event_id, rd->events[i].ev.id) == 0;
      if (acked) {
        victim = i;
        break;
      }
    }
    drop_event(rd, victim);
  } else if (strcmp(doctor, "duplicate-event") == 0) {
    tk_acct_event_t copy = rd->events[rd->n_events / 2]; /* shares the strings: not cleaned up twice */
    copy.offset += 1000000000;
    fprintf(stderr, "accounting: DOCTORED: event %s read twice\n", copy.ev.id);
    rd->events[rd->n_events++] = copy;
  } else if (strcmp(doctor, "swap-events") == 0) {
    for (size_t i = 0; i < rd->n_events; i++)
      for (size_t j = i + 1; j < rd->n_events; j++) {
        cqrs_event_t *a = &rd->events[i].ev, *b = &rd->events[j].ev;
        if (rd->events[i].partition == rd->events[j].partition && strcmp(a->aggregate_id, b->aggregate_id) == 0) {
          fprintf(stderr, "accounting: DOCTORED: %s v%lld and v%lld trade places in the log\n", a->aggregate_id,
                  (long long)a->version, (long long)b->version);
          cqrs_event_t t = *a;
          *a = *b;
          *b = t;
          return;
        }
      }
  }
}

static void doctor_store(read_t *rd, const char *doctor) {
  if (strcmp(doctor, "edit-document") != 0) return;
  for (size_t s = 0; s < rd->n_stores; s++) {
    if (!rd->stores[s].projection->aggregate_type || rd->stores[s].n == 0) continue;
    bson_t *d = rd->store_docs[s][0], *edited = bson_new();
    bson_iter_t it;
    bool done = false;
    if (bson_iter_init(&it, d))
      while (bson_iter_next(&it)) {
        if (!done && BSON_ITER_HOLDS_UTF8(&it) && strcmp(bson_iter_key(&it), "_id") != 0) {
          char v[512];
          snprintf(v, sizeof v, "%s-doctored", bson_iter_utf8(&it, NULL));
          BSON_APPEND_UTF8(edited, bson_iter_key(&it), v);
          fprintf(stderr, "accounting: DOCTORED: %s %s.%s edited\n", rd->stores[s].projection->name, doc_id(d),
                  bson_iter_key(&it));
          done = true;
        } else {
          bson_append_value(edited, bson_iter_key(&it), -1, bson_iter_value(&it));
        }
      }
    bson_destroy(d);
    rd->store_docs[s][0] = edited;
    rd->stores[s].docs = (const bson_t *const *)rd->store_docs[s];
    return;
  }
}

/* ---- the check ---- */

/* Frees what read_log read. */
static void log_free(read_t *rd) {
  for (size_t i = 0; i < rd->n_decoded; i++) cqrs_event_cleanup(&rd->events[i].ev);
  free(rd->events);
  for (size_t i = 0; i < 3 * rd->n_results; i++) free(rd->result_strings[i]);
  free(rd->result_strings);
  free(rd->results);
  for (size_t i = 0; i < rd->n_sagas; i++) bson_destroy(rd->sagas[i]);
  free(rd->sagas);
  for (size_t i = 0; i < 3 * rd->n_emitted; i++) free(rd->emitted_strings[i]);
  free(rd->emitted_strings);
  free(rd->emitted);
  tk_records_free(rd->ev_recs, rd->n_ev_recs);
  tk_records_free(rd->res_recs, rd->n_res_recs);
  tk_records_free(rd->saga_recs, rd->n_saga_recs);
  tk_records_free(rd->cmd_recs, rd->n_cmd_recs);
  read_t zero = {0};
  zero.tenants = rd->tenants, zero.n_tenants = rd->n_tenants;
  *rd = zero;
}

/* Reads the log and the results (and, with sagas, the saga instances and
 * commands, again until the sagas have settled or wait_ms passed). */
static void read_log(const tk_env_t *env, bool sagas, int wait_ms, read_t *rd, size_t *undecodable) {
  int64_t deadline = now_ms() + wait_ms;
  for (;;) {
    saga_offsets_t before, after;
    if (sagas) saga_offsets(env, &before);
    *undecodable = 0;
    read_events(env, rd, undecodable);
    read_results(env, rd);
    if (!sagas) return;
    read_sagas(env, rd);
    read_emitted(env, rd);
    saga_offsets(env, &after);
    char why[256];
    if (sagas_settled(rd, &before, &after, why, sizeof why)) return;
    if (now_ms() > deadline) {
      fprintf(stderr, "accounting: the sagas did not settle within %d ms (%s); checking what is there\n", wait_ms, why);
      return;
    }
    log_free(rd);
    pause_ms(500); /* each try reads four topics whole */
  }
}

void tk_acct_check_env(const tk_env_t *env, const tk_acct_command_t *cmds, size_t n, const tk_acct_opts_t *opts,
                       tk_acct_report_t *out) {
  static const tk_acct_opts_t defaults = {0};
  if (!opts) opts = &defaults;
  const char *doctor = opts->doctor ? opts->doctor : getenv("TK_ACCT_DOCTOR");
  if (doctor && (!*doctor || strcmp(doctor, "none") == 0)) doctor = NULL;
  int wait_ms = opts->catchup_ms > 0 ? opts->catchup_ms : CATCHUP_MS_DEFAULT;
  read_t rd = {0};
  size_t undecodable = 0;
  read_log(env, opts->sagas, wait_ms, &rd, &undecodable);
  collect_tenants(&rd);

  mongoc_init();
  /* a store that stops answering fails the check within STORE_TIMEOUT_MS, not
   * after libmongoc's default of 5 minutes per read */
  mongoc_uri_t *uri = mongoc_uri_new(env->mongo_uri);
  cr_assert_not_null(uri, "accounting: bad MongoDB URI %s", env->mongo_uri);
  if (!mongoc_uri_has_option(uri, MONGOC_URI_SOCKETTIMEOUTMS))
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, STORE_TIMEOUT_MS);
  mongoc_client_t *client = mongoc_client_new_from_uri(uri);
  mongoc_uri_destroy(uri);
  cr_assert_not_null(client, "accounting: no client for %s", env->mongo_uri);
  cqrs_read_models_t *rm = cqrs_read_models_new(NULL, 0, CQRS_ALIAS_WRITER);
  int64_t deadline = now_ms() + wait_ms;
  char why[512] = "";
  for (;;) {
    read_stores(env, client, rm, &rd);
    if (caught_up(&rd, why, sizeof why)) break;
    if (now_ms() > deadline) {
      fprintf(stderr, "accounting: the read models did not catch up within %d ms (%s); checking what is there\n",
              wait_ms, why);
      break;
    }
    pause_ms(500); /* each try reads every read model whole: not too often */
  }
  if (doctor) { /* after the catch-up, which waits for what the log (not a doctored one) implies */
    doctor_log(&rd, doctor, cmds, n);
    doctor_store(&rd, doctor);
  }

  tk_acct_input_t in = {
      .commands = cmds,
      .n_commands = n,
      .events = rd.events,
      .n_events = rd.n_events,
      .results = rd.results,
      .n_results = rd.n_results,
      .stores = rd.stores,
      .n_stores = rd.n_stores,
      .all_commands_known = opts->all_commands_known,
      .sagas = opts->sagas,
      .saga_instances = (const bson_t *const *)rd.sagas,
      .n_saga_instances = rd.n_sagas,
      .emitted = rd.emitted,
      .n_emitted = rd.n_emitted,
  };
  tk_acct_check(&in, out);
  if (undecodable) {
    out->violations = realloc(out->violations, (out->n_violations + 1) * sizeof *out->violations);
    if (asprintf(&out->violations[out->n_violations], "%zu records of the log are no event (see stderr)",
                 undecodable) < 0)
      out->violations[out->n_violations] = strdup("records of the log are no event");
    out->n_violations++;
  }

  stores_free(&rd);
  cqrs_read_models_destroy(rm);
  mongoc_client_destroy(client);
  log_free(&rd);
  for (size_t i = 0; i < rd.n_tenants; i++) free(rd.tenants[i]);
  free(rd.tenants);
}

void tk_acct_assert_clean(const tk_acct_report_t *r) {
  char *text = tk_acct_report_format(r, 40);
  fprintf(stderr, "accounting: %s", text);
  cr_expect_eq(r->n_violations, 0, "the accounting found %zu violations:\n%s", r->n_violations, text);
  free(text);
}
