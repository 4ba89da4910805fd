/* The command loop: consume commands, decide, append in one transaction. */
#include "command_loop.h"
#include "processor.h"
#include "restore.h"
#include "tenant_topics.h"

#include "cqrs/alloc.h"
#include "cqrs/json.h"
#include "cqrs/kafka.h"
#include "cqrs/ratelimit.h"
#include "cqrs/result.h"
#include "cqrs/saga_sign.h"
#include "cqrs/util.h"
#include "cqrs/worker.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* An open transaction of a crashed instance holds back read_committed readers
 * (results, projections) until it times out or the instance restarts: keep it
 * short; a batch transaction takes milliseconds. */
#define TXN_TIMEOUT_MS 10000

/* Records of tenants' own command topics in one batch at most (tenant_topics.h): a batch of
 * them is about that many refusals or decisions long, and the other tenants' commands wait for
 * one such transaction at worst. */
#define TENANT_TOPICS_BATCH_MAX 256

struct cqrs_command_loop {
  const cqrs_config_t *cfg;
  const cqrs_log_t *log;
  cqrs_metrics_t *metrics;
  cqrs_auth_t *auth;
  cqrs_ratelimit_t *limits; /* the instance's per-tenant command rate, shared by its lanes; NULL: none */
  rd_kafka_t *consumer;
  rd_kafka_t *producer;
  cqrs_tenant_topics_t *tenant_topics; /* tenants' own command topics: partitions held of commands, ridden along */
  rd_kafka_topic_t *commands_rkt; /* for the partitioner */
  char *t_commands, *t_events, *t_state, *t_results;
  int32_t n_partitions;
  int64_t *parked; /* per partition: -1, or the end offset of its aggregate-state partition when it was
                    * revoked and its aggregates kept (reused if nobody wrote there since) */
  int64_t last_txn_ms; /* when the last transaction began (monotonic): COMMAND_TXN_LINGER_MS counts from it */
  int32_t n_result_partitions; /* of command-results: bounds a reply-partition header */
  cqrs_aggregate_store_t *store;
  cqrs_decider_settings_t settings;
  cqrs_worker_t worker;
  cqrs_error_t fatal; /* written once by the loop thread before failed turns true */
  atomic_bool failed;
  atomic_bool joined; /* a first assignment arrived: the group knows us */
  int lane;           /* this loop's number among the instance's lanes */
  long abort_nth;     /* COMMAND_TEST_ABORT_TXN: abort this lane's nth transaction (0: never) */
  long hold_nth;      /* COMMAND_TEST_HOLD_TXN: hold this lane's nth transaction (0: never) */
  long hold_ms;       /* open for that long; -1: stop the process (SIGSTOP) there until SIGCONT */
  bool hold_before;   /* stop before the nth transaction begins instead (its batch consumed) */
  long transactions;  /* begun by this lane */
  char label_committed[48], label_aborted[48]; /* transactions_total's labels for this lane */
};

static int32_t partition_of(const char *key, void *ctx) {
  cqrs_command_loop_t *loop = ctx;
  return rd_kafka_msg_partitioner_murmur2(loop->commands_rkt, key, strlen(key), loop->n_partitions,
                                         NULL, NULL);
}

/* A fatal error (fenced, unknown transaction state, restore failed): the loop
 * thread records it and returns; main sees it through
 * cqrs_command_loop_failed, stops the service and exits 1. Loop thread only. */
static void fail(cqrs_command_loop_t *loop, const char *what, const char *why) {
  if (atomic_load(&loop->failed)) return; /* the first error is the one to report */
  cqrs_log_error(loop->log, "fatal Kafka error: exiting so the orchestrator restarts us", "during", what,
                 "error", why, NULL);
  cqrs_error_set(&loop->fatal, CQRS_ERR_FATAL, NULL, "%s: %s", what, why);
  atomic_store(&loop->failed, true);
}

/* False once the loop must end: asked to stop, or failed. */
static bool running(cqrs_command_loop_t *loop) {
  return !cqrs_worker_stopping(&loop->worker) && !atomic_load(&loop->failed);
}

/* ---- rebalancing: restore on assign, drop on revoke ---- */

typedef struct {
  cqrs_command_loop_t *loop;
  size_t n;
  bool ok;
  cqrs_error_t *err;
} snapshot_t;

static bool produce(cqrs_command_loop_t *loop, const char *topic, int32_t partition, const char *key,
                    const char *value, size_t len, rd_kafka_headers_t *hdrs, cqrs_error_t *err);

static void snapshot_one(cqrs_aggregate_t *a, void *ctx) {
  snapshot_t *s = ctx;
  if (!a->replayed || !s->ok) return;
  size_t len;
  char *state = cqrs_aggregate_to_json(a, &len);
  s->ok = produce(s->loop, s->loop->t_state, a->partition, a->key, state, len, NULL, s->err);
  bson_free(state);
  s->n++;
}

static void snapshot_done(cqrs_aggregate_t *a, void *ctx) {
  (void)ctx;
  a->replayed = false;
}

static void count_replayed(cqrs_aggregate_t *a, void *ctx) { *(size_t *)ctx += a->replayed; }

/* Writes the aggregates restore rebuilt from the event log to aggregate-state,
 * in one transaction: the state topic is whole again, so the next restore of
 * the partition reads it (and never misses an aggregate no command touched
 * since). Loop thread, between batches. False with err (fatal for the loop:
 * a restart restores from the log again). */
static bool snapshot_replayed(cqrs_command_loop_t *loop, size_t *n, cqrs_error_t *err) {
  snapshot_t s = {loop, 0, true, err};
  *n = 0;
  cqrs_aggregate_store_each(loop->store, count_replayed, n);
  if (*n == 0) return true; /* the usual case: restored from aggregate-state */
  if (!cqrs_kafka_check(rd_kafka_begin_transaction(loop->producer), "begin_transaction", err)) return false;
  cqrs_aggregate_store_each(loop->store, snapshot_one, &s);
  if (s.ok) s.ok = cqrs_kafka_check(rd_kafka_commit_transaction(loop->producer, -1), "commit_transaction", err);
  else cqrs_kafka_check(rd_kafka_abort_transaction(loop->producer, -1), "abort_transaction", NULL);
  if (s.ok) cqrs_aggregate_store_each(loop->store, snapshot_done, NULL);
  *n = s.n;
  return s.ok;
}

/* ---- state records from before tenancy ---- */

