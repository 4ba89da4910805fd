/* The cost of event schema evolution (issue 12), pure, on one core: per event,
 * upcasting (a no-op for the current version, an added field, a renamed one)
 * next to the decode every reader pays anyway (the anchor), the validation
 * command-svc runs before appending next to its whole pure pipeline per
 * command, and the projector's pure path per event (record -> write) for a
 * current and a v1 event. Prints ns/event, the median of BENCH_RUNS runs.
 *
 *   evolve_bench [events per run]        (BENCH_RUNS, default 7)
 */
#include "processor.h"
#include "projection.h"

#include "cqrs/json.h"
#include "cqrs/upcast.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *ORDER_V2 = "{\"orderId\":\"o-1\",\"userId\":\"u-1\",\"items\":[{\"product\":\"Pen\",\"quantity\":3,"
                              "\"price\":1.5},{\"product\":\"Book\",\"quantity\":1,\"price\":21.0}],\"totalAmount\":25.5,"
                              "\"currency\":\"EUR\",\"createdAt\":\"2026-03-01T10:00:00.000Z\"}";
static const char *ORDER_V1 = "{\"orderId\":\"o-1\",\"userId\":\"u-1\",\"items\":[{\"product\":\"Pen\",\"quantity\":3,"
                              "\"price\":1.5},{\"product\":\"Book\",\"quantity\":1,\"price\":21.0}],\"totalAmount\":25.5,"
                              "\"createdAt\":\"2026-03-01T10:00:00.000Z\"}";
static const char *EMAIL_V2 = "{\"customerId\":\"k-1\",\"oldEmail\":\"ann@example.com\",\"email\":\"bo@example.com\","
                              "\"updatedAt\":\"2026-03-02T11:00:00.000Z\"}";
static const char *EMAIL_V1 = "{\"customerId\":\"k-1\",\"oldEmail\":\"ann@example.com\",\"newEmail\":\"bo@example.com\","
                              "\"updatedAt\":\"2026-03-02T11:00:00.000Z\"}";

static volatile size_t sink; /* keeps the optimiser from dropping the work */

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* parse + upcast (when type) + decode of one event's JSON. */
typedef struct {
  const char *json;
  const cqrs_event_type_t *decode_as; /* NULL: upcast first, then the current version */
  const char *type;
  int version;
} decode_case_t;

static void run_decode(const void *arg) {
  const decode_case_t *c = arg;
  bson_t *data = cqrs_json_parse(c->json, strlen(c->json), NULL);
  cqrs_event_data_t e;
  if (c->decode_as) {
    sink += c->decode_as->decode(data, &e, NULL);
  } else {
    cqrs_upcast_t up;
    if (cqrs_upcast(c->type, c->version, data, &up, NULL)) sink += up.type->decode(up.data, &e, NULL);
    cqrs_upcast_cleanup(&up);
  }
  bson_destroy(data);
}

/* upcast alone, on parsed data. */
typedef struct {
  bson_t *data;
  const char *type;
  int version;
} upcast_case_t;

static void run_upcast(const void *arg) {
  const upcast_case_t *c = arg;
  cqrs_upcast_t up;
  sink += cqrs_upcast(c->type, c->version, c->data, &up, NULL);
  cqrs_upcast_cleanup(&up);
}

static void run_validate(const void *arg) { sink += cqrs_event_validate(&cqrs_order_created_event, arg, NULL); }

/* The command side's pure pipeline for one CreateOrder (validation included). */
typedef struct {
  cqrs_aggregate_store_t *store;
  cqrs_process_ctx_t ctx;
  char json[512];
  size_t i;
} command_case_t;

static int32_t partition_zero(const char *key, void *ctx) {
  (void)key, (void)ctx;
  return 0;
}

