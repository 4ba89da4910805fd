/* Saga benchmark driver (not a test): orders through the order placement
 * saga end to end, and the order deadline saga's precision and memory. Run
 * through tests/bench/saga_run.sh, which starts the services and prints the
 * comparison. Users come from `command_bench seed` (not plain): order i is
 * placed by user seed-<i % users>'s UUIDv5.
 *
 *   saga_bench orders <brokers> <prefix> <count> <users> [saga]
 *       <count> CreateOrder commands produced keyed; their results read back
 *       from command-results (commands/s). With saga (saga-svc running), also
 *       waits for every order's order_placement instance to reach a final
 *       state on saga-state (orders/s) and prints the latencies from each
 *       OrderCreated to its UserOrderRecorded and to the saga's end.
 *   saga_bench deadlines <brokers> <prefix> <count> <users> <offset_s> <spread_s> <saga_pidfile>
 *       <count> CreateOrder commands with processBy from now + offset_s,
 *       spread evenly over spread_s; saga-svc's VmRSS before and once every
 *       order's order_deadline instance holds its deadline on saga-state; then
 *       fired - due (the instance that dropped its deadline: updatedAt is the
 *       firing transaction's time) and cancelled - due (the
 *       PROCESSING_TIMEOUT OrderStatusUpdated's ce_time), p50/p99/max.
 *       saga-svc's pid is read from saga_pidfile at each look, so the
 *       driver may restart it (from saga-state) while the deadlines are
 *       pending. */
#include "saga.h"
#include "sagas/order_commands.h"

#include "bench_kafka.h"
#include "cqrs/config.h"
#include "cqrs/event.h"
#include "cqrs/events.h"
#include "cqrs/json.h"
#include "cqrs/kafka.h"
#include "cqrs/map.h"
#include "cqrs/result.h"
#include "cqrs/tenant.h"
#include "cqrs/util.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


/* The services run with AUTH=off: every command is tenant "default"'s. */
#define TENANT CQRS_TENANT_DEFAULT
#define IDLE_MS 60000 /* give up after this long without progress */

typedef struct {
  int64_t created, recorded, done; /* wall ms: OrderCreated, UserOrderRecorded, the saga's end */
  int64_t due, pending, fired, cancelled;
  int status;                      /* the CreateOrder's result, 0 before */
  bool finished_ok;                /* order_placement ended completed */
} order_t;

typedef struct {
  cqrs_config_t cfg;
  rd_kafka_t *prod, *cons;
  char *t_cmd, *t_res, *t_events, *t_state;
  long count, users;
  order_t *orders;
  cqrs_map_t *by_order, *by_result; /* order id / result key -> index + 1 */
  long results, accepted, finished, completed, pending, fired, cancelled;
  long long pending_bytes; /* JSON bytes of the deadline instances when they first held their deadline */
  int64_t t0, t_results, t_finished, t_progress; /* monotonic ms */
} bench_t;

/* Reads from now on: every partition of topics[0..n) from its high watermark. */
static void assign_from_end(rd_kafka_t *cons, char *const *topics, size_t n) {
  cqrs_error_t err;
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(32);
  for (size_t t = 0; t < n; t++) {
    int parts = cqrs_kafka_partition_count(cons, topics[t], 10000, &err);
    if (parts <= 0) {
      fprintf(stderr, "%s: %s\n", topics[t], err.message);
      exit(2);
    }
    for (int p = 0; p < parts; p++) {
      int64_t lo, hi;
      if (!cqrs_kafka_watermarks(cons, topics[t], p, &lo, &hi, 10000, &err)) {
        fprintf(stderr, "%s: %s\n", topics[t], err.message);
        exit(2);
      }
      rd_kafka_topic_partition_list_add(l, topics[t], p)->offset = hi;
    }
  }
  rd_kafka_assign(cons, l);
  rd_kafka_topic_partition_list_destroy(l);
}

