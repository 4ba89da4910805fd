/* Apply loop: events -> bulk writes -> commit, with dead letters. */
#include "apply_loop.h"

#include "cqrs/kafka.h"
#include "cqrs/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH_MAX 1000
#define WRITE_RETRIES 5

struct cqrs_apply_loop {
  cqrs_log_t log_copy; /* first: the Kafka clients' opaque points here */
  const cqrs_config_t *cfg;
  const cqrs_log_t *log;
  cqrs_metrics_t *metrics;
  mongoc_client_pool_t *pool;
  const cqrs_projection_t *proj;
  cqrs_read_models_t *read_models;
  cqrs_apply_opts_t opts;
  rd_kafka_t *consumer;
  rd_kafka_t *dlq;
  char *t_events, *t_dlq;
  char labels[96]; /* projection="..." */
  pthread_t thread;
  bool started;
  atomic_bool stop;
  atomic_bool halted;
  atomic_uint_least64_t applied, poisoned;
  atomic_int_least64_t lag;
  atomic_bool lag_known;
};

/* ---- poison events ---- */

static void dead_letter(cqrs_apply_loop_t *loop, rd_kafka_message_t *m, const char *error) {
  rd_kafka_headers_t *src = NULL, *h;
  h = rd_kafka_message_headers(m, &src) == RD_KAFKA_RESP_ERR_NO_ERROR ? rd_kafka_headers_copy(src)
                                                                      : rd_kafka_headers_new(6);
  char part[16], off[24];
  snprintf(part, sizeof part, "%d", m->partition);
  snprintf(off, sizeof off, "%lld", (long long)m->offset);
  rd_kafka_header_add(h, "dlq_error", -1, error, -1);
  rd_kafka_header_add(h, "dlq_projection", -1, loop->proj->name, -1);
  rd_kafka_header_add(h, "dlq_source_topic", -1, loop->t_events, -1);
  rd_kafka_header_add(h, "dlq_source_partition", -1, part, -1);
  rd_kafka_header_add(h, "dlq_source_offset", -1, off, -1);
  rd_kafka_resp_err_t e = rd_kafka_producev(loop->dlq, RD_KAFKA_V_TOPIC(loop->t_dlq),
                                            RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->payload, m->len),
                                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
                                            RD_KAFKA_V_END);
  if (e) rd_kafka_headers_destroy(h);
  cqrs_metrics_add(loop->metrics, "dlq_events_total", loop->labels, 1);
  cqrs_log_error(loop->log, "event sent to the dead letter topic", "projection", loop->proj->name, "error", error,
                 "partition", part, "offset", off, "produceError", e ? rd_kafka_err2str(e) : NULL, NULL);
}

/* An event that cannot be applied. Returns false when the loop must halt
 * before it (nothing from it on is applied or committed). */
static bool poison(cqrs_apply_loop_t *loop, rd_kafka_message_t *m, const char *error) {
  char part[16], off[24];
  snprintf(part, sizeof part, "%d", m->partition);
  snprintf(off, sizeof off, "%lld", (long long)m->offset);
  if (loop->opts.target) { /* rebuild: the live loop already dead-lettered it */
    cqrs_log_warn(loop->log, "rebuild skips a poison event", "projection", loop->proj->name, "error", error,
                  "partition", part, "offset", off, NULL);
  } else if (loop->opts.poison == CQRS_POISON_HALT) {
    cqrs_log_error(loop->log, "poison event: halting the projection before it (POISON_POLICY=halt)", "projection",
                   loop->proj->name, "error", error, "partition", part, "offset", off, NULL);
    atomic_store(&loop->halted, true);
    return false;
  } else {
    dead_letter(loop, m, error);
  }
  atomic_fetch_add(&loop->poisoned, 1);
  return true;
}

/* ---- writing ---- */

typedef struct {
  rd_kafka_message_t *m;
  cqrs_write_t w;
} pending_t;

static bool unavailable(const bson_error_t *e) {
  return e->domain == MONGOC_ERROR_SERVER_SELECTION || e->domain == MONGOC_ERROR_STREAM ||
         e->domain == MONGOC_ERROR_CLIENT;
}

static bson_t *upsert_opts(bool upsert) {
  bson_t *o = bson_new();
  BSON_APPEND_BOOL(o, "upsert", upsert);
  return o;
}