typedef struct {
  cqrs_command_loop_t *loop;
  cqrs_aggregate_t **found;
  size_t n, cap;
} legacy_t;

static void find_legacy(cqrs_aggregate_t *a, void *ctx) {
  legacy_t *l = ctx;
  if (partition_of(a->key, l->loop) == a->partition) return;
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 16;
    l->found = cqrs_xrealloc(l->found, l->cap * sizeof *l->found);
  }
  l->found[l->n++] = a;
}

static bool owns(const rd_kafka_topic_partition_list_t *parts, int32_t p) {
  for (int i = 0; i < parts->cnt; i++)
    if (parts->elems[i].partition == p) return true;
  return false;
}

/* A state record written before tenancy sits on the partition of its bare
 * aggregate id under that key; its aggregate key "default/<id>" belongs to
 * another partition, whose owner (another lane or replica) never reads this
 * one. Moves each such aggregate restored from parts: in one transaction, its
 * state under the aggregate key on the right partition and a tombstone for the
 * old record, so the next restore of either partition finds it once, in the
 * right place. Then forgets those of partitions this lane does not own (their
 * owner reads them at its next restore: after upgrading from before tenancy,
 * start one instance with COMMAND_LANES=1 once, as docs/multi-tenancy.md
 * says). Loop thread, in the assignment. False with err (fatal). */
static bool migrate_legacy(cqrs_command_loop_t *loop, const rd_kafka_topic_partition_list_t *parts, size_t *n,
                           cqrs_error_t *err) {
  legacy_t l = {loop, NULL, 0, 0};
  cqrs_aggregate_store_each(loop->store, find_legacy, &l);
  *n = l.n;
  if (l.n == 0) return true;
  bool ok = cqrs_kafka_check(rd_kafka_begin_transaction(loop->producer), "begin_transaction", err);
  for (size_t i = 0; ok && i < l.n; i++) {
    cqrs_aggregate_t *a = l.found[i];
    int32_t old = a->partition;
    a->partition = partition_of(a->key, loop);
    size_t len;
    char *state = cqrs_aggregate_to_json(a, &len);
    ok = produce(loop, loop->t_state, a->partition, a->key, state, len, NULL, err) &&
         produce(loop, loop->t_state, old, a->aggregate_id, NULL, 0, NULL, err);
    bson_free(state);
  }
  if (ok) ok = cqrs_kafka_check(rd_kafka_commit_transaction(loop->producer, -1), "commit_transaction", err);
  else cqrs_kafka_check(rd_kafka_abort_transaction(loop->producer, -1), "abort_transaction", NULL);
  for (size_t i = 0; ok && i < l.n; i++) {
    int32_t p = l.found[i]->partition;
    if (!owns(parts, p)) cqrs_aggregate_store_drop_partition(loop->store, p); /* ours hold none of p */
  }
  free(l.found);
  return ok;
}

/* The end offset of partition p of aggregate-state, or -1 when Kafka does not say. */
static int64_t state_end(cqrs_command_loop_t *loop, int32_t p) {
  int64_t lo, hi;
  return cqrs_kafka_watermarks(loop->producer, loop->t_state, p, &lo, &hi, 2000, NULL) ? hi : -1;
}

/* Revoked partitions keep their aggregates, parked with their aggregate-state
 * end offset: a rebalance that gives a partition straight back (an eager
 * rebalance revokes everything; lanes and replicas joining one after another
 * cause several) then costs no restore. */
static void park(cqrs_command_loop_t *loop, const rd_kafka_topic_partition_list_t *parts) {
  bool leaving = cqrs_worker_stopping(&loop->worker); /* the revocation of a shutdown: keep nothing, ask nothing */
  for (int i = 0; i < parts->cnt; i++) {
    int32_t p = parts->elems[i].partition;
    if (p < 0 || p >= loop->n_partitions) continue;
    loop->parked[p] = leaving ? -1 : state_end(loop, p);
    if (loop->parked[p] < 0) cqrs_aggregate_store_drop_partition(loop->store, p);
  }
}

/* The partitions of parts to restore: all but those parked whose
 * aggregate-state nobody wrote to since (the end offset is where it was: the
 * aggregates in hand are exactly what a restore would read). Parked
 * partitions not in parts are forgotten. *reused: partitions kept. */
static rd_kafka_topic_partition_list_t *unpark(cqrs_command_loop_t *loop, const rd_kafka_topic_partition_list_t *parts,
                                               int *reused) {
  rd_kafka_topic_partition_list_t *todo = rd_kafka_topic_partition_list_new(parts->cnt);
  bool *kept = cqrs_xcalloc((size_t)loop->n_partitions, sizeof *kept);
  *reused = 0;
  for (int32_t p = 0; p < loop->n_partitions; p++) {
    if (loop->parked[p] < 0) continue;
    kept[p] = owns(parts, p) && state_end(loop, p) == loop->parked[p];
    if (kept[p]) (*reused)++;
    else cqrs_aggregate_store_drop_partition(loop->store, p);
    loop->parked[p] = -1;
  }
  for (int i = 0; i < parts->cnt; i++) {
    int32_t p = parts->elems[i].partition;
    if (p < 0 || p >= loop->n_partitions || !kept[p])
      rd_kafka_topic_partition_list_add(todo, parts->elems[i].topic, p);
  }
  free(kept);
  return todo;
}

