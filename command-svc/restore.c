/* Restore on assignment: short-lived consumers read the assigned partitions
 * of aggregate-state to their ends, one reader per core over a share of the
 * partitions (decoding is most of the work); a partition with no state
 * record at all while its events partition has events (the state topic was
 * lost) is rebuilt from the event log instead (replay.h). Bounded by a
 * deadline and a stop flag; Kafka failures on the way are retried
 * (restore.h). */
#include "restore.h"
#include "replay.h"

#include "cqrs/alloc.h"
#include "cqrs/kafka.h"
#include "cqrs/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROGRESS_MS 5000
#define TICK_MS 100          /* the longest wait between two looks at the stop flag and the deadline */
#define STALL_WARN_MS 5000   /* no record for this long while partitions remain: say so, assign again */
#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 5000
#define MAX_READERS 8        /* readers side by side (readers_for) */
#define PUT_BATCH 256        /* decoded aggregates a reader puts into the store per lock */
#define POLL_BATCH 256       /* records taken off the consumer's queue at once */

/* One partition being read. */
typedef struct {
  int32_t partition;
  int64_t next;   /* the offset to read next: 0 before the first record (not RD_KAFKA_OFFSET_BEGINNING,
                   * which costs a ListOffsets round, ~500 ms; a partition whose first records are gone
                   * restarts at its earliest, auto.offset.reset) */
  size_t records; /* records read from it */
  bool done;      /* its end reached */
} part_t;

/* What the readers of one call share. */
typedef struct {
  const cqrs_config_t *cfg;
  const cqrs_log_t *log;
  cqrs_aggregate_store_t *store; /* under store_lock while readers run */
  pthread_mutex_t store_lock;
  bool (*stopping)(void *ctx);
  void *stop_ctx;
  int64_t deadline;
  atomic_bool given_up;            /* a reader failed: the others end too */
  atomic_size_t records;           /* read by every reader */
  _Atomic int64_t last_record;     /* when a record came last (monotonic ms) */
  size_t unreadable;               /* events that could not be replayed (one reader) */
  pthread_mutex_t failure_lock;
  char failure[200];               /* what failed last, for the deadline's error; "" while nothing did */
} ctx_t;

/* One reader: a consumer over some partitions of one topic. */
typedef struct reader reader_t;
struct reader {
  ctx_t *c;
  rd_kafka_t *rk;
  const char *topic;
  part_t *parts;
  int n;
  bool lead; /* logs the progress of all readers */
  void (*put)(reader_t *r, rd_kafka_message_t *m);
  cqrs_aggregate_t *batch[PUT_BATCH]; /* decoded, not yet in the store */
  size_t n_batch;
  bool ok;
  cqrs_error_t err;
};

static void flush(reader_t *r) {
  if (r->n_batch == 0) return;
  pthread_mutex_lock(&r->c->store_lock);
  for (size_t i = 0; i < r->n_batch; i++) cqrs_aggregate_store_put(r->c->store, r->batch[i]);
  pthread_mutex_unlock(&r->c->store_lock);
  r->n_batch = 0;
}

/* One aggregate-state record: decoded here, put into the store in batches. */
static void put_state(reader_t *r, rd_kafka_message_t *m) {
  if (!m->key || !m->payload) return;
  char small[256], *key = m->key_len < sizeof small ? small : cqrs_xmalloc(m->key_len + 1);
  memcpy(key, m->key, m->key_len);
  key[m->key_len] = '\0';
  cqrs_error_t perr = {0};
  cqrs_aggregate_t *a = cqrs_aggregate_from_json(key, m->partition, m->payload, m->len, &perr);
  if (!a)
    cqrs_log_warn(r->c->log, "skipping a malformed aggregate-state record", "key", key, "error", perr.message, NULL);
  if (key != small) free(key);
  if (!a) return;
  r->batch[r->n_batch++] = a;
  if (r->n_batch == PUT_BATCH) flush(r);
}

/* One event of the log into its aggregate. An event that cannot be read is
 * logged: its aggregate is refused from then on (replay.h), nothing crashes
 * and nothing is dropped silently. */
