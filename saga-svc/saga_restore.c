/* Restore from saga-state (saga_restore.h). */
#include "saga_restore.h"

#include "cqrs/json.h"
#include "cqrs/kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool cqrs_saga_restore(const cqrs_config_t *cfg, const cqrs_log_t *log, const char *state_topic,
                       const rd_kafka_topic_partition_list_t *parts, cqrs_saga_store_t *store, cqrs_error_t *err) {
  rd_kafka_t *rk = cqrs_kafka_consumer_new(cfg, log, "saga-svc-restore", NULL, NULL, err, "enable.partition.eof",
                                           "true", NULL);
  if (!rk) return false;
  bool ok = false;
  rd_kafka_topic_partition_list_t *todo = rd_kafka_topic_partition_list_new(parts->cnt);
  for (int i = 0; i < parts->cnt; i++) {
    int64_t lo, hi;
    int32_t p = parts->elems[i].partition;
    if (rd_kafka_topic_partition_list_find(todo, state_topic, p)) continue; /* events and results share numbers */
    if (!cqrs_kafka_watermarks(rk, state_topic, p, &lo, &hi, 15000, err)) goto done;
    if (hi > lo) rd_kafka_topic_partition_list_add(todo, state_topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  if (todo->cnt == 0) {
    ok = true;
    goto done;
  }
  rd_kafka_assign(rk, todo);
  int remaining = todo->cnt;
  while (remaining > 0) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      remaining--;
    } else if (m->err) {
      cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "reading %s: %s", state_topic, rd_kafka_message_errstr(m));
      rd_kafka_message_destroy(m);
      goto done;
    } else if (m->payload) {
      cqrs_error_t perr = {0};
      bson_t *doc = cqrs_json_parse(m->payload, m->len, &perr);
      bson_iter_t it;
      if (doc && bson_iter_init_find(&it, doc, "sagaId") && BSON_ITER_HOLDS_UTF8(&it)) {
        cqrs_saga_store_put(store, doc);
      } else {
        cqrs_log_warn(log, "skipping a malformed saga-state record", "error", perr.message, NULL);
        if (doc) bson_destroy(doc);
      }
    }
    rd_kafka_message_destroy(m);
  }
  ok = true;
done:
  rd_kafka_topic_partition_list_destroy(todo);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return ok;
}