/* Restore gives up once the loop is asked to stop. */
static bool restore_stopping(void *ctx) { return cqrs_worker_stopping(&((cqrs_command_loop_t *)ctx)->worker); }

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                         void *ctx) {
  cqrs_command_loop_t *loop = ctx;
  char count[16];
  snprintf(count, sizeof count, "%d", parts->cnt);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    cqrs_error_t e = {0};
    int64_t t0 = cqrs_time_monotonic_ms();
    int reused;
    rd_kafka_topic_partition_list_t *todo = unpark(loop, parts, &reused);
    size_t before = cqrs_aggregate_store_size(loop->store);
    bool restored = todo->cnt == 0 || cqrs_restore_partitions(loop->cfg, loop->log, loop->t_state, loop->t_events,
                                                              todo, loop->store, restore_stopping, loop, &e);
    rd_kafka_topic_partition_list_destroy(todo);
    if (!restored) {
      if (cqrs_worker_stopping(&loop->worker)) /* asked to stop: not a failure */
        cqrs_log_info(loop->log, "restore interrupted: stopping", "partitions", count, NULL);
      else
        fail(loop, "restoring aggregate-state", e.message);
      rd_kafka_assign(rk, NULL);
      return;
    }
    size_t replayed = 0, moved = 0;
    if (!migrate_legacy(loop, parts, &moved, &e)) {
      fail(loop, "moving aggregate-state records from before tenancy to their partitions", e.message);
      rd_kafka_assign(rk, NULL);
      return;
    }
    if (moved) {
      char m[24];
      snprintf(m, sizeof m, "%zu", moved);
      cqrs_log_info(loop->log, "aggregate-state records from before tenancy moved to their aggregate's partition",
                    "aggregates", m, NULL);
    }
    if (!snapshot_replayed(loop, &replayed, &e)) {
      fail(loop, "writing the aggregates restored from the event log to aggregate-state", e.message);
      rd_kafka_assign(rk, NULL);
      return;
    }
    if (replayed) {
      char r[24];
      snprintf(r, sizeof r, "%zu", replayed);
      cqrs_log_info(loop->log, "aggregates restored from the event log written to aggregate-state", "aggregates", r,
                    NULL);
    }
    char ms[24], n[24];
    snprintf(ms, sizeof ms, "%lld", (long long)(cqrs_time_monotonic_ms() - t0));
    /* signed: moving records from before tenancy may leave fewer than before */
    snprintf(n, sizeof n, "%lld", (long long)cqrs_aggregate_store_size(loop->store) - (long long)before);
    char kept[16];
    snprintf(kept, sizeof kept, "%d", reused);
    cqrs_log_info(loop->log, "partitions assigned and restored", "partitions", count, "aggregates", n,
                  "restoreMs", ms, "partitionsKept", kept, NULL);
    rd_kafka_assign(rk, parts);
    if (!cqrs_tenant_topics_assign(loop->tenant_topics, parts, &e)) /* tried again at the next scan */
      cqrs_log_warn(loop->log, "tenant command topics not read for now", "error", e.message, NULL);
    atomic_store(&loop->joined, true);
  } else {
    cqrs_tenant_topics_revoke(loop->tenant_topics);
    cqrs_aggregate_store_abort(loop->store);
    park(loop, parts);
    cqrs_log_info(loop->log, "partitions revoked (their aggregates kept until the next assignment)", "partitions",
                  count, NULL);
    rd_kafka_assign(rk, NULL);
  }
}

/* ---- producing inside the transaction ---- */

/* Produces one record; waits out a full queue. False on any other error. */
static bool produce(cqrs_command_loop_t *loop, const char *topic, int32_t partition, const char *key,
                    const char *value, size_t len, rd_kafka_headers_t *hdrs, cqrs_error_t *err) {
  for (;;) {
    rd_kafka_resp_err_t e = rd_kafka_producev(
        loop->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_KEY(key, key ? strlen(key) : 0), RD_KAFKA_V_VALUE((void *)value, len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
    if (!e) return true;
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(loop->producer, 10);
      continue;
    }
    if (hdrs) rd_kafka_headers_destroy(hdrs);
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "produce to %s: %s", topic, rd_kafka_err2str(e));
    return false;
  }
}

/* Produces ev under its aggregate key. */
static bool produce_event(cqrs_command_loop_t *loop, int32_t partition, const char *key, const cqrs_event_t *ev,
                          cqrs_error_t *err) {
  cqrs_header_t hdrs[CQRS_EVENT_MAX_HEADERS];
  char version[24];
  size_t n = cqrs_event_to_headers(ev, hdrs, version);
  size_t len;
  char *value = cqrs_json_write(ev->data, &len);
  bool ok = produce(loop, loop->t_events, partition, key, value, len, cqrs_kafka_headers_new(hdrs, n), err);
  bson_free(value);
  return ok;
}

static const char *header_value(rd_kafka_message_t *m, const char *name, char *buf, size_t size) {
  rd_kafka_headers_t *h;
  const void *v;
  size_t len;
  if (rd_kafka_message_headers(m, &h) || rd_kafka_header_get_last(h, name, &v, &len) || !v) return NULL;
  snprintf(buf, size, "%.*s", (int)len, (const char *)v);
  return buf;
}

/* The record's "authorization" header as a string (malloc'd), or NULL when
 * it has none. A credential: never log it. */
static char *authorization_of(rd_kafka_message_t *m) {
  rd_kafka_headers_t *h;
  const void *v;
  size_t len;
  if (rd_kafka_message_headers(m, &h) || rd_kafka_header_get_last(h, CQRS_COMMAND_AUTH_HEADER, &v, &len) || !v)
    return NULL;
  return cqrs_xstrndup(v, len);
}

/* A record signed by saga-svc (cqrs/saga_sign.h): commands:write for the
 * tenant its MAC covers, while that tenant is active (as a credential of it
 * would need), for the command types sagas emit only. Fills ctx->tenant or
 * ctx->denied. */
static void authorize_saga(cqrs_command_loop_t *loop, rd_kafka_message_t *m, cqrs_principal_t *who,
                           cqrs_error_t *denied, cqrs_process_ctx_t *ctx) {
  char tenant[CQRS_TENANT_MAX + 2], sig[CQRS_SAGA_SIGNATURE_LEN + 1];
  const char *t = header_value(m, CQRS_SAGA_TENANT_HEADER, tenant, sizeof tenant);
  const char *s = header_value(m, CQRS_SAGA_SIGNATURE_HEADER, sig, sizeof sig);
  const char *value = m->payload ? m->payload : "";
  if (!loop->cfg->saga_signing_key) {
    cqrs_error_set(denied, CQRS_ERR_UNAUTHENTICATED, NULL, "a saga-signed record, but SAGA_SIGNING_KEY is not set");
  } else if (!t || !cqrs_tenant_valid(t, NULL) || !cqrs_saga_verify(loop->cfg->saga_signing_key, t, value, m->len, s)) {
    cqrs_error_set(denied, CQRS_ERR_UNAUTHENTICATED, NULL, "a saga signature that does not verify");
  } else if (!cqrs_auth_tenant_active(loop->auth, t)) {
    cqrs_error_set(denied, CQRS_ERR_UNAUTHENTICATED, NULL, "a saga command of a tenant not active");
  } else {
    size_t tn = strnlen(t, sizeof who->tenant - 1); /* valid: at most CQRS_TENANT_MAX */
    memcpy(who->tenant, t, tn);
    who->tenant[tn] = '\0';
    snprintf(who->subject, sizeof who->subject, "saga-svc");
    who->kind = CQRS_AUTHTYPE_SERVICE_ACCOUNT;
    who->scopes = CQRS_SCOPE_COMMANDS_WRITE;
    ctx->tenant = who->tenant;
    cqrs_command_t cmd;
    if (!cqrs_command_parse(&cmd, value, m->len, NULL) || !cqrs_saga_command_allowed(cmd.type))
      cqrs_error_set(denied, CQRS_ERR_FORBIDDEN, NULL, "a saga may not send this commandType");
    cqrs_command_cleanup(&cmd);
    if (!denied->message[0]) return;
  }
  ctx->denied = denied;
}

