/* GET /v1/admin/sagas and GET /v1/admin/sagas/{sagaId} (sagas.h), and the
 * reader thread that follows saga-state into memory. */
#include "../sagas.h"

#include "cqrs/alloc.h"
#include "cqrs/json.h"
#include "cqrs/kafka.h"
#include "cqrs/map.h"
#include "cqrs/util.h"
#include "cqrs/worker.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIMIT_DEFAULT 50
#define LIMIT_MAX 500
#define POLL_MS 200

struct admin_sagas {
  const cqrs_config_t *cfg;
  admin_ctx_t *ctx;
  char *topic;
  rd_kafka_t *rk;
  cqrs_worker_t worker;
  pthread_mutex_t mu; /* guards sagas */
  cqrs_map_t *sagas;  /* saga id -> bson_t * (the latest instance) */
};

static void free_doc(void *v) { bson_destroy(v); }

/* ---- the reader ---- */

/* @locality the reader thread */
static void apply(admin_sagas_t *s, const rd_kafka_message_t *m) {
  if (!m->key || m->key_len == 0 || m->key_len > 64) return;
  char key[65];
  memcpy(key, m->key, m->key_len);
  key[m->key_len] = '\0';
  bson_t *doc = m->payload ? cqrs_json_parse(m->payload, m->len, NULL) : NULL;
  pthread_mutex_lock(&s->mu);
  if (doc)
    cqrs_map_put(s->sagas, key, doc);
  else
    cqrs_map_delete(s->sagas, key); /* a tombstone, or a value that is not JSON */
  pthread_mutex_unlock(&s->mu);
}

/* Creates saga-state when missing (saga-svc may not have run yet) and assigns
 * every partition from the beginning (assigned, not subscribed: nothing is
 * committed). False with err while Kafka is not ready for it.
 * @locality the reader thread */
static bool assign(admin_sagas_t *s, cqrs_error_t *err) {
  int n;
  if (!cqrs_kafka_topic_ensure(s->rk, s->cfg->topic_prefix, CQRS_TOPIC_SAGA_STATE, s->cfg->topic_partitions,
                               s->cfg->topic_replication, 5000, err) ||
      (n = cqrs_kafka_partition_count(s->rk, s->topic, 5000, err)) <= 0)
    return false;
  rd_kafka_topic_partition_list_t *all = rd_kafka_topic_partition_list_new(n);
  for (int p = 0; p < n; p++) rd_kafka_topic_partition_list_add(all, s->topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_resp_err_t e = rd_kafka_assign(s->rk, all);
  rd_kafka_topic_partition_list_destroy(all);
  if (e) cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "assigning %s: %s", s->topic, rd_kafka_err2str(e));
  return !e;
}

static void *reader_main(void *arg) {
  admin_sagas_t *s = arg;
  bool assigned = false;
  int64_t next_try = 0;
  while (!cqrs_worker_stopping(&s->worker) && !assigned) {
    cqrs_error_t err = {0};
    if (cqrs_time_monotonic_ms() < next_try) {
      rd_kafka_poll(s->rk, POLL_MS);
      continue;
    }
    if (!(assigned = assign(s, &err))) {
      /* a topic just created takes a moment to show; say so only when it lasts */
      if (next_try) cqrs_log_warn(s->ctx->log, "cannot read saga-state yet; retrying", "error", err.message, NULL);
      next_try = cqrs_time_monotonic_ms() + 1000;
    }
  }
  while (!cqrs_worker_stopping(&s->worker)) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(s->rk, POLL_MS);
    if (!m) continue;
    if (!m->err) apply(s, m);
    else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
      cqrs_log_warn(s->ctx->log, "reading saga-state", "error", rd_kafka_message_errstr(m), NULL);
    rd_kafka_message_destroy(m);
  }
  return NULL;
}

/* ---- the routes ---- */

typedef struct {
  bool all;                          /* a platform administrator */
  char tenant[CQRS_TENANT_MAX + 1];  /* else: the only tenant it sees */
} viewer_t;

/* Authenticates req: a platform administrator, or a tenant's credential with
 * scope admin. False once it has answered. */
