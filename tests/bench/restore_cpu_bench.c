/* Where restore's CPU goes, without Kafka (BENCHMARKS.md): count
 * aggregate-state records like `command_bench seed` writes them, held in
 * memory, through each step restore takes per record, on one core:
 *
 *   parse_libbson     libbson's JSON reader alone (what cqrs_json_parse was)
 *   parse             cqrs_json_parse (the fast path)
 *   decode_and_free   cqrs_aggregate_from_json + destroy (memory reused)
 *   decode_kept       cqrs_aggregate_from_json into fresh memory, kept (as restore)
 *   store_put         cqrs_aggregate_store_put of those
 *
 *   restore_cpu_bench [count] [store]   (default 1000000; "store": the last two alone, for perf) */
#include "aggregate_store.h"

#include "cqrs/json.h"
#include "cqrs/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) kb = atol(line + 6);
  if (f) fclose(f);
  return kb;
}

int main(int argc, char **argv) {
  long count = argc > 1 ? atol(argv[1]) : 1000000;
  char **keys = malloc((size_t)count * sizeof *keys), **vals = malloc((size_t)count * sizeof *vals);
  size_t *lens = malloc((size_t)count * sizeof *lens);
  for (long i = 0; i < count; i++) { /* command_bench.c's seed record */
    char id[CQRS_UUID_LEN], name[32], json[768];
    snprintf(name, sizeof name, "seed-%ld", i);
    cqrs_uuid_from_name(name, id);
    int len = snprintf(json, sizeof json,
                       "{\"tenant\":\"default\",\"aggregateId\":\"%s\",\"aggregateType\":\"user\",\"version\":1,"
                       "\"state\":{\"userId\":\"%s\",\"email\":\"user%ld@example.com\",\"name\":\"Seed User %ld\","
                       "\"createdAt\":\"2026-11-22T00:00:00.000Z\",\"updatedAt\":\"2026-11-22T00:00:00.000Z\"},"
                       "\"recent\":[{\"commandId\":\"%s\",\"result\":\"{}\"}]}",
                       id, id, i, i, name);
    vals[i] = strdup(json);
    lens[i] = (size_t)len;
    size_t kl = strlen("default/") + strlen(id) + 1;
    keys[i] = malloc(kl);
    snprintf(keys[i], kl, "default/%s", id);
  }
  bool only_store = argc > 2 && strcmp(argv[2], "store") == 0;
  double t = cpu_s();
  for (long i = 0; !only_store && i < count; i++) {
    bson_error_t e;
    bson_destroy(bson_new_from_json((const uint8_t *)vals[i], (ssize_t)lens[i], &e));
  }
  double libbson = cpu_s() - t;
  t = cpu_s();
  for (long i = 0; !only_store && i < count; i++) bson_destroy(cqrs_json_parse(vals[i], lens[i], NULL));
  double parse = cpu_s() - t;
  t = cpu_s();
  for (long i = 0; !only_store && i < count; i++)
    cqrs_aggregate_destroy(cqrs_aggregate_from_json(keys[i], 0, vals[i], lens[i], NULL));
  double decode = cpu_s() - t;
  long rss0 = rss_kb();
  /* decoded into fresh memory (as restore does: nothing is freed), then put */
  cqrs_aggregate_t **aggs = malloc((size_t)count * sizeof *aggs);
  t = cpu_s();
  for (long i = 0; i < count; i++) aggs[i] = cqrs_aggregate_from_json(keys[i], 0, vals[i], lens[i], NULL);
  double kept = cpu_s() - t;
  cqrs_aggregate_store_t *store = cqrs_aggregate_store_new();
  t = cpu_s();
  for (long i = 0; i < count; i++) cqrs_aggregate_store_put(store, aggs[i]);
  double put = cpu_s() - t;
  long rss1 = rss_kb();
  printf("records=%ld ns/record: parse_libbson=%.0f parse=%.0f decode_and_free=%.0f decode_kept=%.0f store_put=%.0f "
         "store_bytes_per_aggregate=%.0f\n",
         count, libbson * 1e9 / count, parse * 1e9 / count, decode * 1e9 / count, kept * 1e9 / count,
         put * 1e9 / count, (double)(rss1 - rss0) * 1024.0 / (double)count - (double)sizeof *aggs);
  free(aggs);
  cqrs_aggregate_store_destroy(store);
  for (long i = 0; i < count; i++) free(keys[i]), free(vals[i]);
  free(keys), free(vals), free(lens);
  return 0;
}