/* Who sent record m: fills ctx->tenant (from who) or ctx->denied (from
 * denied) as cqrs/auth.h decides. A record with no credential but a saga
 * signature is saga-svc's (authorize_saga); true for those. */
static bool authorize(cqrs_command_loop_t *loop, rd_kafka_message_t *m, cqrs_principal_t *who,
                      cqrs_error_t *denied, cqrs_process_ctx_t *ctx) {
  char *authorization = authorization_of(m);
  char probe[8];
  bool saga = !authorization && cqrs_auth_enabled(loop->auth) &&
              header_value(m, CQRS_SAGA_SIGNATURE_HEADER, probe, sizeof probe);
  if (saga) {
    authorize_saga(loop, m, who, denied, ctx);
  } else if (!cqrs_auth_verify(loop->auth, authorization, who, denied)) {
    ctx->denied = denied;
  } else if (!who->tenant[0]) {
    cqrs_error_set(denied, CQRS_ERR_FORBIDDEN, NULL, "a platform administrator credential names no tenant");
    ctx->denied = denied;
  } else {
    ctx->tenant = who->tenant;
    if (!cqrs_auth_require(who, CQRS_SCOPE_COMMANDS_WRITE, denied)) ctx->denied = denied;
  }
  free(authorization);
  return saga;
}

/* The tenant's rate limit (cqrs_admit_cb), counted where commands of every
 * ingress meet: HTTP (whose gate only peeks at this bucket), Kafka producers,
 * forwarded records (counted once, where decided). */
static bool admit(const char *tenant, int64_t *retry_after_ms, void *ctx) {
  cqrs_command_loop_t *loop = ctx;
  if (cqrs_ratelimit_take(loop->limits, tenant, cqrs_time_monotonic_ms(), retry_after_ms)) return true;
  char labels[96];
  snprintf(labels, sizeof labels, "tenant=\"%s\"", cqrs_metrics_tenant(loop->metrics, tenant));
  cqrs_metrics_add(loop->metrics, "rate_limited_total", labels, 1);
  return false;
}

/* A record on a tenant's own command topic (tenant_topics.h) is that
 * tenant's: one whose credential is another tenant's, or with a saga's
 * signature (sagas write to the shared topic), is refused 403. */
static void check_own_topic(cqrs_command_loop_t *loop, const char *topic, bool saga, cqrs_error_t *denied,
                            cqrs_process_ctx_t *ctx) {
  char own[CQRS_TENANT_MAX + 1];
  if (ctx->denied || strcmp(topic, loop->t_commands) == 0) return;
  if (!cqrs_tenant_topic_split(loop->cfg->topic_prefix, topic, own))
    cqrs_error_set(denied, CQRS_ERR_FORBIDDEN, NULL, "not a command topic: %s", topic);
  else if (saga)
    cqrs_error_set(denied, CQRS_ERR_FORBIDDEN, NULL, "a saga's command on tenant %s's own topic", own);
  else if (strcmp(ctx->tenant, own) != 0)
    cqrs_error_set(denied, CQRS_ERR_FORBIDDEN, NULL,
                   "a record on tenant %s's own command topic with a credential of another tenant", own);
  else
    return;
  ctx->denied = denied;
}

/* The headers a forwarded command keeps: its credential, its trace, its saga
 * signature, where its result is awaited and until when. */
static rd_kafka_headers_t *forward_headers(rd_kafka_message_t *m) {
  rd_kafka_headers_t *h, *fwd = NULL;
  if (rd_kafka_message_headers(m, &h)) return NULL;
  static const char *const keep[] = {CQRS_COMMAND_AUTH_HEADER, "traceparent", CQRS_SAGA_TENANT_HEADER,
                                     CQRS_SAGA_SIGNATURE_HEADER, CQRS_REPLY_PARTITION_HEADER,
                                     CQRS_COMMAND_DEADLINE_HEADER};
  for (size_t i = 0; i < sizeof keep / sizeof *keep; i++) {
    const void *v;
    size_t len;
    if (rd_kafka_header_get_last(h, keep[i], &v, &len) || !v) continue;
    if (!fwd) fwd = rd_kafka_headers_new(4);
    rd_kafka_header_add(fwd, keep[i], -1, v, (ssize_t)len);
  }
  return fwd;
}

/* The record's CQRS_COMMAND_DEADLINE_HEADER in ms since the epoch; 0 when
 * absent or not a positive decimal number (a malformed one never expires a
 * command: deciding it is what a command without one gets). */
static int64_t deadline_of(rd_kafka_message_t *m) {
  char buf[24], *end;
  const char *v = header_value(m, CQRS_COMMAND_DEADLINE_HEADER, buf, sizeof buf);
  if (!v) return 0;
  errno = 0;
  long long ms = strtoll(v, &end, 10);
  return errno || end == v || *end || ms <= 0 ? 0 : (int64_t)ms;
}