static bool gate(cqrs_http_req_t *req, admin_ctx_t *ctx, viewer_t *v) {
  cqrs_principal_t who;
  memset(v, 0, sizeof *v);
  if (!cqrs_auth_http(ctx->auth, req, 0, &who)) return false;
  if (!cqrs_auth_enabled(ctx->auth) || (who.scopes & CQRS_SCOPE_PLATFORM)) {
    v->all = true;
    return true;
  }
  cqrs_error_t err;
  if (!cqrs_auth_require(&who, CQRS_SCOPE_ADMIN, &err)) {
    cqrs_http_req_add_header(req, "WWW-Authenticate", "Bearer error=\"insufficient_scope\", scope=\"admin\"");
    cqrs_http_reply_error(req, 403, err.message, NULL);
    return false;
  }
  snprintf(v->tenant, sizeof v->tenant, "%s", who.tenant);
  return true;
}

static bool visible(const viewer_t *v, const bson_t *instance) {
  bson_iter_t it;
  return v->all || (bson_iter_init_find(&it, instance, "tenant") && BSON_ITER_HOLDS_UTF8(&it) &&
                    strcmp(bson_iter_utf8(&it, NULL), v->tenant) == 0);
}

static int64_t now_ms(void) {
  char now[32];
  int64_t ms = 0;
  cqrs_time_now_rfc3339(now);
  cqrs_time_parse_rfc3339(now, &ms);
  return ms;
}

typedef struct {
  const viewer_t *viewer;
  const char *type, *state, *key, *cursor;
  int64_t now_ms, stuck_ms;
  bson_t **docs; /* copies of the matches */
  size_t n, cap;
} list_ctx_t;

static const char *member(const bson_t *doc, const char *key) {
  bson_iter_t it;
  if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it)) return bson_iter_utf8(&it, NULL);
  return "";
}

static bool collect(const char *id, void *value, void *arg) {
  list_ctx_t *l = arg;
  const bson_t *doc = value;
  if (!visible(l->viewer, doc) || (l->cursor && strcmp(id, l->cursor) <= 0)) return false;
  if (l->type && strcmp(member(doc, "type"), l->type) != 0) return false;
  if (l->key && strcmp(member(doc, "key"), l->key) != 0) return false;
  const char *state = admin_saga_view_state(doc, l->now_ms, l->stuck_ms);
  if (l->state && strcmp(state, l->state) != 0) return false;
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 64;
    l->docs = cqrs_xrealloc(l->docs, l->cap * sizeof *l->docs);
  }
  l->docs[l->n++] = bson_copy(doc);
  return false;
}

static int by_id(const void *a, const void *b) {
  return strcmp(member(*(bson_t *const *)a, "sagaId"), member(*(bson_t *const *)b, "sagaId"));
}

static bool query_error(cqrs_http_req_t *req) {
  static const char *const allowed[] = {"type", "state", "key", "limit", "cursor", NULL};
  return !admin_query_only(req, allowed);
}

