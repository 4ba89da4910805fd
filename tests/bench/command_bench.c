/* Command benchmark driver (not a test): Kafka-ingress throughput and latency
 * of the command pipeline, and seeding aggregate-state for the restore
 * benchmark. Run through tests/bench/run.sh, which prints the comparison.
 *
 *   command_bench kafka <brokers> <prefix> <count>    commands in, results out
 *   command_bench seed <brokers> <prefix> <count> [plain]
 *                                                     <count> aggregates into aggregate-state; ids
 *                                                     seed-<i> with plain, else their UUIDv5s */
#include "bench_kafka.h"
#include "cqrs/config.h"
#include "cqrs/kafka.h"
#include "cqrs/map.h"
#include "cqrs/result.h"
#include "cqrs/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* command-svc runs with AUTH=off here: every command is tenant "default"'s. */
#define TENANT "default"

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static int bench_kafka(const cqrs_config_t *cfg, long count) {
  rd_kafka_t *prod = bench_client(cfg, RD_KAFKA_PRODUCER, "command-bench");
  rd_kafka_t *cons = bench_client(cfg, RD_KAFKA_CONSUMER, "command-bench");
  cqrs_error_t err;
  char *t_cmd = cqrs_config_topic(cfg, CQRS_TOPIC_COMMANDS), *t_res = cqrs_config_topic(cfg, CQRS_TOPIC_RESULTS);
  int n = cqrs_kafka_partition_count(cons, t_res, 10000, &err);
  if (n <= 0) {
    fprintf(stderr, "%s\n", err.message);
    return 2;
  }
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
  for (int p = 0; p < n; p++) {
    int64_t lo, hi;
    if (!cqrs_kafka_watermarks(cons, t_res, p, &lo, &hi, 10000, &err)) return 2;
    rd_kafka_topic_partition_list_add(l, t_res, p)->offset = hi;
  }
  rd_kafka_assign(cons, l);
  rd_kafka_topic_partition_list_destroy(l);

  cqrs_map_t *sent = cqrs_map_new(free);
  int64_t *lat = calloc((size_t)count, sizeof *lat);
  int64_t t0 = cqrs_time_monotonic_ms();
  long received = 0, ok = 0;
  char run[CQRS_UUID_LEN];
  cqrs_uuid_random(run);
  for (long i = 0; i < count; i++) {
    char cid[96], agg[CQRS_UUID_LEN], key[128], result_key[128], json[512];
    snprintf(cid, sizeof cid, "bench-%.8s-%ld", run, i);
    cqrs_uuid_from_name(cid, agg);
    snprintf(key, sizeof key, TENANT "/%s", agg);
    snprintf(result_key, sizeof result_key, TENANT "/%s", cid);
    int len = snprintf(json, sizeof json,
                       "{\"commandType\":\"CreateUser\",\"commandId\":\"%s\",\"aggregateId\":\"%s\","
                       "\"email\":\"user%ld@example.com\",\"name\":\"Bench User %ld\"}",
                       cid, agg, i, i);
    int64_t *at = malloc(sizeof *at);
    *at = cqrs_time_monotonic_ms();
    cqrs_map_put(sent, result_key, at);
    while (rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(t_cmd), RD_KAFKA_V_KEY(key, strlen(key)),
                             RD_KAFKA_V_VALUE(json, (size_t)len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
      rd_kafka_poll(prod, 10);
    rd_kafka_poll(prod, 0);
  }
  rd_kafka_flush(prod, 30000);
  int64_t t_sent = cqrs_time_monotonic_ms(), t_last = t_sent;
  while (received < count && cqrs_time_monotonic_ms() - t_last < 30000) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, 200);
    if (!m) continue;
    if (!m->err && m->key) {
      char key[128];
      snprintf(key, sizeof key, "%.*s", (int)m->key_len, (const char *)m->key);
      int64_t *at = cqrs_map_get(sent, key);
      if (at) {
        t_last = cqrs_time_monotonic_ms();
        lat[received++] = t_last - *at;
        int status = 0;
        ok += m->payload && cqrs_result_status(m->payload, m->len, &status) && status == 201;
        cqrs_map_delete(sent, key);
      }
    }
    rd_kafka_message_destroy(m);
  }
  qsort(lat, (size_t)received, sizeof *lat, cmp_i64);
  double secs = (double)(t_last - t0) / 1000.0;
  printf("kafka-ingress commands=%ld results=%ld accepted=%ld seconds=%.2f commands_per_s=%.0f p50_ms=%lld "
         "p99_ms=%lld produce_seconds=%.2f\n",
         count, received, ok, secs, received / secs, (long long)(received ? lat[received / 2] : -1),
         (long long)(received ? lat[(size_t)(received * 99 / 100)] : -1), (double)(t_sent - t0) / 1000.0);
  free(lat);
  cqrs_map_destroy(sent);
  rd_kafka_consumer_close(cons);
  rd_kafka_destroy(cons);
  rd_kafka_destroy(prod);
  free(t_cmd), free(t_res);
  return received == count ? 0 : 1;
}