/* Processes one command record into the open transaction. */
static bool handle(cqrs_command_loop_t *loop, rd_kafka_message_t *m, const char *now, cqrs_error_t *err) {
  char tp[128];
  cqrs_principal_t who;
  cqrs_error_t denied = {0};
  cqrs_process_ctx_t ctx = {.partition = m->partition, .partition_of = partition_of, .partition_ctx = loop,
                            .now = now, .source = "command-svc", .schema_registry = loop->cfg->schema_registry_url,
                            .now_ms = cqrs_time_now_ms(), .deadline_ms = deadline_of(m),
                            .traceparent = header_value(m, "traceparent", tp, sizeof tp),
                            .settings = &loop->settings};
  /* Sagas' commands are not limited: they follow from the tenant's own
   * commands, which were, and a saga cannot wait and retry (a 429 would
   * fail its step). With AUTH=off they cannot be told from others (unsigned
   * without SAGA_SIGNING_KEY), so only the HTTP gate limits then. */
  const char *topic = rd_kafka_topic_name(m->rkt);
  bool saga = authorize(loop, m, &who, &denied, &ctx);
  check_own_topic(loop, topic, saga, &denied, &ctx);
  /* A record of a tenant's own topic had its token taken where it was read
   * (tenant_topics.h: it waited there for it). */
  bool own = strcmp(topic, loop->t_commands) != 0;
  if (!saga && !own && cqrs_ratelimit_enabled(loop->limits) && cqrs_auth_enabled(loop->auth)) {
    ctx.admit = admit;
    ctx.admit_ctx = loop;
  }
  if (!ctx.denied) { /* every event it causes says who */
    ctx.actor_type = who.kind;
    ctx.actor_id = who.subject;
  }
  cqrs_outcome_t out;
  cqrs_process_command(loop->store, &ctx, m->payload ? m->payload : "", m->payload ? m->len : 0, &out);
  if (ctx.denied) {
    char status[8];
    snprintf(status, sizeof status, "%d", out.status);
    cqrs_log_info(loop->log,
                  out.status == 401 ? "command record refused: authentication failed"
                                    : "command record refused: not allowed",
                  "status", status, "reason", denied.message, "commandId", out.command_id, "tenant", ctx.tenant,
                  NULL);
  }
  if (out.invalid_event) { /* validation before append refused our own event */
    char labels[96];
    snprintf(labels, sizeof labels, "type=\"%.*s\"", (int)strcspn(out.invalid_event, " "), out.invalid_event);
    cqrs_metrics_add(loop->metrics, "events_invalid_total", labels, 1);
    cqrs_log_error(loop->log, "a decided event does not match its schema: not appended, the command answers 500",
                   "event", out.invalid_event, "error", out.invalid_reason, "commandId", out.command_id,
                   "commandType", out.command_type, "tenant", ctx.tenant, NULL);
  }
  bool ok = true;
  if (out.expired) {
    cqrs_metrics_add(loop->metrics, "commands_expired_total", NULL, 1);
    cqrs_log_warn(loop->log,
                  "command past its deadline, not decided: its client was answered 503 and retries with the same "
                  "commandId",
                  "tenant", ctx.tenant, "commandId", out.command_id, "aggregateId", out.aggregate_id, NULL);
    goto done;
  }
  if (out.forward_partition >= 0) {
    /* to the owner's partition of the topic it came on (a tenant's own topic rides along with it) */
    ok = produce(loop, topic, out.forward_partition, out.aggregate_key, out.forward_json,
                 strlen(out.forward_json), forward_headers(m), err);
    cqrs_log_debug(loop->log, "command forwarded to its aggregate's partition", "tenant", ctx.tenant,
                   "commandId", out.command_id, "aggregateId", out.aggregate_id, NULL);
    goto done;
  }
  for (size_t i = 0; ok && i < out.n_events; i++)
    ok = produce_event(loop, m->partition, out.aggregate_key, &out.events[i], err);
  if (ok && out.staged) {
    size_t len;
    char *state = cqrs_aggregate_to_json(out.staged, &len);
    ok = produce(loop, loop->t_state, m->partition, out.staged->key, state, len, NULL, err);
    bson_free(state);
    if (ok) {
      cqrs_aggregate_store_stage(loop->store, out.staged);
      out.staged = NULL;
    }
  }
  if (ok) {
    /* The trace goes on with the result, for whoever waits on it. */
    rd_kafka_headers_t *rh = NULL;
    if (ctx.traceparent) {
      rh = rd_kafka_headers_new(1);
      rd_kafka_header_add(rh, "traceparent", -1, ctx.traceparent, -1);
    }
    /* On the partition the waiting HTTP ingress reads (cqrs/result.h), else
     * where the key hashes to. */
    rd_kafka_headers_t *mh;
    const void *rp = NULL;
    size_t rp_len = 0;
    if (!rd_kafka_message_headers(m, &mh)) rd_kafka_header_get_last(mh, CQRS_REPLY_PARTITION_HEADER, &rp, &rp_len);
    ok = produce(loop, loop->t_results, cqrs_result_reply_partition(rp, rp_len, loop->n_result_partitions),
                 out.result_key, out.result_json, out.result_len, rh, err);
  }
  if (ok) {
    char labels[160], status[8];
    snprintf(labels, sizeof labels, "type=\"%s\",status=\"%d\"",
             out.command_type ? out.command_type : "unknown", out.status);
    cqrs_metrics_add(loop->metrics, "commands_total", labels, 1);
    if (ctx.tenant) { /* a bounded label: 50 tenants by name, the rest _other */
      snprintf(labels, sizeof labels, "tenant=\"%s\",status=\"%d\"", cqrs_metrics_tenant(loop->metrics, ctx.tenant),
               out.status);
      cqrs_metrics_add(loop->metrics, "commands_by_tenant_total", labels, 1);
    }
    cqrs_metrics_add(loop->metrics, "events_appended_total", NULL, (double)out.n_events);
    snprintf(status, sizeof status, "%d", out.status);
    cqrs_log_debug(loop->log, "command decided", "tenant", ctx.tenant, "commandId", out.command_id, "aggregateId",
                   out.aggregate_id, "correlationId", out.correlation_id, "status", status, "traceparent",
                   ctx.traceparent, NULL);
  }
done:
  cqrs_outcome_cleanup(&out);
  return ok;
}

/* Offsets to commit: one past the last record of each partition in the batch. */
static rd_kafka_topic_partition_list_t *batch_offsets(rd_kafka_message_t **msgs, size_t n, bool first) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
  for (size_t i = 0; i < n; i++) {
    const char *topic = rd_kafka_topic_name(msgs[i]->rkt);
    rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(l, topic, msgs[i]->partition);
    if (!p) {
      p = rd_kafka_topic_partition_list_add(l, topic, msgs[i]->partition);
      p->offset = first ? msgs[i]->offset : msgs[i]->offset + 1;
    } else if (!first) {
      p->offset = msgs[i]->offset + 1;
    }
  }
  return l;
}

/* Puts the consumer back at the batch's first records, so an aborted batch is
 * consumed again. */