/* One bulk write of all pending writes, in order. */
static bool write_bulk(mongoc_collection_t *coll, pending_t *p, size_t n, bson_error_t *error) {
  bson_t opts = BSON_INITIALIZER;
  /* Ordered: writes of one aggregate must land in log order. Unordered, a
   * failed version v followed by an applied v+1 would make v's retry match
   * nothing (version guard) and its change would be lost. */
  BSON_APPEND_BOOL(&opts, "ordered", true);
  mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(coll, &opts);
  bson_destroy(&opts);
  for (size_t i = 0; i < n; i++) {
    bson_t *o = upsert_opts(p[i].w.upsert);
    mongoc_bulk_operation_update_one_with_opts(bulk, &p[i].w.filter, &p[i].w.update, o, error);
    bson_destroy(o);
  }
  bson_t reply;
  bool ok = mongoc_bulk_operation_execute(bulk, &reply, error) != 0;
  bson_destroy(&reply);
  mongoc_bulk_operation_destroy(bulk);
  return ok;
}

/* After a failed bulk write: write one by one, so one bad write neither
 * stalls nor skips the rest (FerretDB stops a batch at its first error, even
 * an unordered one). A duplicate key means a racing upsert already inserted:
 * the version guard makes that harmless. A write the store keeps refusing
 * after WRITE_RETRIES tries is poison. Returns the number of writes done
 * before a halt (n when none), or -1 when the store is unreachable. */
static long write_each(cqrs_apply_loop_t *loop, mongoc_collection_t *coll, pending_t *p, size_t n,
                       bson_error_t *error) {
  for (size_t i = 0; i < n; i++) {
    bool ok = false;
    for (int attempt = 0, backoff = 50; !ok && attempt < WRITE_RETRIES; attempt++, backoff *= 2) {
      bson_t *o = upsert_opts(p[i].w.upsert);
      ok = mongoc_collection_update_one(coll, &p[i].w.filter, &p[i].w.update, o, NULL, error) || error->code == 11000;
      bson_destroy(o);
      if (!ok && unavailable(error)) return -1;
      if (!ok) usleep((useconds_t)backoff * 1000); /* bounded retry of a refused write */
    }
    if (!ok && !poison(loop, p[i].m, error->message)) return (long)i;
  }
  return (long)n;
}

/* The collection this loop writes: the rebuild's target, or the one the read
 * model's alias points at. Its name goes to name. */
static mongoc_collection_t *target_collection(cqrs_apply_loop_t *loop, mongoc_client_t *client,
                                              char name[CQRS_COLLECTION_NAME_MAX]) {
  if (loop->opts.target)
    snprintf(name, CQRS_COLLECTION_NAME_MAX, "%s", loop->opts.target);
  else
    cqrs_read_models_resolve(loop->read_models, client, loop->proj->name, name);
  return mongoc_client_get_collection(client, loop->cfg->mongo_db, name);
}

/* Writes one chunk, retrying with backoff while the store is unreachable
 * (that is no reason to dead-letter anything). Returns how many of the writes
 * are done (n unless the loop halts at a poison write), or -1 when stopping. */
static long write_chunk(cqrs_apply_loop_t *loop, mongoc_collection_t *coll, pending_t *p, size_t n) {
  bson_error_t error;
  for (int attempt = 0, backoff = 100; !atomic_load(&loop->stop); attempt++) {
    if (write_bulk(coll, p, n, &error)) return (long)n;
    if (!unavailable(&error) || attempt >= WRITE_RETRIES) {
      long done = write_each(loop, coll, p, n, &error);
      if (done >= 0) return done;
    }
    cqrs_log_warn(loop->log, "store write failed; retrying", "projection", loop->proj->name, "error",
                  error.message, NULL);
    usleep((useconds_t)backoff * 1000);
    backoff = backoff < 5000 ? backoff * 2 : 5000;
  }
  return -1;
}

/* Writes the batch in bulk commands of at most cfg->mongo_bulk_max writes.
 * Why a cap: FerretDB v1.24 keeps one SQLite connection per update of an
 * update command open until the command ends, from a pool of 100; a command
 * of 100+ updates (a rebuild's first batch) waits for itself forever and
 * starves every other client. Returns writes done, or -1 when stopping. */
static long write_batch(cqrs_apply_loop_t *loop, pending_t *p, size_t n) {
  if (n == 0) return 0;
  mongoc_client_t *client = mongoc_client_pool_pop(loop->pool);
  char name[CQRS_COLLECTION_NAME_MAX];
  mongoc_collection_t *coll = target_collection(loop, client, name);
  size_t chunk = (size_t)loop->cfg->mongo_bulk_max, off = 0;
  long done = 0;
  while (off < n) {
    size_t len = n - off < chunk ? n - off : chunk;
    long d = write_chunk(loop, coll, p + off, len);
    if (d < 0) {
      done = -1;
      break;
    }
    done += d;
    if ((size_t)d < len) break; /* halted at a poison write */
    off += len;
  }
  mongoc_collection_destroy(coll);
  mongoc_client_pool_push(loop->pool, client);
  return done;
}