static void put_event(reader_t *r, rd_kafka_message_t *m) {
  cqrs_header_t hdrs[32];
  size_t nh = cqrs_kafka_headers(m, hdrs, 32);
  cqrs_event_t ev;
  cqrs_error_t err = {0};
  char part[16], off[24];
  snprintf(part, sizeof part, "%d", m->partition);
  snprintf(off, sizeof off, "%lld", (long long)m->offset);
  if (!cqrs_event_from_record(&ev, hdrs, nh, m->payload, m->len, &err)) {
    cqrs_log_error(r->c->log, "restoring from the event log: an event that cannot be decoded is skipped", "error",
                   err.message, "partition", part, "offset", off, NULL);
    return;
  }
  pthread_mutex_lock(&r->c->store_lock);
  bool ok = cqrs_replay_event(r->c->store, m->partition, &ev, &err);
  pthread_mutex_unlock(&r->c->store_lock);
  if (!ok) {
    r->c->unreadable++;
    cqrs_log_error(r->c->log, "restoring from the event log: its aggregate refuses commands until this is fixed",
                   "eventType", ev.type, "aggregateId", ev.aggregate_id, "tenant", ev.tenant, "error", err.message,
                   "partition", part, "offset", off, NULL);
  }
  cqrs_event_cleanup(&ev);
}

static void ms_str(char out[24], int64_t ms) { snprintf(out, 24, "%lld", (long long)(ms > 0 ? ms : 0)); }

static void set_failure(ctx_t *c, const char *topic, const char *why) {
  pthread_mutex_lock(&c->failure_lock);
  snprintf(c->failure, sizeof c->failure, "reading %s: %s", topic, why);
  pthread_mutex_unlock(&c->failure_lock);
}

/* False with r->err once r must end: stopped, past the deadline, or
 * another reader gave up. */
static bool go_on(reader_t *r, int remaining) {
  ctx_t *c = r->c;
  if (c->stopping && c->stopping(c->stop_ctx)) {
    cqrs_error_set(&r->err, CQRS_ERR_UNAVAILABLE, NULL, "restore stopped: the service is stopping");
    return false;
  }
  if (atomic_load(&c->given_up)) {
    cqrs_error_set(&r->err, CQRS_ERR_UNAVAILABLE, NULL, "restore given up by another reader");
    return false;
  }
  int64_t now = cqrs_time_monotonic_ms();
  if (now < c->deadline) return true;
  pthread_mutex_lock(&c->failure_lock);
  cqrs_error_set(&r->err, CQRS_ERR_UNAVAILABLE, NULL,
                 "not restored within RESTORE_TIMEOUT_MS (%d ms): %d partitions of %s unfinished, no record for "
                 "the last %lld ms (Kafka unreachable or too slow)%s%s",
                 c->cfg->restore_timeout_ms, remaining, r->topic, (long long)(now - atomic_load(&c->last_record)),
                 c->failure[0] ? "; last failure: " : "", c->failure);
  pthread_mutex_unlock(&c->failure_lock);
  return false;
}

/* Waits ms, looking at the stop flag and the deadline every TICK_MS. */
static bool pause_for(reader_t *r, int ms, int remaining) {
  for (int64_t end = cqrs_time_monotonic_ms() + ms;;) {
    if (!go_on(r, remaining)) return false;
    int64_t left = end - cqrs_time_monotonic_ms();
    if (left <= 0) return true;
    if (left > TICK_MS) left = TICK_MS;
    struct timespec ts = {0, (long)left * 1000000L};
    nanosleep(&ts, NULL);
  }
}

/* Assigns the unfinished partitions of r, each at its next record. */
static void assign(reader_t *r) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(r->n);
  for (int i = 0; i < r->n; i++)
    if (!r->parts[i].done) rd_kafka_topic_partition_list_add(l, r->topic, r->parts[i].partition)->offset = r->parts[i].next;
  rd_kafka_assign(r->rk, l);
  rd_kafka_topic_partition_list_destroy(l);
}