static void rewind_batch(cqrs_command_loop_t *loop, rd_kafka_message_t **msgs, size_t n) {
  rd_kafka_topic_partition_list_t *l = batch_offsets(msgs, n, true), *ours = rd_kafka_topic_partition_list_new(l->cnt);
  for (int i = 0; i < l->cnt; i++) /* the tenant topics are not the group consumer's */
    if (strcmp(l->elems[i].topic, loop->t_commands) == 0)
      rd_kafka_topic_partition_list_add(ours, l->elems[i].topic, l->elems[i].partition)->offset = l->elems[i].offset;
  rd_kafka_error_t *e = ours->cnt ? rd_kafka_seek_partitions(loop->consumer, ours, 5000) : NULL;
  if (e) {
    cqrs_log_warn(loop->log, "cannot rewind after abort", "error", rd_kafka_error_string(e), NULL);
    rd_kafka_error_destroy(e);
  }
  if (ours->cnt < l->cnt) cqrs_tenant_topics_rewind(loop->tenant_topics);
  rd_kafka_topic_partition_list_destroy(ours);
  rd_kafka_topic_partition_list_destroy(l);
}

/* COMMAND_TEST_HOLD_TXN (tests only), at transaction nth: with it open, all
 * of it produced and on the broker, wait hold_ms, or, at -1, stop the process
 * (SIGSTOP: no heartbeat, no HTTP) until SIGCONT, a zombie with a transaction
 * open; with before, stop it before the transaction begins, its batch
 * consumed. Then the batch goes on as usual. Loop thread. */
static void hold(cqrs_command_loop_t *loop, long nth, bool before) {
  if (nth != loop->hold_nth || before != loop->hold_before) return;
  if (!before) rd_kafka_flush(loop->producer, 10000);
  char n[24], ms[24];
  snprintf(n, sizeof n, "%ld", nth);
  snprintf(ms, sizeof ms, "%ld", loop->hold_ms);
  cqrs_log_warn(loop->log, "COMMAND_TEST_HOLD_TXN: holding a transaction", "transaction", n, "hold",
                before ? "stop-before" : loop->hold_ms < 0 ? "stop" : ms, NULL);
  if (loop->hold_ms < 0) raise(SIGSTOP);
  else usleep((useconds_t)loop->hold_ms * 1000);
  cqrs_log_warn(loop->log, "COMMAND_TEST_HOLD_TXN: the held transaction goes on", "transaction", n, NULL);
}

/* Runs one batch in one transaction. Returns false when the batch was aborted
 * (and rewound); fatal errors stop the loop. */
static bool run_batch(cqrs_command_loop_t *loop, rd_kafka_message_t **msgs, size_t n) {
  cqrs_error_t err = {0};
  int64_t t0 = cqrs_time_monotonic_ms();
  char now[32];
  cqrs_time_now_rfc3339(now);
  long nth = ++loop->transactions;
  hold(loop, nth, true);
  if (!cqrs_kafka_check(rd_kafka_begin_transaction(loop->producer), "begin_transaction", &err)) {
    fail(loop, "begin_transaction", err.message);
    return false;
  }
  /* The consumed offsets go first. A transaction begun right after the
   * previous commit finds its coordinator still completing that one and is
   * told CONCURRENT_TRANSACTIONS: AddOffsetsToTxn retries after
   * retry.backoff.ms (5), AddPartitionsToTxn, which the first record sends,
   * after a fixed 20 ms in librdkafka 2.0. Measured at 500 commands/s:
   * command -> visible p99 97-170 ms in four runs, 184-795 ms in five with
   * the records first (BENCHMARKS.md, "A transaction's own waits"). A fenced
   * zombie now fails here, before it has produced anything. */
  rd_kafka_topic_partition_list_t *offsets = batch_offsets(msgs, n, false);
  rd_kafka_error_t *e = cqrs_kafka_txn_send_offsets(loop->producer, loop->consumer, offsets);
  rd_kafka_topic_partition_list_destroy(offsets);
  const char *step = "send_offsets_to_transaction"; /* what e, if any, came from */
  int64_t t_offsets = cqrs_time_monotonic_ms();
  bool ok = true;
  if (!e) {
    for (size_t i = 0; ok && i < n; i++) ok = handle(loop, msgs[i], now, &err);
    if (ok) hold(loop, nth, false);
    if (ok && nth == loop->abort_nth) {
      rd_kafka_flush(loop->producer, 10000); /* the records reach the broker: the abort must hide them there */
      cqrs_error_set(&err, CQRS_ERR_UNAVAILABLE, NULL, "COMMAND_TEST_ABORT_TXN: aborting transaction %ld of lane %d",
                     nth, loop->lane);
      ok = false; /* everything is produced: the abort must take it all back */
    }
  }
  int64_t t_decided = cqrs_time_monotonic_ms();
  if (ok && !e) {
    e = rd_kafka_commit_transaction(loop->producer, -1);
    step = "commit_transaction";
  }
  if (ok && e) {
    if (!cqrs_kafka_txn_abortable(e, step, &err)) {
      fail(loop, step, err.message);
      return false;
    }
    ok = false;
  }
  if (ok) {
    cqrs_aggregate_store_commit(loop->store);
    int64_t t_end = cqrs_time_monotonic_ms();
    cqrs_metrics_observe(loop->metrics, "transaction_duration_seconds", NULL, (double)(t_end - t0) / 1000.0);
    /* where a transaction's time goes: the offsets, deciding and producing, the commit */
    cqrs_metrics_observe(loop->metrics, "transaction_phase_seconds", "phase=\"offsets\"",
                         (double)(t_offsets - t0) / 1000.0);
    cqrs_metrics_observe(loop->metrics, "transaction_phase_seconds", "phase=\"decide\"",
                         (double)(t_decided - t_offsets) / 1000.0);
    cqrs_metrics_observe(loop->metrics, "transaction_phase_seconds", "phase=\"commit\"",
                         (double)(t_end - t_decided) / 1000.0);
    cqrs_metrics_observe(loop->metrics, "transaction_commands", NULL, (double)n);
    cqrs_metrics_add(loop->metrics, "transactions_total", loop->label_committed, 1);
    return true;
  }
  /* Abortable: throw the batch away and consume it again. A group rebalance
   * that fenced us lands here too; the revoke callback then drops the state. */
  cqrs_log_warn(loop->log, "transaction aborted; the batch will be retried", "error", err.message, NULL);
  cqrs_metrics_add(loop->metrics, "transactions_total", loop->label_aborted, 1);
  cqrs_error_t aerr = {0};
  if (!cqrs_kafka_check(rd_kafka_abort_transaction(loop->producer, -1), "abort_transaction", &aerr)) {
    fail(loop, "abort_transaction", aerr.message);
    return false;
  }
  cqrs_aggregate_store_abort(loop->store);
  rewind_batch(loop, msgs, n);
  return false;
}

