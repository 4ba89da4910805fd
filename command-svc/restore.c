/* Restore on assignment: a short-lived consumer reads each assigned partition
 * of aggregate-state to its end; a partition with no state record at all
 * while its events partition has events (the state topic was lost) is
 * rebuilt from the event log instead (replay.h). */
#include "restore.h"
#include "replay.h"

#include "cqrs/kafka.h"
#include "cqrs/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROGRESS_MS 5000

typedef struct {
  const cqrs_log_t *log;
  cqrs_aggregate_store_t *store;
  size_t records, unreadable;
} ctx_t;

/* One aggregate-state record into the store. */
static void put_state(ctx_t *c, rd_kafka_message_t *m) {
  if (!m->key || !m->payload) return;
  char *key = strndup(m->key, m->key_len);
  cqrs_error_t perr = {0};
  cqrs_aggregate_t *a = cqrs_aggregate_from_json(key, m->partition, m->payload, m->len, &perr);
  if (a)
    cqrs_aggregate_store_put(c->store, a);
  else
    cqrs_log_warn(c->log, "skipping a malformed aggregate-state record", "key", key, "error", perr.message, NULL);
  free(key);
}

/* One event of the log into its aggregate. An event that cannot be read is
 * logged: its aggregate is refused from then on (replay.h), nothing crashes
 * and nothing is dropped silently. */
static void put_event(ctx_t *c, rd_kafka_message_t *m) {
  cqrs_header_t hdrs[32];
  size_t nh = cqrs_kafka_headers(m, hdrs, 32);
  cqrs_event_t ev;
  cqrs_error_t err = {0};
  char part[16], off[24];
  snprintf(part, sizeof part, "%d", m->partition);
  snprintf(off, sizeof off, "%lld", (long long)m->offset);
  if (!cqrs_event_from_record(&ev, hdrs, nh, m->payload, m->len, &err)) {
    cqrs_log_error(c->log, "restoring from the event log: an event that cannot be decoded is skipped", "error",
                   err.message, "partition", part, "offset", off, NULL);
  } else if (!cqrs_replay_event(c->store, m->partition, &ev, &err)) {
    c->unreadable++;
    cqrs_log_error(c->log, "restoring from the event log: its aggregate refuses commands until this is fixed",
                   "eventType", ev.type, "aggregateId", ev.aggregate_id, "tenant", ev.tenant, "error", err.message,
                   "partition", part, "offset", off, NULL);
  }
  cqrs_event_cleanup(&ev);
}

/* Reads the partitions todo (offsets set) to their ends, each record into
 * put. False with err when Kafka fails. */
static bool read_to_end(rd_kafka_t *rk, const char *what, rd_kafka_topic_partition_list_t *todo, ctx_t *c,
                        void (*put)(ctx_t *, rd_kafka_message_t *), cqrs_error_t *err) {
  if (todo->cnt == 0) return true;
  rd_kafka_assign(rk, todo);
  int remaining = todo->cnt;
  int64_t t0 = cqrs_time_monotonic_ms(), next_progress = t0 + PROGRESS_MS;
  bool ok = true;
  while (ok && remaining > 0) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      remaining--;
    } else if (m->err) {
      cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "reading %s: %s", what, rd_kafka_message_errstr(m));
      ok = false;
    } else {
      put(c, m);
      c->records++;
    }
    rd_kafka_message_destroy(m);
    if (cqrs_time_monotonic_ms() >= next_progress) {
      char n[24], rate[24];
      int64_t ms = cqrs_time_monotonic_ms() - t0;
      snprintf(n, sizeof n, "%zu", c->records);
      snprintf(rate, sizeof rate, "%.0f", c->records * 1000.0 / (double)(ms ? ms : 1));
      cqrs_log_info(c->log, "restoring", "from", what, "records", n, "recordsPerSecond", rate, NULL);
      next_progress += PROGRESS_MS;
    }
  }
  rd_kafka_assign(rk, NULL);
  return ok;
}

bool cqrs_restore_partitions(const cqrs_config_t *cfg, const cqrs_log_t *log, const char *state_topic,
                             const char *events_topic, const rd_kafka_topic_partition_list_t *parts,
                             cqrs_aggregate_store_t *store, cqrs_error_t *err) {
  rd_kafka_t *rk = cqrs_kafka_consumer_new(cfg, log, "command-svc-restore", NULL, NULL, err,
                                           "enable.partition.eof", "true", NULL);
  if (!rk) return false;
  bool ok = false;
  ctx_t c = {log, store, 0, 0};
  rd_kafka_topic_partition_list_t *from_state = rd_kafka_topic_partition_list_new(parts->cnt);
  rd_kafka_topic_partition_list_t *from_log = rd_kafka_topic_partition_list_new(parts->cnt);
  for (int i = 0; i < parts->cnt; i++) {
    int32_t p = parts->elems[i].partition;
    int64_t lo, hi;
    if (!cqrs_kafka_watermarks(rk, state_topic, p, &lo, &hi, 15000, err)) goto done;
    if (hi > lo) {
      rd_kafka_topic_partition_list_add(from_state, state_topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
      continue;
    }
    /* No state record ever (hi == 0), or none left: the events are the truth. */
    if (!cqrs_kafka_watermarks(rk, events_topic, p, &lo, &hi, 15000, err)) goto done;
    if (hi > lo) rd_kafka_topic_partition_list_add(from_log, events_topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  if (!read_to_end(rk, state_topic, from_state, &c, put_state, err)) goto done;
  if (from_log->cnt > 0) {
    char n[16];
    snprintf(n, sizeof n, "%d", from_log->cnt);
    cqrs_log_warn(log, "aggregate-state has nothing for some partitions that have events: restoring them from the "
                  "event log", "partitions", n, NULL);
    size_t before = c.records;
    if (!read_to_end(rk, events_topic, from_log, &c, put_event, err)) goto done;
    char events[24], bad[24];
    snprintf(events, sizeof events, "%zu", c.records - before);
    snprintf(bad, sizeof bad, "%zu", c.unreadable);
    cqrs_log_info(log, "restored from the event log", "events", events, "unreadableEvents", bad, NULL);
  }
  ok = true;
done:
  rd_kafka_topic_partition_list_destroy(from_state);
  rd_kafka_topic_partition_list_destroy(from_log);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return ok;
}
