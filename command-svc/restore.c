/* Restore from aggregate-state: a short-lived consumer reads each assigned
 * partition to its end. */
#include "restore.h"

#include "cqrs/kafka.h"
#include "cqrs/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROGRESS_MS 5000

bool cqrs_restore_partitions(const cqrs_config_t *cfg, const cqrs_log_t *log, const char *state_topic,
                             const rd_kafka_topic_partition_list_t *parts, cqrs_aggregate_store_t *store,
                             cqrs_error_t *err) {
  rd_kafka_t *rk = cqrs_kafka_consumer_new(cfg, log, "command-svc-restore", NULL, NULL, err,
                                           "enable.partition.eof", "true", NULL);
  if (!rk) return false;
  bool ok = false;
  rd_kafka_topic_partition_list_t *todo = rd_kafka_topic_partition_list_new(parts->cnt);
  for (int i = 0; i < parts->cnt; i++) {
    int64_t lo, hi;
    if (!cqrs_kafka_watermarks(rk, state_topic, parts->elems[i].partition, &lo, &hi, 15000, err)) goto done;
    if (hi > lo) rd_kafka_topic_partition_list_add(todo, state_topic, parts->elems[i].partition)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  if (todo->cnt == 0) {
    ok = true;
    goto done;
  }
  rd_kafka_assign(rk, todo);
  int remaining = todo->cnt;
  size_t records = 0;
  int64_t t0 = cqrs_time_monotonic_ms(), next_progress = t0 + PROGRESS_MS;
  while (remaining > 0) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      remaining--;
    } else if (m->err) {
      cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "reading %s: %s", state_topic, rd_kafka_message_errstr(m));
      rd_kafka_message_destroy(m);
      goto done;
    } else if (m->key && m->payload) {
      char *key = strndup(m->key, m->key_len);
      cqrs_error_t perr = {0};
      cqrs_aggregate_t *a = cqrs_aggregate_from_json(key, m->partition, m->payload, m->len, &perr);
      if (a) {
        cqrs_aggregate_store_put(store, a);
      } else {
        cqrs_log_warn(log, "skipping a malformed aggregate-state record", "key", key, "error", perr.message,
                      NULL);
      }
      free(key);
      records++;
    }
    rd_kafka_message_destroy(m);
    if (cqrs_time_monotonic_ms() >= next_progress) {
      char n[24], rate[24];
      int64_t ms = cqrs_time_monotonic_ms() - t0;
      snprintf(n, sizeof n, "%zu", records);
      snprintf(rate, sizeof rate, "%.0f", records * 1000.0 / (double)(ms ? ms : 1));
      cqrs_log_info(log, "restoring aggregate-state", "records", n, "recordsPerSecond", rate, NULL);
      next_progress += PROGRESS_MS;
    }
  }
  ok = true;
done:
  rd_kafka_topic_partition_list_destroy(todo);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return ok;
}