static void bench_init(bench_t *b, char **argv) {
  memset(b, 0, sizeof *b);
  bench_load_cfg(&b->cfg, argv[2], argv[3]);
  b->count = atol(argv[4]);
  b->users = atol(argv[5]);
  if (b->count <= 0 || b->users <= 0) {
    fprintf(stderr, "count and users must be > 0\n");
    exit(2);
  }
  b->prod = bench_client(&b->cfg, RD_KAFKA_PRODUCER, "saga-bench");
  b->cons = bench_client(&b->cfg, RD_KAFKA_CONSUMER, "saga-bench");
  b->t_cmd = cqrs_config_topic(&b->cfg, CQRS_TOPIC_COMMANDS);
  b->t_res = cqrs_config_topic(&b->cfg, CQRS_TOPIC_RESULTS);
  b->t_events = cqrs_config_topic(&b->cfg, CQRS_TOPIC_EVENTS);
  b->t_state = cqrs_config_topic(&b->cfg, CQRS_TOPIC_SAGA_STATE);
  b->orders = calloc((size_t)b->count, sizeof *b->orders);
  b->by_order = cqrs_map_new(NULL);
  b->by_result = cqrs_map_new(NULL);
  char *topics[] = {b->t_res, b->t_events, b->t_state};
  assign_from_end(b->cons, topics, 3);
}

static void bench_cleanup(bench_t *b) {
  rd_kafka_consumer_close(b->cons);
  rd_kafka_destroy(b->cons);
  rd_kafka_destroy(b->prod);
  cqrs_map_destroy(b->by_order);
  cqrs_map_destroy(b->by_result);
  free(b->orders);
  free(b->t_cmd), free(b->t_res), free(b->t_events), free(b->t_state);
  cqrs_config_cleanup(&b->cfg);
}

/* The order with id (a map key), or NULL. */
static order_t *find(const bench_t *b, const cqrs_map_t *m, const char *key) {
  intptr_t i = (intptr_t)cqrs_map_get(m, key);
  return i ? &b->orders[i - 1] : NULL;
}