static part_t *find(reader_t *r, const rd_kafka_message_t *m) {
  if (!m->rkt || strcmp(rd_kafka_topic_name(m->rkt), r->topic) != 0) return NULL;
  for (int i = 0; i < r->n; i++)
    if (r->parts[i].partition == m->partition) return &r->parts[i];
  return NULL;
}

/* Reads r's partitions to their ends, each record into r->put. A Kafka
 * error, or no record for STALL_WARN_MS, is logged and retried (after a
 * backoff) with every unfinished partition assigned again at its next
 * record: records apply in offset order and a later one replaces an
 * earlier one of its key, so a resumed read ends where an uninterrupted one
 * would. Sets r->ok, or r->err when stopped or past the deadline. */
static void read_to_end(reader_t *r) {
  ctx_t *c = r->c;
  int remaining = 0;
  for (int i = 0; i < r->n; i++) remaining += !r->parts[i].done;
  r->ok = true;
  if (remaining == 0) return;
  char count[24], left[24];
  assign(r);
  int64_t t0 = cqrs_time_monotonic_ms(), next_progress = t0 + PROGRESS_MS, last_record = t0, now = t0;
  int64_t next_stall_warn = t0 + STALL_WARN_MS;
  size_t at_start = atomic_load(&c->records);
  int backoff = BACKOFF_MIN_MS;
  /* Records are taken POLL_BATCH at a time: one queue operation, not one a
   * record. */
  rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(r->rk);
  rd_kafka_message_t *got[POLL_BATCH];
  ssize_t have = 0, at = 0;
  for (unsigned turn = 0; remaining > 0; turn++) {
    /* The clock, the stop flag and the deadline every 64 records (well
     * under a millisecond) or every empty poll (TICK_MS), not at each. */
    if (turn % 64 == 0 && !(r->ok = go_on(r, remaining))) break;
    if (at == have) {
      have = rd_kafka_consume_batch_queue(q, TICK_MS, got, POLL_BATCH);
      at = 0;
      if (have < 0) have = 0;
    }
    rd_kafka_message_t *m = at < have ? got[at++] : NULL;
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
                      "librdkafka lines); retrying from where each partition got until the deadline", "from", r->topic,
                      "stalledMs", count, "timeLeftMs", left, NULL);
        next_stall_warn = now + STALL_WARN_MS;
        assign(r);
      }
      continue;
    }
    part_t *p = find(r, m);
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (p && !p->done) p->done = true, remaining--;
    } else if (m->err) {
      /* A fetch that failed: back off, then resume every unfinished
       * partition where it got. */
      set_failure(c, r->topic, rd_kafka_message_errstr(m));
      char retry[24];
      ms_str(retry, backoff);
      ms_str(left, c->deadline - now);
      cqrs_log_warn(c->log, "restoring: Kafka failed; retrying from where each partition got until the deadline",
                    "from", r->topic, "error", rd_kafka_message_errstr(m), "retryInMs", retry, "timeLeftMs", left,
                    NULL);
      rd_kafka_message_destroy(m);
      while (at < have) rd_kafka_message_destroy(got[at++]); /* of the assignment given up */
      if (!(r->ok = pause_for(r, backoff, remaining))) break;
      backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
      assign(r);
      turn = 63;
      continue;
    } else if (p && !p->done && m->offset >= p->next) {
      r->put(r, m);
      p->records++;
      p->next = m->offset + 1;
      atomic_fetch_add_explicit(&c->records, 1, memory_order_relaxed);
      last_record = now;
      next_stall_warn = now + STALL_WARN_MS;
      backoff = BACKOFF_MIN_MS;
    }
    rd_kafka_message_destroy(m);
    if (turn % 64 == 0) atomic_store_explicit(&c->last_record, last_record, memory_order_relaxed);
    if (r->lead && now >= next_progress) {
      char rate[24];
      size_t total = atomic_load(&c->records);
      snprintf(count, sizeof count, "%zu", total);
      snprintf(rate, sizeof rate, "%.0f", (double)(total - at_start) * 1000.0 / (double)(now - t0));
      ms_str(left, c->deadline - now);
      cqrs_log_info(c->log, "restoring", "from", r->topic, "records", count, "recordsPerSecond", rate, "timeLeftMs",
                    left, NULL);
      next_progress = now + PROGRESS_MS;
    }
  }
  while (at < have) rd_kafka_message_destroy(got[at++]);
  rd_kafka_queue_destroy(q);
  flush(r);
  atomic_store(&c->last_record, last_record);
  if (!r->ok) atomic_store(&c->given_up, true);
}