static void run_command(const void *arg) {
  command_case_t *c = (command_case_t *)arg;
  int n = snprintf(c->json, sizeof c->json,
                   "{\"commandType\":\"CreateOrder\",\"aggregateId\":\"o-%zu\",\"userId\":\"u-1\",\"totalAmount\":25.5,"
                   "\"currency\":\"EUR\",\"items\":[{\"product\":\"Pen\",\"quantity\":3,\"price\":1.5},"
                   "{\"product\":\"Book\",\"quantity\":1,\"price\":21}]}",
                   c->i++);
  cqrs_outcome_t out;
  cqrs_process_command(c->store, &c->ctx, c->json, (size_t)n, &out);
  sink += out.n_events;
  cqrs_outcome_cleanup(&out); /* not staged: the store stays empty, every command a create */
}

/* The projector's pure path for one record: CloudEvents decode, the
 * projection's apply (upcast + decode + write), the write freed. */
typedef struct {
  cqrs_header_t hdrs[CQRS_EVENT_MAX_HEADERS];
  size_t n;
  const char *value;
  const cqrs_projection_t *proj;
} record_case_t;

static void run_record(const void *arg) {
  const record_case_t *c = arg;
  cqrs_event_t ev;
  cqrs_write_t w;
  bool skip;
  if (cqrs_event_from_record(&ev, c->hdrs, c->n, c->value, strlen(c->value), NULL)) {
    sink += c->proj->apply(&ev, &w, &skip, NULL);
    cqrs_write_cleanup(&w);
  }
  cqrs_event_cleanup(&ev);
}

