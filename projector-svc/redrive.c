/* Dead-letter redrives (redrive.h). */
#include "redrive.h"

#include "projection.h"

#include "cqrs/alloc.h"
#include "cqrs/json.h"
#include "cqrs/kafka.h"
#include "cqrs/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FETCH_MS 10000
#define PUT_TIMEOUT_MS 10000

struct cqrs_redrive {
  const cqrs_config_t *cfg;
  const cqrs_log_t *log;
  mongoc_client_pool_t *pool;
  cqrs_tenants_t *tenants;
  cqrs_ops_t *ops;
  rd_kafka_t *reader, *producer;
  char *t_dlq;
};

cqrs_redrive_t *cqrs_redrive_new(const cqrs_config_t *cfg, const cqrs_log_t *log, mongoc_client_pool_t *pool,
                                 cqrs_tenants_t *tenants, cqrs_ops_t *ops, cqrs_error_t *err) {
  cqrs_redrive_t *rd = cqrs_xcalloc(1, sizeof *rd);
  *rd = (cqrs_redrive_t){cfg, log, pool, tenants, ops, NULL, NULL, cqrs_config_topic(cfg, CQRS_TOPIC_DLQ)};
  /* read committed: saga-svc writes its dead letters inside its transactions
   * (one of an aborted batch is no dead letter); projector-svc's, produced
   * plainly, read the same */
  if (!(rd->reader = cqrs_kafka_consumer_new(cfg, log, "redrive", NULL, NULL, err, "isolation.level",
                                             "read_committed", NULL)) ||
      !(rd->producer = cqrs_kafka_producer_new(cfg, log, NULL, NULL, err, "enable.idempotence", "true", NULL))) {
    cqrs_redrive_destroy(rd);
    return NULL;
  }
  return rd;
}

void cqrs_redrive_destroy(cqrs_redrive_t *rd) {
  if (!rd) return;
  if (rd->reader) {
    rd_kafka_consumer_close(rd->reader);
    rd_kafka_destroy(rd->reader);
  }
  if (rd->producer) {
    rd_kafka_flush(rd->producer, 5000);
    rd_kafka_destroy(rd->producer);
  }
  free(rd->t_dlq);
  free(rd);
}

/* The dead letter at partition/offset of events.dlq, or NULL with err. */
static rd_kafka_message_t *fetch(cqrs_redrive_t *rd, int32_t partition, int64_t offset, cqrs_error_t *err) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, rd->t_dlq, partition)->offset = offset;
  rd_kafka_assign(rd->reader, l);
  rd_kafka_topic_partition_list_destroy(l);
  rd_kafka_message_t *found = NULL;
  for (int64_t deadline = cqrs_time_monotonic_ms() + FETCH_MS; !found && cqrs_time_monotonic_ms() < deadline;) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rd->reader, 200);
    if (!m) continue;
    if (!m->err && m->partition == partition && m->offset == offset)
      found = m;
    else
      rd_kafka_message_destroy(m);
  }
  rd_kafka_assign(rd->reader, NULL);
  if (!found) cqrs_error_set(err, CQRS_ERR_NOT_FOUND, NULL, "no dead letter at %d-%lld", partition, (long long)offset);
  return found;
}

static char *header_copy(rd_kafka_message_t *m, const char *name) {
  rd_kafka_headers_t *h = NULL;
  const void *v;
  size_t len;
  if (rd_kafka_message_headers(m, &h) || rd_kafka_header_get_last(h, name, &v, &len) || !v) return NULL;
  char *s = cqrs_xmalloc(len + 1);
  memcpy(s, v, len);
  s[len] = '\0';
  return s;
}

/* Applies the dead letter m to its projection's live collection. False with
 * err when it still fails. */