/* ---- the loop ---- */

static void update_lag(cqrs_apply_loop_t *loop) {
  rd_kafka_topic_partition_list_t *a = NULL;
  if (rd_kafka_assignment(loop->consumer, &a) || !a) return;
  rd_kafka_position(loop->consumer, a);
  int64_t total = 0;
  bool known = a->cnt > 0;
  for (int i = 0; i < a->cnt; i++) {
    int64_t lo, hi;
    if (rd_kafka_get_watermark_offsets(loop->consumer, a->elems[i].topic, a->elems[i].partition, &lo, &hi) ||
        hi < 0) {
      known = false;
      continue;
    }
    int64_t pos = a->elems[i].offset >= 0 ? a->elems[i].offset : lo;
    int64_t lag = hi > pos ? hi - pos : 0;
    total += lag;
    char labels[160];
    snprintf(labels, sizeof labels, "%s,partition=\"%d\"", loop->labels, a->elems[i].partition);
    if (!loop->opts.target) cqrs_metrics_set(loop->metrics, "projection_lag_events", labels, (double)lag);
  }
  atomic_store(&loop->lag, total);
  atomic_store(&loop->lag_known, known);
  rd_kafka_topic_partition_list_destroy(a);
}

/* Decodes msgs into writes; poison events are handled on the spot. *upto is
 * the number of msgs covered (n unless the loop halts at a poison event). */
static size_t prepare(cqrs_apply_loop_t *loop, rd_kafka_message_t **msgs, size_t n, pending_t *p, size_t *upto) {
  size_t np = 0;
  *upto = n;
  for (size_t i = 0; i < n; i++) {
    cqrs_header_t hdrs[32];
    size_t nh = cqrs_kafka_headers(msgs[i], hdrs, 32);
    cqrs_event_t ev;
    cqrs_error_t err = {0};
    bool skip = false, ok = true;
    if (!cqrs_event_from_record(&ev, hdrs, nh, msgs[i]->payload, msgs[i]->len, &err)) {
      ok = poison(loop, msgs[i], err.message);
    } else if (strcmp(ev.aggregate_type, loop->proj->aggregate_type) == 0) {
      if (!loop->proj->apply(&ev, &p[np].w, &skip, &err)) {
        cqrs_write_cleanup(&p[np].w);
        ok = poison(loop, msgs[i], err.message);
      } else if (skip) {
        cqrs_write_cleanup(&p[np].w);
      } else {
        p[np++].m = msgs[i];
      }
    }
    cqrs_event_cleanup(&ev);
    if (!ok) {
      *upto = i;
      break;
    }
  }
  return np;
}

/* Commits the offsets after msgs[0..upto). */
static void commit(cqrs_apply_loop_t *loop, rd_kafka_message_t **msgs, size_t upto) {
  if (upto == 0 || loop->opts.target) return; /* a rebuild keeps no offsets */
  rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(8);
  for (size_t i = 0; i < upto; i++) {
    rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(offsets, loop->t_events, msgs[i]->partition);
    if (!tp) tp = rd_kafka_topic_partition_list_add(offsets, loop->t_events, msgs[i]->partition);
    tp->offset = msgs[i]->offset + 1;
  }
  rd_kafka_resp_err_t e = rd_kafka_commit(loop->consumer, offsets, 0);
  rd_kafka_topic_partition_list_destroy(offsets);
  if (e)
    cqrs_log_warn(loop->log, "offset commit failed; the batch may be applied again (harmless)", "error",
                  rd_kafka_err2str(e), NULL);
}

static void run_batch(cqrs_apply_loop_t *loop, rd_kafka_message_t **msgs, size_t n, pending_t *p) {
  size_t upto;
  size_t np = prepare(loop, msgs, n, p, &upto);
  long done = write_batch(loop, p, np);
  for (size_t i = 0; i < np; i++) cqrs_write_cleanup(&p[i].w);
  if (done < 0) return; /* stopping: the uncommitted batch is read again next time */
  if ((size_t)done < np) upto = 0; /* halted at a poison write: keep the whole batch for later */
  rd_kafka_flush(loop->dlq, 10000); /* dead letters are durable before we move past them */
  commit(loop, msgs, upto);
  atomic_fetch_add(&loop->applied, (uint64_t)done);
  if (!loop->opts.target) cqrs_metrics_add(loop->metrics, "events_applied_total", loop->labels, (double)done);
}