static void list(cqrs_http_req_t *req, void *arg) {
  admin_sagas_t *s = arg;
  viewer_t v;
  if (!gate(req, s->ctx, &v) || query_error(req)) return;
  list_ctx_t l = {.viewer = &v, .type = cqrs_http_req_query(req, "type"), .state = cqrs_http_req_query(req, "state"),
                  .key = cqrs_http_req_query(req, "key"), .cursor = cqrs_http_req_query(req, "cursor"),
                  .now_ms = now_ms(), .stuck_ms = (int64_t)s->cfg->saga_stuck_after_s * 1000};
  const char *limit_s = cqrs_http_req_query(req, "limit");
  long limit = LIMIT_DEFAULT;
  if (limit_s) {
    char *end;
    limit = strtol(limit_s, &end, 10);
    if (!*limit_s || *end || limit < 1 || limit > LIMIT_MAX) {
      cqrs_http_reply_error(req, 400, "limit must be an integer from 1 to 500", "limit");
      return;
    }
  }
  if (l.type && !admin_saga_type_known(l.type)) {
    cqrs_http_reply_error(req, 400, "type must be order_placement, customer_suspension or order_deadline", "type");
    return;
  }
  if (l.state && !admin_saga_state_known(l.state)) {
    cqrs_http_reply_error(req, 400, "state must be running, completed, compensated, failed or stuck", "state");
    return;
  }
  pthread_mutex_lock(&s->mu);
  cqrs_map_filter(s->sagas, collect, &l);
  pthread_mutex_unlock(&s->mu);
  qsort(l.docs, l.n, sizeof *l.docs, by_id);
  bson_t out, items;
  bson_init(&out);
  bson_append_array_begin(&out, "items", -1, &items);
  size_t shown = l.n < (size_t)limit ? l.n : (size_t)limit;
  for (size_t i = 0; i < shown; i++) {
    char k[16];
    const char *key;
    bson_t item;
    bson_uint32_to_string((uint32_t)i, &key, k, sizeof k);
    bson_append_document_begin(&items, key, -1, &item);
    admin_saga_view(l.docs[i], admin_saga_view_state(l.docs[i], l.now_ms, l.stuck_ms), false, &item);
    bson_append_document_end(&items, &item);
  }
  bson_append_array_end(&out, &items);
  if (l.n > shown)
    BSON_APPEND_UTF8(&out, "nextCursor", member(l.docs[shown - 1], "sagaId"));
  else
    BSON_APPEND_NULL(&out, "nextCursor");
  cqrs_http_reply_doc(req, 200, &out);
  bson_destroy(&out);
  for (size_t i = 0; i < l.n; i++) bson_destroy(l.docs[i]);
  free(l.docs);
}

static void get(cqrs_http_req_t *req, void *arg) {
  admin_sagas_t *s = arg;
  viewer_t v;
  if (!gate(req, s->ctx, &v) || query_error(req)) return;
  const char *id = cqrs_http_req_tail(req);
  pthread_mutex_lock(&s->mu);
  const bson_t *found = strchr(id, '/') ? NULL : cqrs_map_get(s->sagas, id);
  bson_t *doc = found && visible(&v, found) ? bson_copy(found) : NULL;
  pthread_mutex_unlock(&s->mu);
  if (!doc) {
    cqrs_http_reply_error(req, 404, "no such saga", NULL);
    return;
  }
  bson_t out;
  bson_init(&out);
  admin_saga_view(doc, admin_saga_view_state(doc, now_ms(), (int64_t)s->cfg->saga_stuck_after_s * 1000), true, &out);
  cqrs_http_reply_doc(req, 200, &out);
  bson_destroy(&out);
  bson_destroy(doc);
}

admin_sagas_t *admin_sagas_start(const cqrs_config_t *cfg, admin_ctx_t *ctx, cqrs_http_server_t *http,
                                 cqrs_error_t *err) {
  admin_sagas_t *s = cqrs_xcalloc(1, sizeof *s);
  s->cfg = cfg;
  s->ctx = ctx;
  s->sagas = cqrs_map_new(free_doc);
  pthread_mutex_init(&s->mu, NULL);
  s->topic = cqrs_config_topic(cfg, CQRS_TOPIC_SAGA_STATE);
  if (!(s->rk = cqrs_kafka_consumer_new(cfg, ctx->log, "admin-svc-sagas", NULL, NULL, err, NULL)) ||
      !cqrs_worker_start(&s->worker, "saga-reader", reader_main, s, err)) {
    admin_sagas_stop(s);
    return NULL;
  }
  cqrs_http_server_route(http, "GET", "/v1/admin/sagas", "/v1/admin/sagas", list, s);
  cqrs_http_server_route(http, "GET", "/v1/admin/sagas/{sagaId}", "/v1/admin/sagas/{sagaId}", get, s);
  return s;
}

void admin_sagas_stop(admin_sagas_t *s) {
  if (!s) return;
  cqrs_worker_stop(&s->worker);
  if (s->rk) {
    rd_kafka_consumer_close(s->rk);
    rd_kafka_destroy(s->rk);
  }
  cqrs_map_destroy(s->sagas);
  pthread_mutex_destroy(&s->mu);
  free(s->topic);
  free(s);
}