static bool apply(cqrs_redrive_t *rd, rd_kafka_message_t *m, cqrs_error_t *err) {
  char *pname = header_copy(m, CQRS_DLQ_PROJECTION);
  const cqrs_projection_t *proj = pname ? cqrs_projection_find(pname) : NULL;
  free(pname);
  if (!proj) {
    cqrs_error_set(err, CQRS_ERR_INVALID, NULL, "the dead letter names no known projection");
    return false;
  }
  cqrs_header_t hdrs[40];
  size_t nh = cqrs_kafka_headers(m, hdrs, 40);
  cqrs_event_t ev;
  cqrs_write_t w;
  bool skip = false, w_made = false;
  /* A dead letter written at an older event version is upcast by the
   * projection's dispatch (cqrs_projection_dispatch), as on every read path. */
  bool ok = cqrs_event_from_record(&ev, hdrs, nh, m->payload, m->len, err);
  if (ok) {
    ok = cqrs_projection_apply(proj, NULL, &ev, &w, &skip, err);
    w_made = true;
  }
  if (ok && !skip) {
    cqrs_tenants_enter(rd->tenants);
    if (!cqrs_tenants_deleted(rd->tenants, ev.tenant)) {
      char db[CQRS_TENANT_DB_MAX], coll[CQRS_COLLECTION_NAME_MAX];
      cqrs_tenants_db(rd->tenants, ev.tenant, db);
      cqrs_tenants_resolve(rd->tenants, ev.tenant, proj->name, coll);
      ok = cqrs_tenants_prepare(rd->tenants, ev.tenant, coll, proj, err);
      mongoc_client_t *client = mongoc_client_pool_pop(rd->pool);
      mongoc_collection_t *c = mongoc_client_get_collection(client, db, coll);
      bson_t *opts = BCON_NEW("upsert", BCON_BOOL(w.upsert));
      bson_error_t e;
      /* 11000: an upsert whose guard matched nothing met a newer document: nothing to do */
      if (ok && !mongoc_collection_update_one(c, &w.filter, &w.update, opts, NULL, &e) && e.code != 11000) {
        cqrs_error_set(err, CQRS_ERR_INVALID, NULL, "the store refused the write: %s", e.message);
        ok = false;
      }
      bson_destroy(opts);
      mongoc_collection_destroy(c);
      mongoc_client_pool_push(rd->pool, client);
    }
    cqrs_tenants_leave(rd->tenants);
  }
  if (w_made) cqrs_write_cleanup(&w);
  cqrs_event_cleanup(&ev);
  return ok;
}

/* Puts m back on events.dlq as a new dead letter with error: its headers
 * without the old dlq_* ones, then new ones (the source coordinates kept). */
static bool send_back(cqrs_redrive_t *rd, rd_kafka_message_t *m, const char *error, cqrs_error_t *err) {
  rd_kafka_headers_t *src = NULL;
  rd_kafka_headers_t *h = rd_kafka_headers_new(16);
  const char *keep[] = {CQRS_DLQ_PROJECTION, CQRS_DLQ_SOURCE_TOPIC, CQRS_DLQ_SOURCE_PARTITION, CQRS_DLQ_SOURCE_OFFSET};
  char *kept[4];
  for (int i = 0; i < 4; i++) kept[i] = header_copy(m, keep[i]);
  if (!rd_kafka_message_headers(m, &src)) {
    const char *name;
    const void *v;
    size_t len;
    for (size_t i = 0; !rd_kafka_header_get_all(src, i, &name, &v, &len); i++)
      if (strncmp(name, CQRS_DLQ_HEADER_PREFIX, strlen(CQRS_DLQ_HEADER_PREFIX)) != 0)
        rd_kafka_header_add(h, name, -1, v, (ssize_t)len);
  }
  rd_kafka_header_add(h, CQRS_DLQ_ERROR, -1, error, -1);
  for (int i = 0; i < 4; i++)
    if (kept[i]) rd_kafka_header_add(h, keep[i], -1, kept[i], -1);
  char from[48];
  snprintf(from, sizeof from, "%d-%lld", m->partition, (long long)m->offset);
  rd_kafka_header_add(h, CQRS_DLQ_REDRIVEN_FROM, -1, from, -1);
  for (int i = 0; i < 4; i++) free(kept[i]);
  rd_kafka_resp_err_t e = rd_kafka_producev(rd->producer, RD_KAFKA_V_TOPIC(rd->t_dlq),
                                            RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->payload, m->len),
                                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
                                            RD_KAFKA_V_END);
  if (e) {
    rd_kafka_headers_destroy(h);
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "cannot put the dead letter back: %s", rd_kafka_err2str(e));
    return false;
  }
  if (rd_kafka_flush(rd->producer, PUT_TIMEOUT_MS)) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "the dead letter put back was not acknowledged");
    return false;
  }
  return true;
}