static void *loop_main(void *arg) {
  cqrs_apply_loop_t *loop = arg;
  rd_kafka_message_t **msgs = calloc(BATCH_MAX, sizeof *msgs);
  pending_t *p = calloc(BATCH_MAX, sizeof *p);
  int64_t next_lag = 0;
  while (!atomic_load(&loop->stop) && !atomic_load(&loop->halted)) {
    size_t n = cqrs_kafka_poll_batch(loop->consumer, msgs, BATCH_MAX, 200, loop->log);
    if (n) run_batch(loop, msgs, n, p);
    for (size_t i = 0; i < n; i++) rd_kafka_message_destroy(msgs[i]);
    if (cqrs_time_monotonic_ms() >= next_lag) {
      update_lag(loop);
      next_lag = cqrs_time_monotonic_ms() + 250;
    }
  }
  free(msgs);
  free(p);
  return NULL;
}

/* True when coll already has an index called name. */
static bool has_index(mongoc_collection_t *coll, const char *name) {
  mongoc_cursor_t *cur = mongoc_collection_find_indexes_with_opts(coll, NULL);
  const bson_t *doc;
  bson_iter_t it;
  bool found = false;
  while (mongoc_cursor_next(cur, &doc)) /* to the end: no cursor left open on the server */
    found |= bson_iter_init_find(&it, doc, "name") && BSON_ITER_HOLDS_UTF8(&it) &&
             strcmp(bson_iter_utf8(&it, NULL), name) == 0;
  mongoc_cursor_destroy(cur);
  return found;
}

/* Creates the projection's indexes that are missing. Only the missing ones:
 * FerretDB v1.24 drops the connection when asked to create again a compound
 * index that exists. */
static bool ensure_indexes(cqrs_apply_loop_t *loop, cqrs_error_t *err) {
  mongoc_client_t *client = mongoc_client_pool_pop(loop->pool);
  char name[CQRS_COLLECTION_NAME_MAX];
  mongoc_collection_t *coll = target_collection(loop, client, name);
  bson_t all = BSON_INITIALIZER, cmd = BSON_INITIALIZER, missing;
  loop->proj->indexes(&all);
  BSON_APPEND_UTF8(&cmd, "createIndexes", name);
  BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &missing);
  bson_iter_t it, nit;
  uint32_t n = 0;
  if (bson_iter_init(&it, &all)) {
    while (bson_iter_next(&it)) {
      bson_iter_t sub;
      if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &sub) || !bson_iter_find(&sub, "name")) continue;
      nit = sub;
      if (has_index(coll, bson_iter_utf8(&nit, NULL))) continue;
      char key[16];
      const char *k;
      bson_uint32_to_string(n++, &k, key, sizeof key);
      bson_append_value(&missing, k, -1, bson_iter_value(&it));
    }
  }
  bson_append_array_end(&cmd, &missing);
  bson_error_t e;
  bool ok = n == 0 || mongoc_client_write_command_with_opts(client, loop->cfg->mongo_db, &cmd, NULL, NULL, &e);
  if (!ok) cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "createIndexes on %s: %s", name, e.message);
  bson_destroy(&cmd);
  bson_destroy(&all);
  mongoc_collection_destroy(coll);
  mongoc_client_pool_push(loop->pool, client);
  return ok;
}

