/* History and time travel latencies through query-svc (issue 16's
 * benchmarks): for orders with 10, 1,000 and 10,000 events, a history page
 * (50 events), time travel (asOf after the last event; atVersion at the
 * middle, a snapshot's version; atVersion K - 1 after it, the most events a
 * travel folds after a snapshot) through a query-svc with snapshots every
 * SNAPSHOT_EVERY (K) versions and the same travels through one without
 * (SNAPSHOT_EVERY=0: every history folded from its beginning), and, in the
 * same run, the plain point read; then events of one type over a one-hour
 * window among BENCH_EVENTS events spread over BENCH_DAYS days. Loads its
 * data straight into "<db>_default" (the read models query-svc with AUTH=off
 * reads) with the projections' own code, snapshots included (the snapshots
 * projection over a memory reader). Run by tests/bench/history_run.sh.
 *
 *   history_bench <query port> <query port without snapshots> <db>
 *                 (MONGO_URI, FERRETDB_PG_URI, SNAPSHOT_EVERY, BENCH_EVENTS, BENCH_DAYS, BENCH_REPS)
 *   history_bench --drop <database>        (the run's database, afterwards)
 */
#include "history_gen.h"

#include "cqrs/config.h"
#include "cqrs/ferretdb_pg.h"

#include <curl/curl.h>
#include <time.h>

#define BASE_MS INT64_C(1772323200000) /* 2026-03-01T00:00:00Z */