/* A reader's consumer. auto.offset.reset=earliest: a partition whose next
 * record is gone (retention) restarts at its first, never skips to the end.
 * A short fetch.wait.max.ms: the broker answers the fetch of an empty
 * partition (its end, the usual case at a fresh start) at once, not after
 * 500 ms; a short fetch.error.backoff.ms: a topic just created (its leaders
 * not known yet) is fetched again after 50 ms, not 500 (a fresh start took
 * 0.7 s, now 0.2-0.3 s). */
static rd_kafka_t *consumer_new(ctx_t *c, cqrs_error_t *err) {
  rd_kafka_t *rk = cqrs_kafka_consumer_new(c->cfg, c->log, "command-svc-restore", NULL, NULL, err,
                                           "enable.partition.eof", "true", "auto.offset.reset", "earliest",
                                           "fetch.wait.max.ms", "10", "fetch.error.backoff.ms", "50", NULL);
  /* Client errors come out of the consumer's queue, which read_to_end
   * serves, instead of piling up on a queue no one serves. */
  if (rk) rd_kafka_poll_set_consumer(rk);
  return rk;
}

static void consumer_destroy(rd_kafka_t *rk) {
  if (!rk) return;
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
}

/* A reader with a consumer of its own over its share of the partitions. */
static void *reader_main(void *arg) {
  reader_t *r = arg;
  if (!(r->rk = consumer_new(r->c, &r->err))) {
    r->ok = false;
    atomic_store(&r->c->given_up, true);
    return NULL;
  }
  read_to_end(r);
  consumer_destroy(r->rk);
  r->rk = NULL;
  return NULL;
}

static void *reader_thread(void *arg) {
  pthread_setname_np(pthread_self(), "restore"); /* as top and gdb show it */
  return reader_main(arg);
}

/* Readers for the state topic: one per partition, at most MAX_READERS;
 * partition i goes to reader i % n. Not one per core: a reader waits for its
 * fetches about as long as it decodes. One lane restoring 1,000,000
 * aggregates from 6 partitions on 2 cores took 4.98 s with 2 readers, 3.7 s
 * with 3, 3.4 s with 6 (BENCHMARKS.md, "Restore"). */
static int readers_for(int partitions) { return partitions < MAX_READERS ? partitions : MAX_READERS; }

/* Reads parts (state) with n readers: readers[0] on this thread (its
 * consumer made by the caller), the others on threads of their own. False
 * with err from the reader that failed first. */
static bool read_state(reader_t *readers, int n, cqrs_error_t *err) {
  pthread_t threads[MAX_READERS];
  bool started[MAX_READERS] = {false};
  for (int i = 1; i < n; i++) {
    started[i] = pthread_create(&threads[i], NULL, reader_thread, &readers[i]) == 0;
    if (!started[i]) readers[i].lead = false, reader_main(&readers[i]); /* no thread: on this one, first */
  }
  read_to_end(&readers[0]);
  for (int i = 1; i < n; i++)
    if (started[i]) pthread_join(threads[i], NULL);
  /* the reason, not the echo of another reader's giving up */
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < n; i++)
      if (!readers[i].ok && (pass == 1 || !strstr(readers[i].err.message, "another reader"))) {
        if (err) *err = readers[i].err;
        return false;
      }
  return true;
}

