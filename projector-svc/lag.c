/* Consumer lag (see lag.h). */
#include "lag.h"

#include <stdio.h>

bool cqrs_consumer_lag(rd_kafka_t *consumer, const int64_t *written, int n_written, cqrs_metrics_t *metrics,
                       const char *labels, int64_t *total) {
  rd_kafka_topic_partition_list_t *a = NULL;
  *total = 0;
  if (rd_kafka_assignment(consumer, &a) || !a) return false;
  rd_kafka_position(consumer, a);
  bool known = a->cnt > 0;
  for (int i = 0; i < a->cnt; i++) {
    int64_t lo, hi;
    if (rd_kafka_get_watermark_offsets(consumer, a->elems[i].topic, a->elems[i].partition, &lo, &hi) || hi < 0) {
      known = false;
      continue;
    }
    int32_t p = a->elems[i].partition;
    int64_t pos = a->elems[i].offset >= 0                            ? a->elems[i].offset
                  : written && p < n_written && written[p] >= 0 ? written[p]
                                                                    : lo;
    int64_t lag = hi > pos ? hi - pos : 0;
    *total += lag;
    if (metrics) {
      char l[160];
      snprintf(l, sizeof l, "%s,partition=\"%d\"", labels, a->elems[i].partition);
      cqrs_metrics_set(metrics, "projection_lag_events", l, (double)lag);
    }
  }
  rd_kafka_topic_partition_list_destroy(a);
  return known;
}
