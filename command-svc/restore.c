/* Restore on assignment: a short-lived consumer reads each assigned partition
 * of aggregate-state to its end; a partition with no state record at all
 * while its events partition has events (the state topic was lost) is
 * rebuilt from the event log instead (replay.h). Bounded by a deadline and a
 * stop flag; Kafka failures on the way are retried (restore.h). */
#include "restore.h"
#include "replay.h"

#include "cqrs/kafka.h"
#include "cqrs/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROGRESS_MS 5000
#define TICK_MS 100          /* the longest wait between two looks at the stop flag and the deadline */
#define STALL_WARN_MS 5000   /* no record for this long while partitions remain: say so */
#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 5000

/* One partition being read. */
typedef struct {
  int32_t partition;
  int64_t next;   /* the offset to read next: 0 before the first record (not RD_KAFKA_OFFSET_BEGINNING,
                   * which costs a ListOffsets round, ~500 ms; a partition whose first records are gone
                   * restarts at its earliest, auto.offset.reset) */
  size_t records; /* records read from it */
  bool done;      /* its end reached */
} part_t;

typedef struct {
  const cqrs_config_t *cfg;
  const cqrs_log_t *log;
  cqrs_aggregate_store_t *store;
  bool (*stopping)(void *ctx);
  void *stop_ctx;
  int64_t deadline;
  int64_t last_record; /* when a record came last (monotonic ms) */
  size_t records, unreadable;
  char failure[200]; /* what failed last, for the deadline's error; "" while nothing did */
} ctx_t;

/* One aggregate-state record into the store. */
static void put_state(ctx_t *c, rd_kafka_message_t *m) {
  if (!m->key || !m->payload) return;
  char small[256], *key = m->key_len < sizeof small ? small : malloc(m->key_len + 1);
  memcpy(key, m->key, m->key_len);
  key[m->key_len] = '\0';
  cqrs_error_t perr = {0};
  cqrs_aggregate_t *a = cqrs_aggregate_from_json(key, m->partition, m->payload, m->len, &perr);
  if (a)
    cqrs_aggregate_store_put(c->store, a);
  else
    cqrs_log_warn(c->log, "skipping a malformed aggregate-state record", "key", key, "error", perr.message, NULL);
  if (key != small) free(key);
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

static void ms_str(char out[24], int64_t ms) { snprintf(out, 24, "%lld", (long long)(ms > 0 ? ms : 0)); }

/* False with err once the restore must end: stopped, or past its deadline
 * (what: the topic being read, for the message). */
static bool go_on(ctx_t *c, const char *what, int remaining, cqrs_error_t *err) {
  if (c->stopping && c->stopping(c->stop_ctx)) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "restore stopped: the service is stopping");
    return false;
  }
  int64_t now = cqrs_time_monotonic_ms();
  if (now < c->deadline) return true;
  cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL,
                 "not restored within RESTORE_TIMEOUT_MS (%d ms): %d partitions of %s unfinished, no record for "
                 "the last %lld ms (Kafka unreachable or too slow)%s%s",
                 c->cfg->restore_timeout_ms, remaining, what, (long long)(now - c->last_record),
                 c->failure[0] ? "; last failure: " : "", c->failure);
  return false;
}

/* Waits ms, looking at the stop flag and the deadline every TICK_MS. */
static bool pause_for(ctx_t *c, int ms, const char *what, int remaining, cqrs_error_t *err) {
  for (int64_t end = cqrs_time_monotonic_ms() + ms;;) {
    if (!go_on(c, what, remaining, err)) return false;
    int64_t left = end - cqrs_time_monotonic_ms();
    if (left <= 0) return true;
    if (left > TICK_MS) left = TICK_MS;
    struct timespec ts = {0, (long)left * 1000000L};
    nanosleep(&ts, NULL);
  }
}

/* Assigns the unfinished partitions of parts, each at its next record. */
static void assign(rd_kafka_t *rk, const char *topic, const part_t *parts, int n) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
  for (int i = 0; i < n; i++)
    if (!parts[i].done) rd_kafka_topic_partition_list_add(l, topic, parts[i].partition)->offset = parts[i].next;
  rd_kafka_assign(rk, l);
  rd_kafka_topic_partition_list_destroy(l);
}