static size_t discard(char *p, size_t s, size_t n, void *ctx) {
  (void)p, (void)ctx;
  return s * n;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* reps GETs of url on one keep-alive connection: p50 and p99 in ms; false
 * when one did not answer 200. */
static bool measure(CURL *c, const char *url, int reps, double *p50, double *p99) {
  double *t = calloc((size_t)reps, sizeof *t);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
  bool ok = true;
  for (int i = 0; i < reps && ok; i++) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    long status = 0;
    ok = curl_easy_perform(c) == CURLE_OK && curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
         status == 200;
    clock_gettime(CLOCK_MONOTONIC, &b);
    t[i] = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    if (!ok) fprintf(stderr, "GET %s answered %ld\n", url, status);
  }
  qsort(t, (size_t)reps, sizeof *t, cmp_double);
  *p50 = t[reps / 2];
  *p99 = t[(reps * 99) / 100 < reps ? (reps * 99) / 100 : reps - 1];
  free(t);
  return ok;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* One order with n events, every step_ms: its history, its snapshots every
 * `every` versions and its document. *n_snapshots gets how many. */
static bool load_order(mongoc_collection_t *history, mongoc_collection_t *snapshots, mongoc_collection_t *orders,
                       const char *id, int64_t n, int64_t step_ms, int every, long *n_snapshots) {
  enum { CHUNK = 1000 };
  cqrs_event_t *evs = calloc((size_t)n, sizeof *evs);
  bson_t *data = calloc((size_t)n, sizeof *data);
  char(*ids)[3][CQRS_UUID_LEN] = calloc((size_t)n, sizeof *ids);
  char(*times)[32] = calloc((size_t)n, sizeof *times);
  for (int64_t v = 1; v <= n; v++) gen_order_event(id, v, BASE_MS, step_ms, ids[v - 1], times[v - 1], &data[v - 1], &evs[v - 1]);
  bool ok = true;
  for (int64_t a = 0; a < n && ok; a += CHUNK)
    ok = gen_insert(history, &cqrs_event_history_projection, evs + a, (size_t)(n - a < CHUNK ? n - a : CHUNK));
  if (ok) ok = (*n_snapshots = gen_snapshots(snapshots, evs, (size_t)n, every)) >= 0;
  /* the stored document: creation and last update, as the projector would leave it */
  if (ok) {
    cqrs_event_t two[2] = {evs[0], evs[n - 1]};
    ok = gen_insert(orders, &cqrs_order_summaries_projection, two, n > 1 ? 2 : 1);
  }
  for (int64_t i = 0; i < n; i++) bson_destroy(&data[i]);
  free(evs), free(data), free(ids), free(times);
  return ok;
}

/* Cells from..4 of order id's row, n requests each on port (p50 / p99 ms):
 * the point read, a history page, asOf after the last event, atVersion at
 * the middle, and every - 1 versions later ("-" beyond the order). A failure
 * (a 503 when the store took longer than MONGO_TIMEOUT_MS) is a result too:
 * measure stops there. */
static void order_row(CURL *c, int port, const char *id, int64_t size, int every, int from, int n,
                      char cells[5][64]) {
  int64_t mid = size / 2, worst = mid + every - 1;
  char query[5][64] = {"", "/history?limit=50", "?asOf=2027-01-01T00:00:00Z"};
  snprintf(query[3], sizeof query[3], "?atVersion=%lld", (long long)mid);
  snprintf(query[4], sizeof query[4], "?atVersion=%lld", (long long)worst);
  for (int k = from; k < 5; k++) {
    char url[512];
    double p50, p99;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/orders/%s%s", port, id, query[k]);
    if (k == 4 && (every <= 0 || worst > size))
      snprintf(cells[k], 64, "-");
    else if (measure(c, url, n, &p50, &p99))
      snprintf(cells[k], 64, "%.1f / %.1f", p50, p99);
    else
      snprintf(cells[k], 64, "not answered (see above)");
  }
}

static void indexes(mongoc_client_t *client, const char *db, const cqrs_projection_t *proj, PGconn *pg,
                    const char *const *gin, size_t n_gin) {
  bson_t cmd = BSON_INITIALIZER, idx;
  BSON_APPEND_UTF8(&cmd, "createIndexes", proj->name);
  BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &idx);
  proj->indexes(&idx);
  bson_append_array_end(&cmd, &idx);
  bson_error_t e;
  if (!mongoc_client_write_command_with_opts(client, db, &cmd, NULL, NULL, &e)) fprintf(stderr, "createIndexes: %s\n", e.message);
  bson_destroy(&cmd);
  cqrs_error_t err = {0};
  if (pg && !cqrs_ferretdb_pg_gin_indexes(pg, db, proj->name, gin, n_gin, NULL, &err))
    fprintf(stderr, "GIN: %s\n", err.message);
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--drop") == 0) { /* the run's database, at the end */
    mongoc_init();
    mongoc_client_t *client = mongoc_client_new(getenv("MONGO_URI") ? getenv("MONGO_URI") : "mongodb://127.0.0.1:27017");
    mongoc_database_t *d = client ? mongoc_client_get_database(client, argv[2]) : NULL;
    bool ok = d && mongoc_database_drop(d, NULL);
    if (d) mongoc_database_destroy(d);
    if (client) mongoc_client_destroy(client);
    mongoc_cleanup();
    return ok ? 0 : 1;
  }
  if (argc != 4) {
    fprintf(stderr, "usage: history_bench <query port> <query port without snapshots> <db> | history_bench --drop <database>\n");
    return 2;
  }
  int port = atoi(argv[1]), port_full = atoi(argv[2]);
  const char *uri = getenv("MONGO_URI") ? getenv("MONGO_URI") : "mongodb://127.0.0.1:27017";
  const char *pg_uri = getenv("FERRETDB_PG_URI");
  long n_events = getenv("BENCH_EVENTS") ? atol(getenv("BENCH_EVENTS")) : 100000;
  long days = getenv("BENCH_DAYS") ? atol(getenv("BENCH_DAYS")) : 1;
  int reps = getenv("BENCH_REPS") ? atoi(getenv("BENCH_REPS")) : 100;
  int every = getenv("SNAPSHOT_EVERY") ? atoi(getenv("SNAPSHOT_EVERY")) : CQRS_SNAPSHOT_EVERY_DEFAULT;
  if (days < 1) days = 1;
  char db[128];
  snprintf(db, sizeof db, "%s_default", argv[3]);
  mongoc_init();
  curl_global_init(CURL_GLOBAL_DEFAULT);
  mongoc_client_t *client = mongoc_client_new(uri);
  mongoc_collection_t *history = mongoc_client_get_collection(client, db, "event_history");
  mongoc_collection_t *snapshots = mongoc_client_get_collection(client, db, CQRS_SNAPSHOTS);
  mongoc_collection_t *orders = mongoc_client_get_collection(client, db, "order_summaries");
  PGconn *pg = NULL;
  cqrs_error_t err = {0};
  if (pg_uri && !(pg = cqrs_ferretdb_pg_connect(pg_uri, "history_bench", 5000, 0, &err))) {
    fprintf(stderr, "PostgreSQL: %s\n", err.message);
    return 1;
  }
  static const char *const hist_gin[] = {"_id", CQRS_HISTORY_AGGREGATE_ID, CQRS_HISTORY_TYPE};
  static const char *const snap_gin[] = {"_id", CQRS_SNAPSHOT_AGGREGATE_ID};
  static const char *const order_gin[] = {"_id", "userId", "status"};
  indexes(client, db, &cqrs_event_history_projection, pg, hist_gin, 3);
  indexes(client, db, &cqrs_snapshots_projection, pg, snap_gin, 2);
  indexes(client, db, &cqrs_order_summaries_projection, pg, order_gin, 3);

  static const int64_t sizes[] = {10, 1000, 10000};
  char ids[3][64];
  long n_snaps[3];
  double t0 = now_s();
  for (int s = 0; s < 3; s++) {
    snprintf(ids[s], sizeof ids[s], "bench-order-%lld", (long long)sizes[s]);
    if (!load_order(history, snapshots, orders, ids[s], sizes[s], 1000, every, &n_snaps[s])) return 1;
  }
  double t_orders = now_s() - t0;
  /* events of one type spread over the days */
  enum { CHUNK = 1000 };
  cqrs_event_t *evs = calloc(CHUNK, sizeof *evs);
  bson_t *data = calloc(CHUNK, sizeof *data);
  char(*eids)[3][CQRS_UUID_LEN] = calloc(CHUNK, sizeof *eids);
  char(*times)[32] = calloc(CHUNK, sizeof *times);
  char(*oids)[48] = calloc(CHUNK, sizeof *oids);
  int64_t step = days * 86400000 / (n_events > 0 ? n_events : 1);
  t0 = now_s();
  for (long a = 0; a < n_events; a += CHUNK) {
    size_t k = (size_t)(n_events - a < CHUNK ? n_events - a : CHUNK);
    for (size_t i = 0; i < k; i++) {
      snprintf(oids[i], sizeof oids[i], "spread-%ld", a + (long)i);
      /* version 2: an OrderStatusUpdated at BASE + (a + i) * step */
      gen_order_event(oids[i], 2, BASE_MS + (a + (int64_t)i) * step - 1000, 1000, eids[i], times[i], &data[i],
                      &evs[i]);
    }
    bool ok = gen_insert(history, &cqrs_event_history_projection, evs, k);
    for (size_t i = 0; i < k; i++) bson_destroy(&data[i]);
    if (!ok) return 1;
  }
  double t_spread = now_s() - t0;
  free(oids);
  free(evs), free(data), free(eids), free(times);
  printf("loaded: the three orders' %lld events and %ld + %ld + %ld snapshots (every %d) in %.1f s; %ld events over %ld "
         "day(s) in %.1f s (%.0f events/s)\n\n",
         (long long)(sizes[0] + sizes[1] + sizes[2]), n_snaps[0], n_snaps[1], n_snaps[2], every, t_orders, n_events,
         days, t_spread, t_spread > 0 ? (double)n_events / t_spread : 0);

  CURL *c = curl_easy_init();
  char url[512];
  printf("| events of the order | point read p50 / p99 ms | history page (50) | asOf after the last event | atVersion "
         "n/2 (a snapshot's) | atVersion n/2 + %d (%d events after one) |\n|---|---|---|---|---|---|\n",
         every - 1, every - 1);
  for (int s = 0; s < 3; s++) {
    int n = sizes[s] >= 10000 ? (reps < 20 ? reps : 20) : reps;
    char cells[5][64];
    order_row(c, port, ids[s], sizes[s], every, 0, n, cells);
    printf("| %lld (%d requests each) | %s | %s | %s | %s | %s |\n", (long long)sizes[s], n, cells[0], cells[1],
           cells[2], cells[3], cells[4]);
  }
  printf("\nthe same travels through the query-svc without snapshots (SNAPSHOT_EVERY=0: from the beginning):\n\n"
         "| events of the order | asOf after the last event | atVersion n/2 | atVersion n/2 + %d |\n|---|---|---|---|\n",
         every - 1);
  for (int s = 0; s < 3; s++) {
    int n = sizes[s] >= 1000 ? (reps < 3 ? reps : 3) : reps; /* seconds each: the anchor, not the subject */
    char cells[5][64];
    order_row(c, port_full, ids[s], sizes[s], every, 2, n, cells);
    printf("| %lld (%d requests each) | %s | %s | %s |\n", (long long)sizes[s], n, cells[2], cells[3], cells[4]);
  }
  double p50, p99;
  /* 12:00 to 13:00 of the first day: about n_events / (24 days) events, first page of 50 */
  snprintf(url, sizeof url,
           "http://127.0.0.1:%d/v1/events?type=%s&from=2026-03-01T12:00:00Z&to=2026-03-01T13:00:00Z&limit=50", port,
           cqrs_order_status_updated_event.name);
  if (!measure(c, url, reps, &p50, &p99)) return 1;
  printf("\nevents by type, one-hour window (about %ld events) among %ld events over %ld day(s), first page of 50: "
         "p50 %.1f ms, p99 %.1f ms (%d requests)\n",
         n_events / (24 * days), n_events, days, p50, p99, reps);
  curl_easy_cleanup(c);
  if (pg) PQfinish(pg);
  mongoc_collection_destroy(history);
  mongoc_collection_destroy(snapshots);
  mongoc_collection_destroy(orders);
  mongoc_client_destroy(client);
  mongoc_cleanup();
  return 0;
}