bool cqrs_restore_partitions(const cqrs_config_t *cfg, const cqrs_log_t *log, const char *state_topic,
                             const char *events_topic, const rd_kafka_topic_partition_list_t *parts,
                             cqrs_aggregate_store_t *store, bool (*stopping)(void *ctx), void *stop_ctx,
                             cqrs_error_t *err) {
  if (parts->cnt == 0) return true;
  int64_t t0 = cqrs_time_monotonic_ms();
  ctx_t c = {.cfg = cfg, .log = log, .store = store, .stopping = stopping, .stop_ctx = stop_ctx,
             .deadline = t0 + cfg->restore_timeout_ms};
  atomic_init(&c.given_up, false);
  atomic_init(&c.records, 0);
  atomic_init(&c.last_record, t0);
  pthread_mutex_init(&c.store_lock, NULL);
  pthread_mutex_init(&c.failure_lock, NULL);
  bool ok = false;
  int n_readers = readers_for(parts->cnt);
  part_t *events = cqrs_xcalloc((size_t)parts->cnt, sizeof *events);
  part_t *shares = cqrs_xcalloc((size_t)parts->cnt, sizeof *shares); /* state, grouped by reader */
  reader_t *readers = cqrs_xcalloc((size_t)n_readers, sizeof *readers);
  rd_kafka_topic_t *warm = NULL;
  rd_kafka_t *rk = consumer_new(&c, err);
  if (!rk) goto done;
  if (!events || !shares || !readers) {
    cqrs_error_set(err, CQRS_ERR_INTERNAL, NULL, "restore: out of memory");
    goto done;
  }
  /* Asks for the events topic's metadata now: assigning a topic the client
   * does not know yet waits a second for it. */
  warm = rd_kafka_topic_new(rk, events_topic, NULL);
  for (int i = 0, k = 0; i < n_readers; i++) {
    readers[i] = (reader_t){.c = &c, .topic = state_topic, .parts = &shares[k], .lead = i == 0, .put = put_state};
    for (int j = i; j < parts->cnt; j += n_readers) shares[k++] = (part_t){parts->elems[j].partition, 0, 0, false};
    readers[i].n = (int)(&shares[k] - readers[i].parts);
  }
  readers[0].rk = rk;
  char n_parts[16], n_read[16], timeout[24];
  snprintf(n_parts, sizeof n_parts, "%d", parts->cnt);
  snprintf(n_read, sizeof n_read, "%d", n_readers);
  ms_str(timeout, cfg->restore_timeout_ms);
  cqrs_log_info(log, "restoring", "from", state_topic, "partitions", n_parts, "readers", n_read, "records", "0",
                "timeLeftMs", timeout, NULL);
  if (!read_state(readers, n_readers, err)) goto done;
  /* A partition without a single state record (never written, or the topic
   * was lost): its events are the truth. One with no events either is done
   * at once. */
  int n_log = 0;
  for (int i = 0; i < parts->cnt; i++)
    if (shares[i].records == 0) events[n_log++] = (part_t){shares[i].partition, 0, 0, false};
  if (n_log > 0) {
    size_t before = atomic_load(&c.records);
    reader_t ev = {.c = &c, .rk = rk, .topic = events_topic, .parts = events, .n = n_log, .lead = true,
                   .put = put_event};
    read_to_end(&ev);
    if (!ev.ok) {
      if (err) *err = ev.err;
      goto done;
    }
    size_t from_log = 0;
    for (int i = 0; i < n_log; i++) from_log += events[i].records > 0;
    if (from_log > 0) {
      char n[24], count[24], bad[24];
      snprintf(n, sizeof n, "%zu", from_log);
      snprintf(count, sizeof count, "%zu", atomic_load(&c.records) - before);
      snprintf(bad, sizeof bad, "%zu", c.unreadable);
      cqrs_log_warn(log, "aggregate-state had nothing for some partitions that have events: restored them from the "
                    "event log", "partitions", n, "events", count, "unreadableEvents", bad, NULL);
    }
  }
  ok = true;
done:
  if (warm) rd_kafka_topic_destroy(warm);
  consumer_destroy(rk);
  free(events);
  free(shares);
  free(readers);
  pthread_mutex_destroy(&c.store_lock);
  pthread_mutex_destroy(&c.failure_lock);
  return ok;
}