static part_t *find(part_t *parts, int n, int32_t partition) {
  for (int i = 0; i < n; i++)
    if (parts[i].partition == partition) return &parts[i];
  return NULL;
}

/* Reads parts of topic to their ends, each record into put. A Kafka error
 * is logged and retried after a backoff, every unfinished partition resuming
 * at its next record: records apply in offset order and a later one replaces
 * an earlier one of its key, so a resumed read ends where an uninterrupted
 * one would. False with err when stopped or past the deadline. */
static bool read_to_end(rd_kafka_t *rk, const char *topic, part_t *parts, int n, ctx_t *c,
                        void (*put)(ctx_t *, rd_kafka_message_t *), cqrs_error_t *err) {
  int remaining = 0;
  for (int i = 0; i < n; i++) remaining += !parts[i].done;
  if (remaining == 0) return true;
  char count[24], left[24];
  assign(rk, topic, parts, n);
  int64_t t0 = cqrs_time_monotonic_ms(), next_progress = t0 + PROGRESS_MS, last_record = t0;
  int64_t next_stall_warn = t0 + STALL_WARN_MS;
  size_t at_start = c->records;
  int backoff = BACKOFF_MIN_MS;
  bool ok = true;
  int64_t now = t0;
  for (unsigned turn = 0; remaining > 0; turn++) {
    /* The clock, the stop flag and the deadline every 64 records (a few
     * hundred µs) or every empty poll (TICK_MS), not at each record. */
    if (turn % 64 == 0 && !(ok = go_on(c, topic, remaining, err))) break;
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, TICK_MS);
    if (!m || turn % 64 == 0) now = cqrs_time_monotonic_ms();
    if (!m) {
      turn = 63; /* look at the flag before the next poll */
      if (now >= next_stall_warn) {
        /* The broker lost or too slow: librdkafka reconnects with backoff
         * and logs why (its own lines); the partitions are assigned again
         * where they got, in case a fetch state is stuck. */
        ms_str(count, now - last_record);
        ms_str(left, c->deadline - now);
        cqrs_log_warn(c->log, "restoring: no record from Kafka for a while (unreachable or too slow, see the "
                      "librdkafka lines); retrying from where each partition got until the deadline", "from", topic,
                      "stalledMs", count, "timeLeftMs", left, "lastFailure", c->failure[0] ? c->failure : NULL, NULL);
        next_stall_warn = now + STALL_WARN_MS;
        assign(rk, topic, parts, n);
      }
      continue;
    }
    part_t *p = m->rkt && strcmp(rd_kafka_topic_name(m->rkt), topic) == 0 ? find(parts, n, m->partition) : NULL;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (p && !p->done) p->done = true, remaining--;
    } else if (m->err) {
      /* The broker lost, a fetch that failed: back off, then resume every
       * unfinished partition where it got. */
      snprintf(c->failure, sizeof c->failure, "reading %s: %s", topic, rd_kafka_message_errstr(m));
      char retry[24];
      ms_str(retry, backoff);
      ms_str(left, c->deadline - now);
      cqrs_log_warn(c->log, "restoring: Kafka failed; retrying from where each partition got until the deadline",
                    "error", c->failure, "retryInMs", retry, "timeLeftMs", left, NULL);
      rd_kafka_message_destroy(m);
      if (!(ok = pause_for(c, backoff, topic, remaining, err))) break;
      backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
      assign(rk, topic, parts, n);
      turn = 63;
      continue;
    } else if (p && !p->done && m->offset >= p->next) {
      put(c, m);
      p->records++;
      p->next = m->offset + 1;
      c->records++;
      c->last_record = last_record = now;
      next_stall_warn = now + STALL_WARN_MS;
      backoff = BACKOFF_MIN_MS;
    }
    rd_kafka_message_destroy(m);
    if (now >= next_progress) {
      char rate[24];
      snprintf(count, sizeof count, "%zu", c->records - at_start);
      snprintf(rate, sizeof rate, "%.0f", (double)(c->records - at_start) * 1000.0 / (double)(now - t0));
      ms_str(left, c->deadline - now);
      cqrs_log_info(c->log, "restoring", "from", topic, "records", count, "recordsPerSecond", rate, "timeLeftMs",
                    left, NULL);
      next_progress = now + PROGRESS_MS;
    }
  }
  return ok;
}