/* A test hook's "<lane>:<n>[:<arg>]" from environment variable name (tests
 * only; read once): n when <lane> is lane, else 0 (also when unset or
 * malformed). arg (size bytes, may be NULL) gets what follows the second
 * colon, "" when nothing does.
 * COMMAND_TEST_ABORT_TXN="<lane>:<n>": lane <lane> aborts its n-th
 * transaction after producing all of it, as when the broker refuses a commit.
 * COMMAND_TEST_HOLD_TXN="<lane>:<n>:<ms>|stop|stop-before": lane <lane>
 * holds its n-th transaction open, all of it produced, for ms (a slow
 * commit: the HTTP timeout) or stops the process there until SIGCONT (a
 * zombie with a transaction open), or stops it before that transaction
 * begins (a zombie between batches, its next batch in hand). */
static long test_hook_nth(const char *name, int lane, char *arg, size_t size) {
  const char *v = getenv(name);
  int l, used = 0;
  long n;
  if (arg) arg[0] = '\0';
  if (!v || sscanf(v, "%d:%ld%n", &l, &n, &used) != 2 || l != lane || n < 1) return 0;
  if (arg && v[used] == ':') snprintf(arg, size, "%s", v + used + 1);
  return n;
}

/* A transaction costs the broker and both clients about the same whatever it
 * carries (AddOffsetsToTxn, TxnOffsetCommit, AddPartitionsToTxn, EndTxn, a
 * marker per partition), and the lane begins one as soon as it holds a
 * command: at 100 commands/s that was nearly one transaction per command. So
 * a batch begun within COMMAND_TXN_LINGER_MS of the last transaction's start
 * first gathers what arrives until then (never past a full batch); a lane
 * that was idle for longer begins at once. 30 ms by default (BENCHMARKS.md,
 * "A transaction linger"): at 100 commands/s 997 transactions in 30 s
 * instead of 2,661 and the machine's CPU 80% instead of 139% (p50 39 ms
 * instead of 28, p99 the same); at 500/s 40% fewer transactions, the broker
 * 5-15 points of a core lower, command -> visible p99 a median 191 ms
 * against 329 over five alternated runs each (noisy); under HTTP at 64 and 256 connections
 * half the transactions and the same throughput within the noise. */
static size_t linger(cqrs_command_loop_t *loop, rd_kafka_message_t **msgs, size_t n, size_t max) {
  int64_t until = loop->last_txn_ms + loop->cfg->command_txn_linger_ms;
  for (int64_t now = cqrs_time_monotonic_ms(); now < until && n < max && running(loop);
       now = cqrs_time_monotonic_ms())
    n += cqrs_kafka_poll_batch(loop->consumer, msgs + n, max - n, (int)(until - now), loop->log);
  return n;
}

static void *loop_main(void *arg) {
  cqrs_command_loop_t *loop = arg;
  size_t max = (size_t)loop->cfg->command_batch_max;
  rd_kafka_message_t **msgs = cqrs_xmalloc(max * sizeof *msgs);
  int backoff_ms = 0;
  while (running(loop)) {
    cqrs_tenant_topics_scan(loop->tenant_topics);
    /* With tenants' own topics read too, they fill at most TENANT_TOPICS_BATCH_MAX records of a
     * batch and the shared topic the rest: a tenant's backlog on its own topic costs everyone
     * else's commands at most that much more transaction. */
    bool own = cqrs_tenant_topics_active(loop->tenant_topics);
    size_t shared = own && max > TENANT_TOPICS_BATCH_MAX ? max - TENANT_TOPICS_BATCH_MAX : max;
    size_t n = cqrs_kafka_poll_batch(loop->consumer, msgs, shared, own ? 10 : 100, loop->log);
    size_t room = max - n < TENANT_TOPICS_BATCH_MAX ? max - n : TENANT_TOPICS_BATCH_MAX;
    if (own) n += cqrs_tenant_topics_poll(loop->tenant_topics, msgs + n, room);
    if (n == 0) continue;
    n = linger(loop, msgs, n, shared);
    loop->last_txn_ms = cqrs_time_monotonic_ms();
    bool ok = run_batch(loop, msgs, n);
    for (size_t i = 0; i < n; i++) rd_kafka_message_destroy(msgs[i]);
    if (ok) {
      backoff_ms = 0;
    } else if (running(loop)) {
      backoff_ms = backoff_ms ? (backoff_ms * 2 > 5000 ? 5000 : backoff_ms * 2) : 100;
      usleep((useconds_t)backoff_ms * 1000);
    }
  }
  free(msgs);
  return NULL;
}