/* Produces order i; process_by may be NULL (command-svc's default applies). */
static void produce_order(bench_t *b, long i, const char *run, const char *process_by) {
  char cid[96], order[CQRS_UUID_LEN], user_name[32], user[CQRS_UUID_LEN], key[128], result_key[128], json[640];
  snprintf(cid, sizeof cid, "sagabench-%.8s-%ld", run, i);
  cqrs_uuid_from_name(cid, order);
  snprintf(user_name, sizeof user_name, "seed-%ld", i % b->users);
  cqrs_uuid_from_name(user_name, user);
  snprintf(key, sizeof key, TENANT "/%s", order);
  snprintf(result_key, sizeof result_key, TENANT "/%s", cid);
  char extra[96] = "";
  if (process_by) snprintf(extra, sizeof extra, ",\"processBy\":\"%s\"", process_by);
  int len = snprintf(json, sizeof json,
                     "{\"commandType\":\"CreateOrder\",\"commandId\":\"%s\",\"aggregateId\":\"%s\",\"userId\":\"%s\","
                     "\"totalAmount\":2,\"items\":[{\"product\":\"Pen\",\"quantity\":1,\"price\":2}]%s}",
                     cid, order, user, extra);
  cqrs_map_put(b->by_order, order, (void *)(intptr_t)(i + 1));
  cqrs_map_put(b->by_result, result_key, (void *)(intptr_t)(i + 1));
  while (rd_kafka_producev(b->prod, RD_KAFKA_V_TOPIC(b->t_cmd), RD_KAFKA_V_KEY(key, strlen(key)),
                           RD_KAFKA_V_VALUE(json, (size_t)len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                           RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
    rd_kafka_poll(b->prod, 10);
  rd_kafka_poll(b->prod, 0);
}

static void progress(bench_t *b) { b->t_progress = cqrs_time_monotonic_ms(); }

static void on_result(bench_t *b, const rd_kafka_message_t *m) {
  char key[160];
  snprintf(key, sizeof key, "%.*s", (int)m->key_len, (const char *)m->key);
  order_t *o = find(b, b->by_result, key);
  int status = 0;
  if (!o || o->status || !m->payload || !cqrs_result_status(m->payload, m->len, &status)) return;
  o->status = status;
  b->results++;
  b->accepted += status == 201;
  b->t_results = cqrs_time_monotonic_ms();
  progress(b);
}

static int64_t ms_of(const char *rfc3339) {
  int64_t ms = 0;
  return rfc3339 && cqrs_time_parse_rfc3339(rfc3339, &ms) ? ms : 0;
}

/* OrderCreated, UserOrderRecorded and a PROCESSING_TIMEOUT OrderStatusUpdated
 * of our orders: their ce_time. */
static void on_event(bench_t *b, rd_kafka_message_t *m) {
  cqrs_header_t hdrs[32];
  size_t nh = cqrs_kafka_headers(m, hdrs, 32);
  cqrs_event_t ev = {0};
  const cqrs_event_type_t *type;
  cqrs_event_data_t d;
  if (!cqrs_event_from_record(&ev, hdrs, nh, m->payload, m->len, NULL) || !(type = cqrs_event_type_find(ev.type)) ||
      !type->decode(ev.data, &d, NULL))
    goto done;
  order_t *o;
  if (type == &cqrs_order_created_event) {
    if ((o = find(b, b->by_order, ev.aggregate_id))) o->created = ms_of(ev.time);
  } else if (type == &cqrs_user_order_recorded_event) {
    if ((o = find(b, b->by_order, d.user_order_recorded.order_id))) o->recorded = ms_of(ev.time);
  } else if (type == &cqrs_order_status_updated_event) {
    const char *reason = d.order_status_updated.reason;
    if ((o = find(b, b->by_order, ev.aggregate_id)) && !o->cancelled && reason &&
        strcmp(reason, CQRS_REASON_PROCESSING_TIMEOUT) == 0) {
      o->cancelled = ms_of(ev.time);
      b->cancelled++;
      progress(b);
    }
  }
done:
  cqrs_event_cleanup(&ev);
}

static bool finished_state(const char *state) {
  return strcmp(state, CQRS_SAGA_COMPLETED) == 0 || strcmp(state, CQRS_SAGA_COMPENSATED) == 0 ||
         strcmp(state, CQRS_SAGA_FAILED) == 0;
}

/* The order id in a saga instance's data (both order sagas keep it there). */
static const char *instance_order(const bson_t *inst) {
  bson_iter_t it, d;
  if (bson_iter_init_find(&it, inst, "data") && BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &d) &&
      bson_iter_find(&d, "orderId") && BSON_ITER_HOLDS_UTF8(&d))
    return bson_iter_utf8(&d, NULL);
  return "";
}

/* A saga instance written to saga-state: the placement saga's end, the
 * deadline saga holding its deadline, then dropping it when it fires. */
static void on_instance(bench_t *b, const rd_kafka_message_t *m) {
  bson_t *inst = m->payload ? cqrs_json_parse(m->payload, m->len, NULL) : NULL;
  if (!inst) return;
  order_t *o = find(b, b->by_order, instance_order(inst));
  const char *type = cqrs_saga_str(inst, "type"), *state = cqrs_saga_str(inst, "state");
  int64_t at = ms_of(cqrs_saga_str(inst, "updatedAt")), due;
  const char *what;
  if (!o) goto done;
  if (strcmp(type, cqrs_order_placement_saga.type) == 0 && !o->done && finished_state(state)) {
    o->done = at;
    o->finished_ok = strcmp(state, CQRS_SAGA_COMPLETED) == 0;
    b->finished++;
    b->completed += o->finished_ok;
    b->t_finished = cqrs_time_monotonic_ms();
    progress(b);
  } else if (strcmp(type, cqrs_order_deadline_saga.type) == 0 && strcmp(state, CQRS_SAGA_RUNNING) == 0) {
    bool holds = cqrs_saga_next_deadline(inst, &due, &what);
    if (holds && !o->pending) {
      o->pending = at;
      b->pending++;
      b->pending_bytes += (long long)m->len;
      progress(b);
    } else if (!holds && o->pending && !o->fired) {
      o->fired = at;
      b->fired++;
      progress(b);
    }
  }
done:
  bson_destroy(inst);
}

/* Consumes what there is for up to ms. */
static void consume(bench_t *b, int ms) {
  int64_t until = cqrs_time_monotonic_ms() + ms;
  do {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(b->cons, 100);
    if (!m) continue;
    if (!m->err && m->key) {
      const char *topic = rd_kafka_topic_name(m->rkt);
      if (strcmp(topic, b->t_res) == 0) on_result(b, m);
      else if (strcmp(topic, b->t_events) == 0) on_event(b, m);
      else on_instance(b, m);
    }
    rd_kafka_message_destroy(m);
  } while (cqrs_time_monotonic_ms() < until);
}

static bool idle(const bench_t *b) { return cqrs_time_monotonic_ms() - b->t_progress > IDLE_MS; }

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* "<name>_p50_ms=.. <name>_p99_ms=.. <name>_max_ms=.." of to - from over the
 * orders that have both (n of them). */
static void print_lat(const bench_t *b, const char *name, size_t from, size_t to) {
  int64_t *d = malloc((size_t)b->count * sizeof *d);
  size_t n = 0;
  for (long i = 0; i < b->count; i++) {
    const char *o = (const char *)&b->orders[i];
    int64_t f = *(const int64_t *)(o + from), t = *(const int64_t *)(o + to);
    if (f && t) d[n++] = t - f;
  }
  qsort(d, n, sizeof *d, cmp_i64);
  if (n)
    printf(" %s_p50_ms=%lld %s_p99_ms=%lld %s_max_ms=%lld %s_n=%zu", name, (long long)d[n / 2], name,
           (long long)d[n * 99 / 100], name, (long long)d[n - 1], name, n);
  else
    printf(" %s_n=0", name);
  free(d);
}

static int bench_orders(bench_t *b, bool saga) {
  char run[CQRS_UUID_LEN];
  cqrs_uuid_random(run);
  b->t0 = cqrs_time_monotonic_ms();
  progress(b);
  for (long i = 0; i < b->count; i++) {
    produce_order(b, i, run, NULL);
    if (i % 1000 == 999) consume(b, 0);
  }
  rd_kafka_flush(b->prod, 30000);
  double produce_s = (double)(cqrs_time_monotonic_ms() - b->t0) / 1000.0;
  while ((b->results < b->count || (saga && b->finished < b->count)) && !idle(b)) consume(b, 200);
  double cmd_s = (double)(b->t_results - b->t0) / 1000.0;
  printf("create-order commands=%ld results=%ld accepted=%ld seconds=%.2f commands_per_s=%.0f produce_seconds=%.2f",
         b->count, b->results, b->accepted, cmd_s, b->results / cmd_s, produce_s);
  if (saga) {
    double saga_s = (double)(b->t_finished - b->t0) / 1000.0;
    printf(" sagas_finished=%ld completed=%ld saga_seconds=%.2f orders_per_s=%.0f", b->finished, b->completed, saga_s,
           b->finished / saga_s);
    print_lat(b, "created_to_recorded", offsetof(order_t, created), offsetof(order_t, recorded));
    print_lat(b, "created_to_saga_end", offsetof(order_t, created), offsetof(order_t, done));
  }
  printf("\n");
  return b->results == b->count && b->accepted == b->count && (!saga || b->completed == b->count) ? 0 : 1;
}

/* The pid written in pidfile (0 when unreadable). */
static long pid_in(const char *pidfile) {
  FILE *f = fopen(pidfile, "r");
  long pid = 0;
  if (f && fscanf(f, "%ld", &pid) != 1) pid = 0;
  if (f) fclose(f);
  return pid;
}

/* VmRSS of pid in KiB (0 when unreadable). */
static long rss_kib(long pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%ld/status", pid);
  FILE *f = fopen(path, "r");
  long kib = 0;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) kib = atol(line + 6);
  if (f) fclose(f);
  return kib;
}

/* User + system CPU seconds pid has used (0 when unreadable). */
static double cpu_s(long pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
  if (f) fclose(f);
  buf[n] = '\0';
  const char *p = strrchr(buf, ')'); /* after the command name: state is field 3, utime 14, stime 15 */
  unsigned long long ut = 0, st = 0;
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return 0;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int64_t wall_now(void) {
  char now[32];
  cqrs_time_now_rfc3339(now);
  return ms_of(now);
}

static int bench_deadlines(bench_t *b, long offset_s, long spread_s, const char *pidfile) {
  char run[CQRS_UUID_LEN], due[32];
  cqrs_uuid_random(run);
  long rss0 = rss_kib(pid_in(pidfile));
  double cpu0 = cpu_s(pid_in(pidfile));
  int64_t wall0 = wall_now();
  int64_t first_due = wall0 + offset_s * 1000, last_due = first_due + spread_s * 1000;
  b->t0 = cqrs_time_monotonic_ms();
  progress(b);
  for (long i = 0; i < b->count; i++) {
    b->orders[i].due = first_due + (spread_s * 1000 * i) / b->count;
    cqrs_time_format_rfc3339(b->orders[i].due, due);
    produce_order(b, i, run, due);
    if (i % 1000 == 999) consume(b, 0);
  }
  rd_kafka_flush(b->prod, 30000);
  double produce_s = (double)(cqrs_time_monotonic_ms() - b->t0) / 1000.0;
  /* every deadline held (and then every placement saga ended too: the quiet
   * state, nothing but the held deadlines), or the first one passed */
  while (b->pending < b->count && !idle(b) && wall_now() < first_due) consume(b, 200);
  long rss1 = rss_kib(pid_in(pidfile)), pending1 = b->pending;
  int64_t wall1 = wall_now();
  while (b->finished < b->count && !idle(b) && wall_now() < first_due) consume(b, 200);
  long rss2 = rss_kib(pid_in(pidfile));
  int64_t wall2 = wall_now();
  double cpu2 = cpu_s(pid_in(pidfile));
  printf("deadlines orders=%ld produce_seconds=%.2f pending=%ld of %ld %.1f s after the start (%.1f s before the first "
         "due), placement sagas ended=%ld %.1f s after the start; rss_before_kib=%ld rss_pending_kib=%ld "
         "rss_quiet_kib=%ld bytes_per_pending=%.0f (quiet: %.0f) instance_json_bytes=%.0f saga_cpu_s=%.1f\n",
         b->count, produce_s, pending1, b->count, (double)(wall1 - wall0) / 1000.0, (double)(first_due - wall1) / 1000.0,
         b->finished, (double)(wall2 - wall0) / 1000.0, rss0, rss1, rss2,
         pending1 ? (double)(rss1 - rss0) * 1024.0 / (double)pending1 : 0.0,
         pending1 ? (double)(rss2 - rss0) * 1024.0 / (double)pending1 : 0.0,
         pending1 ? (double)b->pending_bytes / (double)pending1 : 0.0, cpu2 - cpu0);
  fflush(stdout);
  while (wall_now() < first_due) consume(b, 200);
  double cpu3 = cpu_s(pid_in(pidfile));
  while ((b->fired < b->count || b->cancelled < b->count) && (!idle(b) || wall_now() < last_due)) consume(b, 200);
  int64_t last_fired = 0;
  for (long i = 0; i < b->count; i++)
    if (b->orders[i].fired > last_fired) last_fired = b->orders[i].fired;
  double fire_s = (double)(last_fired - first_due) / 1000.0;
  printf("deadlines fired=%ld cancelled=%ld of %ld due over %.1f s, the last fired %.1f s after the first due "
         "(%.0f fired/s) with saga_cpu_s=%.1f;",
         b->fired, b->cancelled, b->count, (double)spread_s, fire_s, fire_s > 0 ? b->fired / fire_s : 0.0,
         cpu_s(pid_in(pidfile)) - cpu3);
  print_lat(b, "fired_late", offsetof(order_t, due), offsetof(order_t, fired));
  print_lat(b, "cancelled_late", offsetof(order_t, due), offsetof(order_t, cancelled));
  printf(" rss_end_kib=%ld\n", rss_kib(pid_in(pidfile)));
  return pending1 == b->count && b->fired == b->count && b->cancelled == b->count ? 0 : 1;
}

int main(int argc, char **argv) {
  bool orders = argc >= 6 && strcmp(argv[1], "orders") == 0, deadlines = argc == 9 && strcmp(argv[1], "deadlines") == 0;
  if (!(orders && argc <= 7) && !deadlines) {
    fprintf(stderr,
            "usage: %s orders <brokers> <prefix> <count> <users> [saga]\n"
            "       %s deadlines <brokers> <prefix> <count> <users> <offset_s> <spread_s> <saga_pidfile>\n",
            argv[0], argv[0]);
    return 2;
  }
  bench_t b;
  bench_init(&b, argv);
  int rc = orders ? bench_orders(&b, argc == 7 && strcmp(argv[6], "saga") == 0)
                  : bench_deadlines(&b, atol(argv[6]), atol(argv[7]), argv[8]);
  bench_cleanup(&b);
  return rc;
}