cqrs_apply_loop_t *cqrs_apply_loop_new(const cqrs_config_t *cfg, const cqrs_log_t *log, cqrs_metrics_t *metrics,
                                       mongoc_client_pool_t *pool, cqrs_read_models_t *read_models,
                                       const cqrs_projection_t *projection, const cqrs_apply_opts_t *opts,
                                       cqrs_error_t *err) {
  cqrs_apply_loop_t *loop = calloc(1, sizeof *loop);
  loop->log_copy = *log;
  loop->cfg = cfg;
  loop->log = log;
  loop->metrics = metrics;
  loop->pool = pool;
  loop->read_models = read_models;
  loop->proj = projection;
  loop->opts = *opts;
  loop->t_events = cqrs_config_topic(cfg, CQRS_TOPIC_EVENTS);
  loop->t_dlq = cqrs_config_topic(cfg, CQRS_TOPIC_DLQ);
  snprintf(loop->labels, sizeof loop->labels, "projection=\"%s\"", projection->name);
  char group[256];
  if (opts->target) /* never commits: the name only has to be unique */
    snprintf(group, sizeof group, "%sprojector-%s-rebuild", cfg->topic_prefix, projection->name);
  else
    snprintf(group, sizeof group, "%sprojector-%s", cfg->topic_prefix, projection->name);
  rd_kafka_conf_t *pconf = cqrs_kafka_conf_new(cfg, log, err, "enable.idempotence", "true", NULL);
  if (!pconf || !(loop->dlq = cqrs_kafka_new(RD_KAFKA_PRODUCER, pconf, err))) goto fail;
  rd_kafka_conf_t *cconf = cqrs_kafka_conf_new(cfg, log, err, "group.id", group, "isolation.level", "read_committed",
                                               "enable.auto.commit", "false", "auto.offset.reset", "earliest",
                                               /* a dead member's partitions move after 10 s, not 45 */
                                               "session.timeout.ms", "10000", NULL);
  if (!cconf || !(loop->consumer = cqrs_kafka_new(RD_KAFKA_CONSUMER, cconf, err))) goto fail;
  rd_kafka_poll_set_consumer(loop->consumer);
  /* Subscribing to a topic that does not exist yet would wait for the next
   * metadata refresh (minutes): make sure it is there. */
  int partitions;
  if (!cqrs_kafka_topics_ensure(loop->dlq, cfg, 15000, &partitions, err) || !ensure_indexes(loop, err)) goto fail;
  return loop;
fail:
  cqrs_apply_loop_destroy(loop);
  return NULL;
}

/* Rebuild: every partition of events, from the beginning or from a time. */
static bool assign_for_rebuild(cqrs_apply_loop_t *loop, cqrs_error_t *err) {
  int n = cqrs_kafka_partition_count(loop->consumer, loop->t_events, 10000, err);
  if (n <= 0) return false;
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
  for (int p = 0; p < n; p++)
    rd_kafka_topic_partition_list_add(l, loop->t_events, p)->offset =
        loop->opts.from_time_ms > 0 ? loop->opts.from_time_ms : RD_KAFKA_OFFSET_BEGINNING;
  bool ok = true;
  if (loop->opts.from_time_ms > 0) {
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(loop->consumer, l, 10000);
    if (e) {
      cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "offsets for time: %s", rd_kafka_err2str(e));
      ok = false;
    }
    for (int i = 0; ok && i < l->cnt; i++) /* no event at or after the time: nothing to replay there */
      if (l->elems[i].offset < 0) l->elems[i].offset = RD_KAFKA_OFFSET_END;
  }
  if (ok) rd_kafka_assign(loop->consumer, l);
  rd_kafka_topic_partition_list_destroy(l);
  return ok;
}

bool cqrs_apply_loop_start(cqrs_apply_loop_t *loop, cqrs_error_t *err) {
  if (loop->opts.target) {
    if (!assign_for_rebuild(loop, err)) return false;
  } else if (!cqrs_kafka_subscribe(loop->consumer, loop->t_events, err)) {
    return false;
  }
  if (pthread_create(&loop->thread, NULL, loop_main, loop) != 0) {
    cqrs_error_set(err, CQRS_ERR_FATAL, NULL, "cannot start the apply loop thread");
    return false;
  }
  loop->started = true;
  return true;
}

void cqrs_apply_loop_stop(cqrs_apply_loop_t *loop) {
  if (!loop || !loop->started) return;
  atomic_store(&loop->stop, true);
  pthread_join(loop->thread, NULL);
  loop->started = false;
  rd_kafka_consumer_close(loop->consumer);
}

void cqrs_apply_loop_progress(cqrs_apply_loop_t *loop, cqrs_apply_progress_t *out) {
  out->applied = atomic_load(&loop->applied);
  out->poisoned = atomic_load(&loop->poisoned);
  out->lag = atomic_load(&loop->lag);
  out->lag_known = atomic_load(&loop->lag_known);
  out->halted = atomic_load(&loop->halted);
}

bool cqrs_apply_loop_ready(cqrs_apply_loop_t *loop, cqrs_error_t *err) {
  if (atomic_load(&loop->halted)) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "projection %s halted at a poison event (see the log)",
                   loop->proj->name);
    return false;
  }
  if (cqrs_kafka_ping(loop->consumer, 2000)) return true;
  cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "Kafka does not answer");
  return false;
}

void cqrs_apply_loop_destroy(cqrs_apply_loop_t *loop) {
  if (!loop) return;
  cqrs_apply_loop_stop(loop);
  if (loop->consumer) rd_kafka_destroy(loop->consumer);
  if (loop->dlq) {
    rd_kafka_flush(loop->dlq, 5000);
    rd_kafka_destroy(loop->dlq);
  }
  free(loop->t_events);
  free(loop->t_dlq);
  free(loop);
}