bool cqrs_restore_partitions(const cqrs_config_t *cfg, const cqrs_log_t *log, const char *state_topic,
                             const char *events_topic, const rd_kafka_topic_partition_list_t *parts,
                             cqrs_aggregate_store_t *store, bool (*stopping)(void *ctx), void *stop_ctx,
                             cqrs_error_t *err) {
  if (parts->cnt == 0) return true;
  ctx_t c = {.cfg = cfg, .log = log, .store = store, .stopping = stopping, .stop_ctx = stop_ctx,
             .deadline = cqrs_time_monotonic_ms() + cfg->restore_timeout_ms,
             .last_record = cqrs_time_monotonic_ms()};
  /* auto.offset.reset=earliest: a partition whose next record is gone
   * (retention) restarts at its first, never skips to the end. A short
   * fetch.wait.max.ms: the broker answers the fetch of an empty partition
   * (its end, the usual case at a fresh start) at once, not after 500 ms. */
  rd_kafka_t *rk = cqrs_kafka_consumer_new(cfg, log, "command-svc-restore", NULL, NULL, err,
                                           "enable.partition.eof", "true", "auto.offset.reset", "earliest",
                                           "fetch.wait.max.ms", "10", NULL);
  if (!rk) return false;
  /* Client errors (the broker lost) come out of rd_kafka_consumer_poll, as
   * records with err set, where read_to_end sees them. */
  rd_kafka_poll_set_consumer(rk);
  /* Asks for the events topic's metadata now: assigning a topic the client
   * does not know yet waits a second for it. */
  rd_kafka_topic_t *warm = rd_kafka_topic_new(rk, events_topic, NULL);
  bool ok = false;
  part_t *state = calloc((size_t)parts->cnt, sizeof *state), *events = calloc((size_t)parts->cnt, sizeof *events);
  for (int i = 0; i < parts->cnt; i++)
    state[i] = (part_t){parts->elems[i].partition, 0, 0, false};
  char n_parts[16], timeout[24];
  snprintf(n_parts, sizeof n_parts, "%d", parts->cnt);
  ms_str(timeout, cfg->restore_timeout_ms);
  cqrs_log_info(log, "restoring", "from", state_topic, "partitions", n_parts, "records", "0", "timeLeftMs", timeout,
                NULL);
  if (!read_to_end(rk, state_topic, state, parts->cnt, &c, put_state, err)) goto done;
  /* A partition without a single state record (never written, or the topic
   * was lost): its events are the truth. One with no events either is done
   * at once. */
  int n_log = 0;
  for (int i = 0; i < parts->cnt; i++)
    if (state[i].records == 0) events[n_log++] = (part_t){state[i].partition, 0, 0, false};
  if (n_log > 0) {
    size_t before = c.records;
    if (!read_to_end(rk, events_topic, events, n_log, &c, put_event, err)) goto done;
    size_t from_log = 0;
    for (int i = 0; i < n_log; i++) from_log += events[i].records > 0;
    if (from_log > 0) {
      char n[24], count[24], bad[24];
      snprintf(n, sizeof n, "%zu", from_log);
      snprintf(count, sizeof count, "%zu", c.records - before);
      snprintf(bad, sizeof bad, "%zu", c.unreadable);
      cqrs_log_warn(log, "aggregate-state had nothing for some partitions that have events: restored them from the "
                    "event log", "partitions", n, "events", count, "unreadableEvents", bad, NULL);
    }
  }
  ok = true;
done:
  if (warm) rd_kafka_topic_destroy(warm);
  free(state);
  free(events);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return ok;
}