/* Writes count small user aggregates, as command-svc would, to the partitions
 * command-svc would use. */
/* plain: the aggregate ids are seed-<i> themselves (the mixed-load script
 * addresses them so); else UUIDv5s of those names, as clients make them. */
static int seed(const cqrs_config_t *cfg, long count, bool plain) {
  rd_kafka_t *prod = bench_client(cfg, RD_KAFKA_PRODUCER, "command-bench");
  cqrs_error_t err;
  int parts;
  if (!cqrs_kafka_topics_ensure(prod, cfg, 15000, &parts, &err)) {
    fprintf(stderr, "%s\n", err.message);
    return 2;
  }
  char *t_state = cqrs_config_topic(cfg, CQRS_TOPIC_STATE);
  int64_t t0 = cqrs_time_monotonic_ms();
  for (long i = 0; i < count; i++) {
    char id[CQRS_UUID_LEN], key[128], name[32], json[768];
    snprintf(name, sizeof name, "seed-%ld", i);
    if (plain) snprintf(id, sizeof id, "%s", name);
    else cqrs_uuid_from_name(name, id);
    snprintf(key, sizeof key, TENANT "/%s", id);
    int len = snprintf(json, sizeof json,
                       "{\"tenant\":\"" TENANT "\",\"aggregateId\":\"%s\",\"aggregateType\":\"user\",\"version\":1,\"state\":{\"userId\":\"%s\",\"email\":"
                       "\"user%ld@example.com\",\"name\":\"Seed User %ld\",\"createdAt\":\"2026-11-22T00:00:00.000Z\","
                       "\"updatedAt\":\"2026-11-22T00:00:00.000Z\"},\"recent\":[{\"commandId\":\"%s\",\"result\":"
                       "\"{}\"}]}",
                       id, id, i, i, name);
    while (rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(t_state), RD_KAFKA_V_KEY(key, strlen(key)),
                             RD_KAFKA_V_VALUE(json, (size_t)len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
      rd_kafka_poll(prod, 10);
    if (i % 100000 == 0) fprintf(stderr, "seeded %ld\n", i);
  }
  rd_kafka_flush(prod, 120000);
  printf("seeded aggregates=%ld seconds=%.1f\n", count, (double)(cqrs_time_monotonic_ms() - t0) / 1000.0);
  rd_kafka_destroy(prod);
  free(t_state);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 5 && !(argc == 6 && strcmp(argv[1], "seed") == 0)) {
    fprintf(stderr, "usage: %s kafka|seed <brokers> <prefix> <count> [plain]\n", argv[0]);
    return 2;
  }
  cqrs_config_t cfg;
  bench_load_cfg(&cfg, argv[2], argv[3]);
  long count = atol(argv[4]);
  int rc = strcmp(argv[1], "kafka") == 0 ? bench_kafka(&cfg, count)
                                         : seed(&cfg, count, argc > 5 && strcmp(argv[5], "plain") == 0);
  cqrs_config_cleanup(&cfg);
  return rc;
}