cqrs_command_loop_t *cqrs_command_loop_new(const cqrs_config_t *cfg, const cqrs_log_t *log,
                                           cqrs_metrics_t *metrics, cqrs_auth_t *auth, cqrs_ratelimit_t *limits,
                                           const char *instance_id, int lane, cqrs_error_t *err) {
  cqrs_command_loop_t *loop = cqrs_xcalloc(1, sizeof *loop);
  loop->lane = lane;
  loop->abort_nth = test_hook_nth("COMMAND_TEST_ABORT_TXN", lane, NULL, 0);
  char hold[16];
  loop->hold_nth = test_hook_nth("COMMAND_TEST_HOLD_TXN", lane, hold, sizeof hold);
  loop->hold_before = strcmp(hold, "stop-before") == 0;
  loop->hold_ms = loop->hold_before || strcmp(hold, "stop") == 0 ? -1 : atol(hold);
  snprintf(loop->label_committed, sizeof loop->label_committed, "outcome=\"committed\",lane=\"%d\"", lane);
  snprintf(loop->label_aborted, sizeof loop->label_aborted, "outcome=\"aborted\",lane=\"%d\"", lane);
  loop->cfg = cfg;
  loop->log = log;
  loop->metrics = metrics;
  loop->auth = auth;
  loop->limits = limits;
  loop->store = cqrs_aggregate_store_new();
  loop->settings.order_processing_timeout_s = cfg->order_processing_timeout_s;
  loop->t_commands = cqrs_config_topic(cfg, CQRS_TOPIC_COMMANDS);
  loop->t_events = cqrs_config_topic(cfg, CQRS_TOPIC_EVENTS);
  loop->t_state = cqrs_config_topic(cfg, CQRS_TOPIC_STATE);
  loop->t_results = cqrs_config_topic(cfg, CQRS_TOPIC_RESULTS);
  cqrs_metrics_describe(metrics, "commands_total", CQRS_METRIC_COUNTER, "Commands decided, by type and result status.");
  cqrs_metrics_describe(metrics, "commands_by_tenant_total", CQRS_METRIC_COUNTER,
                        "Commands decided, by tenant (50 named, then _other) and result status.");
  cqrs_metrics_describe(metrics, "commands_expired_total", CQRS_METRIC_COUNTER,
                        "Commands past their deadline header (an HTTP client answered 503) not decided.");
  cqrs_metrics_describe(metrics, "events_appended_total", CQRS_METRIC_COUNTER, "Events appended to the log.");
  cqrs_metrics_describe(metrics, "events_invalid_total", CQRS_METRIC_COUNTER,
                        "Decided events that failed validation against their schema (a bug): never appended.");
  cqrs_metrics_describe(metrics, "transactions_total", CQRS_METRIC_COUNTER, "Kafka transactions by outcome and lane.");
  cqrs_metrics_describe(metrics, "transaction_duration_seconds", CQRS_METRIC_HISTOGRAM,
                        "Time from begin to commit of a command batch transaction.");
  cqrs_metrics_describe(metrics, "transaction_phase_seconds", CQRS_METRIC_HISTOGRAM,
                        "A committed transaction's time by phase: decide (decide and produce), offsets "
                        "(send_offsets_to_transaction), commit (commit_transaction: delivery and markers).");
  cqrs_metrics_describe(metrics, "transaction_commands", CQRS_METRIC_HISTOGRAM,
                        "Command records per committed transaction.");

  char txn_id[512];
  snprintf(txn_id, sizeof txn_id, "%scommand-svc-%s-%d", cfg->topic_prefix, instance_id, lane);
  if (!(loop->producer = cqrs_kafka_txn_producer_new(cfg, log, txn_id, TXN_TIMEOUT_MS, err)) ||
      !(loop->consumer = cqrs_kafka_consumer_new(cfg, log, "command-svc", rebalance_cb, loop, err,
                                                 "auto.offset.reset", "earliest",
                                                 /* librdkafka keeps one fetch in flight per broker: a
                                                  * partition added or rewound while an empty fetch waits
                                                  * out fetch.wait.max.ms (500 by default) waited that long
                                                  * (a new instance's first command: 0.5 s of its 0.55 s) */
                                                 "fetch.wait.max.ms", "20",
                                                 /* a dead member's partitions move after 10 s, not 45 */
                                                 "session.timeout.ms", "10000",
                                                 /* a member learns of a rebalance at its next heartbeat:
                                                  * lanes joining one after another waited the default
                                                  * 3 s for the first to rejoin (start: 2.3 s -> ~1 s) */
                                                 "heartbeat.interval.ms", "300", NULL)))
    goto fail;
  rd_kafka_poll_set_consumer(loop->consumer);
  /* The results topic's partitions known before the first result: a record for
   * a topic the producer has no metadata for waits for librdkafka's once-a-second
   * topic scan (the first transaction took 0.9 s of its 0.95 s waiting so). */
  if (!cqrs_kafka_topics_ensure(loop->producer, cfg, 15000, &loop->n_partitions, err) ||
      (loop->n_result_partitions = cqrs_kafka_partition_count(loop->producer, loop->t_results, 15000, err)) <= 0)
    goto fail;
  loop->commands_rkt = rd_kafka_topic_new(loop->producer, loop->t_commands, NULL);
  /* the loop limits tenants only with auth (admit): so does the reading of their topics */
  if (!(loop->tenant_topics = cqrs_tenant_topics_new(cfg, log, metrics, loop->consumer, loop->t_commands,
                                                     loop->n_partitions, cqrs_auth_enabled(auth) ? limits : NULL,
                                                     err)))
    goto fail;
  loop->parked = cqrs_xmalloc((size_t)loop->n_partitions * sizeof *loop->parked);
  for (int32_t p = 0; p < loop->n_partitions; p++) loop->parked[p] = -1;
  if (!cqrs_kafka_check(rd_kafka_init_transactions(loop->producer, 30000), "init_transactions", err)) goto fail;
  return loop;
fail:
  cqrs_command_loop_destroy(loop);
  return NULL;
}

bool cqrs_command_loop_start(cqrs_command_loop_t *loop, cqrs_error_t *err) {
  if (!cqrs_kafka_subscribe(loop->consumer, loop->t_commands, err)) return false;
  char name[32];
  snprintf(name, sizeof name, "command-lane-%d", loop->lane);
  return cqrs_worker_start(&loop->worker, name, loop_main, loop, err);
}

void cqrs_command_loop_stop(cqrs_command_loop_t *loop) {
  if (loop) cqrs_worker_stop(&loop->worker);
}

bool cqrs_command_loop_failed(cqrs_command_loop_t *loop, cqrs_error_t *err) {
  if (!atomic_load(&loop->failed)) return false;
  if (err) *err = loop->fatal;
  return true;
}

bool cqrs_command_loop_ready(cqrs_command_loop_t *loop, cqrs_error_t *err) {
  if (atomic_load(&loop->failed)) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "the command loop failed: %s", loop->fatal.message);
    return false;
  }
  if (!atomic_load(&loop->joined)) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "not yet a member of the command-svc consumer group");
    return false;
  }
  if (!cqrs_kafka_ping(loop->producer, 2000)) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "Kafka does not answer");
    return false;
  }
  return true;
}

void cqrs_command_loop_destroy(cqrs_command_loop_t *loop) {
  if (!loop) return;
  cqrs_command_loop_stop(loop);
  if (loop->commands_rkt) rd_kafka_topic_destroy(loop->commands_rkt);
  if (loop->consumer) {
    rd_kafka_consumer_close(loop->consumer); /* leaves the group: partitions move now */
    rd_kafka_destroy(loop->consumer);
  }
  cqrs_tenant_topics_destroy(loop->tenant_topics); /* after the close: its revocation stops their reading */
  if (loop->producer) {
    rd_kafka_flush(loop->producer, 5000);
    rd_kafka_destroy(loop->producer);
  }
  cqrs_aggregate_store_destroy(loop->store);
  free(loop->parked);
  free(loop->t_commands);
  free(loop->t_events);
  free(loop->t_state);
  free(loop->t_results);
  free(loop);
}