static void record_case(record_case_t *c, cqrs_event_t *ev, char vbuf[24], const char *type, int schema,
                        const char *value, const cqrs_projection_t *proj) {
  *ev = (cqrs_event_t){.id = "e-1", .type = (char *)type, .source = "/bench", .aggregate_type = (char *)proj->aggregate_type,
                       .aggregate_id = "o-1", .time = "2026-03-01T10:00:00.000Z", .version = 1};
  if (schema) cqrs_event_set_schema(ev, NULL, schema);
  c->n = cqrs_event_to_headers(ev, c->hdrs, vbuf);
  c->value = value;
  c->proj = proj;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double run_once(void (*fn)(const void *), const void *arg, size_t n) {
  double t0 = now_ns();
  for (size_t i = 0; i < n; i++) fn(arg);
  return (now_ns() - t0) / (double)n;
}

/* Median ns per call of fn(arg) over runs runs of n calls. */
static double measure(void (*fn)(const void *), const void *arg, size_t n, int runs) {
  double t[64];
  run_once(fn, arg, n / 10); /* warm up */
  for (int r = 0; r < runs; r++) t[r] = run_once(fn, arg, n);
  qsort(t, (size_t)runs, sizeof *t, cmp);
  return t[runs / 2];
}

/* The same for a path and its anchor, run by turns (the machine is shared and
 * noisy: both see the same load): medians into *a and *b. */
static void measure_pair(void (*fa)(const void *), const void *aa, void (*fb)(const void *), const void *ab,
                         size_t n, int runs, double *a, double *b) {
  double ta[64], tb[64];
  run_once(fa, aa, n / 10);
  run_once(fb, ab, n / 10);
  for (int r = 0; r < runs; r++) {
    ta[r] = run_once(fa, aa, n);
    tb[r] = run_once(fb, ab, n);
  }
  qsort(ta, (size_t)runs, sizeof *ta, cmp);
  qsort(tb, (size_t)runs, sizeof *tb, cmp);
  *a = ta[runs / 2];
  *b = tb[runs / 2];
}

int main(int argc, char **argv) {
  size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 200000;
  const char *r = getenv("BENCH_RUNS");
  int runs = r ? atoi(r) : 7;
  if (runs < 1 || runs > 64 || n == 0) {
    fprintf(stderr, "usage: evolve_bench [events per run]   (BENCH_RUNS 1..64)\n");
    return 2;
  }
  printf("%zu events per run, median of %d runs, ns/event\n\n", n, runs);

  decode_case_t anchor = {ORDER_V2, &cqrs_order_created_event, NULL, 0};
  decode_case_t cur = {ORDER_V2, NULL, "OrderCreated", 2};
  decode_case_t add = {ORDER_V1, NULL, "OrderCreated", 1};
  decode_case_t anchor_email = {EMAIL_V2, &cqrs_customer_email_updated_event, NULL, 0};
  decode_case_t ren = {EMAIL_V1, NULL, "CustomerEmailUpdated", 1};
  double a1, b, a2, c, ae, d;
  measure_pair(run_decode, &anchor, run_decode, &cur, n, runs, &a1, &b);
  measure_pair(run_decode, &anchor, run_decode, &add, n, runs, &a2, &c);
  measure_pair(run_decode, &anchor_email, run_decode, &ren, n, runs, &ae, &d);
  printf("| reader path (JSON parse + decode), each next to its anchor run by turns | anchor ns | ns/event | ratio |\n"
         "|---|---|---|---|\n");
  printf("| OrderCreated v2 through cqrs_upcast (current: no-op) vs parse + decode | %.0f | %.0f | %.3f |\n", a1, b,
         b / a1);
  printf("| OrderCreated v1 -> v2 (add currency) vs v2 parse + decode | %.0f | %.0f | %.3f |\n", a2, c, c / a2);
  printf("| CustomerEmailUpdated v1 -> v2 (rename) vs v2 parse + decode | %.0f | %.0f | %.3f |\n\n", ae, d, d / ae);

  upcast_case_t u_cur = {cqrs_json_parse(ORDER_V2, strlen(ORDER_V2), NULL), "OrderCreated", 2};
  upcast_case_t u_add = {cqrs_json_parse(ORDER_V1, strlen(ORDER_V1), NULL), "OrderCreated", 1};
  upcast_case_t u_ren = {cqrs_json_parse(EMAIL_V1, strlen(EMAIL_V1), NULL), "CustomerEmailUpdated", 1};
  double uc = measure(run_upcast, &u_cur, n, runs), ua = measure(run_upcast, &u_add, n, runs),
         ur = measure(run_upcast, &u_ren, n, runs), v = measure(run_validate, u_cur.data, n, runs);
  printf("| alone | ns/event |\n|---|---|\n");
  printf("| cqrs_upcast, current version (the common case) | %.0f |\n", uc);
  printf("| cqrs_upcast, OrderCreated v1 -> v2 | %.0f |\n", ua);
  printf("| cqrs_upcast, CustomerEmailUpdated v1 -> v2 | %.0f |\n", ur);
  printf("| cqrs_event_validate, OrderCreated v2 (validation before append) | %.0f |\n\n", v);

  command_case_t cmd = {.store = cqrs_aggregate_store_new(),
                        .ctx = {.tenant = "default", .partition = 0, .partition_of = partition_zero,
                                .now = "2026-03-01T10:00:00.000Z", .source = "command-svc"}};
  double pc = measure(run_command, &cmd, n / 4, runs);
  printf("| command side | ns/command | share |\n|---|---|---|\n");
  printf("| pure pipeline, CreateOrder (parse, validate command, decide, validate event, evolve, event) | %.0f | 1.000 |\n",
         pc);
  printf("| of which validation before append | %.0f | %.3f |\n\n", v, v / pc);

  record_case_t rv2, rv1;
  cqrs_event_t e2, e1;
  char vb2[24], vb1[24];
  record_case(&rv2, &e2, vb2, "OrderCreated", 2, ORDER_V2, &cqrs_order_summaries_projection);
  record_case(&rv1, &e1, vb1, "OrderCreated", 0, ORDER_V1, &cqrs_order_summaries_projection);
  double p2, p1;
  measure_pair(run_record, &rv2, run_record, &rv1, n, runs, &p2, &p1);
  printf("| projector side (record -> order_summaries write) | ns/event | share of upcast |\n|---|---|---|\n");
  printf("| OrderCreated v2 record (ce_dataschema) | %.0f | %.3f (no-op upcast) |\n", p2, uc / p2);
  printf("| OrderCreated v1 record (written the old way) | %.0f | %.3f (v1 -> v2) |\n", p1, ua / p1);

  free(e2.dataschema);
  bson_destroy(u_cur.data);
  bson_destroy(u_add.data);
  bson_destroy(u_ren.data);
  cqrs_aggregate_store_destroy(cmd.store);
  return sink == 0; /* never: every call above succeeds */
}