static void record(cqrs_redrive_t *rd, const char *id, const char *error) {
  bson_t doc = BSON_INITIALIZER;
  char now[32];
  cqrs_time_now_rfc3339(now);
  BSON_APPEND_UTF8(&doc, "state", CQRS_DLQ_REDRIVEN);
  if (error)
    BSON_APPEND_UTF8(&doc, "error", error);
  else
    BSON_APPEND_NULL(&doc, "error");
  BSON_APPEND_UTF8(&doc, "at", now);
  char *json = cqrs_json_write(&doc, NULL);
  bson_destroy(&doc);
  char key[96];
  snprintf(key, sizeof key, "%s%s", CQRS_OPS_DLQ_STATE, id);
  cqrs_error_t err = {0};
  if (!cqrs_ops_put(rd->ops, key, json, false, PUT_TIMEOUT_MS, &err))
    cqrs_log_warn(rd->log, "cannot record a redrive", "id", id, "error", err.message, NULL);
  bson_free(json);
}

/* One redrive: false when it must be tried again later (Kafka away). */
static bool redrive_one(cqrs_redrive_t *rd, const char *id, int32_t partition, int64_t offset) {
  cqrs_error_t err = {0};
  rd_kafka_message_t *m = fetch(rd, partition, offset, &err);
  if (!m) {
    cqrs_log_warn(rd->log, "cannot read a dead letter to redrive", "id", id, "error", err.message, NULL);
    if (err.code == CQRS_ERR_NOT_FOUND) record(rd, id, err.message);
    return err.code == CQRS_ERR_NOT_FOUND;
  }
  bool done = true;
  if (apply(rd, m, &err)) {
    cqrs_log_info(rd->log, "dead letter redriven: applied", "id", id, NULL);
    record(rd, id, NULL);
  } else if (err.code == CQRS_ERR_UNAVAILABLE) {
    done = false; /* the store is away: try again */
  } else {
    cqrs_error_t serr = {0};
    char error[256];
    snprintf(error, sizeof error, "%s", err.message);
    if (send_back(rd, m, error, &serr)) {
      cqrs_log_warn(rd->log, "dead letter redriven: it failed again and is back in the dead letters", "id", id,
                    "error", error, NULL);
      record(rd, id, error);
    } else {
      done = false;
    }
  }
  rd_kafka_message_destroy(m);
  return done;
}

typedef struct {
  char id[48];
  int32_t partition;
  int64_t offset;
} pending_t;

static int by_offset(const void *a, const void *b) {
  const pending_t *x = a, *y = b;
  if (x->partition != y->partition) return x->partition < y->partition ? -1 : 1;
  return (x->offset > y->offset) - (x->offset < y->offset);
}

void cqrs_redrive_run(cqrs_redrive_t *rd) {
  char **keys, **values;
  size_t n = cqrs_ops_list(rd->ops, CQRS_OPS_DLQ, &keys, &values);
  size_t plen = strlen(CQRS_OPS_DLQ), np = 0;
  pending_t *todo = cqrs_xcalloc(n ? n : 1, sizeof *todo);
  for (size_t i = 0; i < n; i++) {
    const char *id = keys[i] + plen;
    cqrs_error_t err = {0};
    bson_t *doc = cqrs_json_parse(values[i], strlen(values[i]), &err);
    const char *action = NULL;
    bool redrive = doc && cqrs_json_get_string(doc, "action", NULL, true, 16, &action, &err) &&
                   strcmp(action, CQRS_DLQ_REDRIVE) == 0;
    if (doc) bson_destroy(doc);
    if (!redrive) continue; /* a discard: nothing to do here */
    char state_key[96];
    snprintf(state_key, sizeof state_key, "%s%s", CQRS_OPS_DLQ_STATE, id);
    char *done = cqrs_ops_get(rd->ops, state_key);
    free(done);
    pending_t *p = &todo[np];
    if (done || strlen(id) >= sizeof p->id || sscanf(id, "%d-%lld", &p->partition, (long long *)&p->offset) != 2)
      continue;
    snprintf(p->id, sizeof p->id, "%s", id);
    np++;
  }
  qsort(todo, np, sizeof *todo, by_offset); /* in the order they died */
  for (size_t i = 0; i < np; i++)
    if (!redrive_one(rd, todo[i].id, todo[i].partition, todo[i].offset)) break;
  free(todo);
  cqrs_ops_free_list(keys, values, n);
}
