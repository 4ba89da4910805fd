/* Replay benchmark (issue 11; tests/bench/replay_run.sh starts the services):
 *   replay_bench load <events> [<per user>]  puts <events> UserCreated events straight on
 *                                         TOPIC_PREFIX + "events" (tenant "default"), or
 *                                         users of <per user> events each (then
 *                                         UserProfileUpdated): histories for snapshots
 *   replay_bench run <admin port> <query port> <events> <projector-svc's start, ms since the epoch>
 *                                         waits until the live projector has applied them
 *                                         (its rate), replays user_profiles from the
 *                                         beginning through admin-svc (its rate, the swap's
 *                                         duration) while a reader asks query-svc for
 *                                         documents throughout (errors, missing documents).
 * Prints one line per figure. Not a test: no assertion, the numbers go to BENCHMARKS.md. */
#include "cqrs/config.h"
#include "cqrs/event.h"
#include "cqrs/events.h"
#include "cqrs/json.h"
#include "cqrs/kafka.h"
#include "cqrs/tenant.h"
#include "cqrs/util.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define USER_ID_FMT "bench-%d"

/* Puts n events on the log: per users of `per` events each, a UserCreated
 * then UserProfileUpdated (per 1: n users, one UserCreated each). */
static int load(int n, int per) {
  cqrs_config_t cfg;
  cqrs_error_t err = {0};
  cqrs_log_t log = {"replay_bench", CQRS_LOG_WARN};
  if (!cqrs_config_load(&cfg, environ, 0, &err)) {
    fprintf(stderr, "configuration: %s\n", err.message);
    return 2;
  }
  rd_kafka_t *p = cqrs_kafka_producer_new(&cfg, &log, NULL, NULL, &err, "linger.ms", "20", NULL);
  int partitions;
  if (!p || !cqrs_kafka_topics_ensure(p, &cfg, 15000, &partitions, &err)) {
    fprintf(stderr, "Kafka: %s\n", err.message);
    return 1;
  }
  char *topic = cqrs_config_topic(&cfg, CQRS_TOPIC_EVENTS);
  if (per < 1) per = 1;
  for (int i = 0; i < n; i++) {
    char id[64], ev_id[96], email[128], name[32];
    int version = i % per + 1;
    snprintf(id, sizeof id, USER_ID_FMT, i / per);
    snprintf(ev_id, sizeof ev_id, "%s%d", cfg.topic_prefix, i);
    snprintf(email, sizeof email, "%s@example.com", id);
    snprintf(name, sizeof name, "Bench %d", version);
    const cqrs_event_type_t *type = version == 1 ? &cqrs_user_created_event : &cqrs_user_profile_updated_event;
    cqrs_event_data_t d;
    memset(&d, 0, sizeof d);
    if (version == 1)
      d.user_created = (cqrs_user_created_t){.user_id = id, .email = email, .name = "Bench",
                                             .created_at = "2026-03-01T10:00:00.000Z"};
    else
      d.user_profile_updated = (cqrs_user_profile_updated_t){.user_id = id, .changes = {.name = name},
                                                             .updated_at = "2026-03-01T10:00:00.000Z"};
    bson_t doc = BSON_INITIALIZER;
    type->encode(&d, &doc);
    cqrs_event_t ev = {.id = ev_id, .type = (char *)type->name, .source = "/bench",
                       .aggregate_type = (char *)type->aggregate_type, .aggregate_id = id,
                       .time = "2026-03-01T10:00:00.000Z", .tenant = CQRS_TENANT_DEFAULT, .version = version,
                       .schema_version = type->version, .data = &doc};
    cqrs_header_t hdrs[CQRS_EVENT_MAX_HEADERS];
    char version_buf[24];
    size_t nh = cqrs_event_to_headers(&ev, hdrs, version_buf);
    char *json = cqrs_json_write(&doc, NULL);
    char *key = cqrs_tenant_key(CQRS_TENANT_DEFAULT, id);
    rd_kafka_resp_err_t e;
    while ((e = rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                                  RD_KAFKA_V_VALUE(json, strlen(json)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_HEADERS(cqrs_kafka_headers_new(hdrs, nh)), RD_KAFKA_V_END)) ==
           RD_KAFKA_RESP_ERR__QUEUE_FULL)
      rd_kafka_poll(p, 100);
    free(key);
    bson_free(json);
    bson_destroy(&doc);
    if (e) {
      fprintf(stderr, "produce: %s\n", rd_kafka_err2str(e));
      return 1;
    }
  }
  int rc = rd_kafka_flush(p, 60000) ? 1 : 0;
  rd_kafka_destroy(p);
  free(topic);
  cqrs_config_cleanup(&cfg);
  printf("loaded %d events\n", n);
  return rc;
}

/* ---- HTTP ---- */

typedef struct {
  char *buf;
  size_t len;
} body_t;

static size_t collect(char *p, size_t size, size_t n, void *ctx) {
  body_t *b = ctx;
  b->buf = realloc(b->buf, b->len + size * n + 1);
  memcpy(b->buf + b->len, p, size * n);
  b->len += size * n;
  b->buf[b->len] = '\0';
  return size * n;
}

/* One request; the status (0: no answer), the body into *out (free it; may be NULL). */
static long http(CURL *c, const char *method, int port, const char *path, const char *body, char **out) {
  char url[512];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
  body_t b = {0};
  curl_easy_reset(c);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
  if (body) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  long status = 0;
  if (curl_easy_perform(c) != CURLE_OK || curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK) status = 0;
  if (out)
    *out = b.buf;
  else
    free(b.buf);
  return status;
}

static int64_t json_int(const char *json, const char *key) {
  bson_t *doc = json ? cqrs_json_parse(json, strlen(json), NULL) : NULL;
  bson_iter_t it;
  int64_t v = doc && bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_int64(&it) : -1;
  if (doc) bson_destroy(doc);
  return v;
}

static void json_str(const char *json, const char *key, char *out, size_t n) {
  bson_t *doc = json ? cqrs_json_parse(json, strlen(json), NULL) : NULL;
  bson_iter_t it;
  bool found = doc && bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it);
  snprintf(out, n, "%s", found ? bson_iter_utf8(&it, NULL) : "");
  if (doc) bson_destroy(doc);
}

/* eventsApplied of projection p in a GET /v1/admin/projections answer; -1 when absent. */
static int64_t events_applied(const char *json, const char *p) {
  bson_t *doc = json ? cqrs_json_parse(json, strlen(json), NULL) : NULL;
  bson_iter_t it, items, f;
  int64_t v = -1;
  if (doc && bson_iter_init_find(&it, doc, "items") && bson_iter_recurse(&it, &items))
    while (v < 0 && bson_iter_next(&items)) {
      bson_iter_t item;
      if (!bson_iter_recurse(&items, &item) || !bson_iter_find(&item, "projection") ||
          strcmp(bson_iter_utf8(&item, NULL), p) != 0)
        continue;
      if (bson_iter_recurse(&items, &f) && bson_iter_find(&f, "eventsApplied")) v = bson_iter_as_int64(&f);
    }
  if (doc) bson_destroy(doc);
  return v;
}

/* ---- the reader during the replay ---- */

static atomic_bool reader_stop;
static atomic_long reads, read_errors, read_missing;
static int query_port, n_events;

static void *reader(void *arg) {
  (void)arg;
  CURL *c = curl_easy_init();
  for (unsigned i = 0; !atomic_load(&reader_stop); i++) {
    char path[128];
    snprintf(path, sizeof path, "/v1/users/" USER_ID_FMT, (int)((i * 7919u) % (unsigned)n_events));
    long s = http(c, "GET", query_port, path, NULL, NULL);
    atomic_fetch_add(&reads, 1);
    if (s == 404) atomic_fetch_add(&read_missing, 1);
    else if (s != 200) atomic_fetch_add(&read_errors, 1);
  }
  curl_easy_cleanup(c);
  return NULL;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* started_ms: when projector-svc was started (ms since the epoch), the live rate's start. */
static int run(int admin_port, int qport, int n, int64_t started_ms) {
  query_port = qport;
  n_events = n;
  CURL *c = curl_easy_init();
  /* the live rate: from projector-svc's start (its start-up included) to its report of the last event */
  int64_t t0 = started_ms, t_end = 0;
  for (;;) {
    char *b = NULL;
    http(c, "GET", admin_port, "/v1/admin/projections", NULL, &b);
    int64_t applied = events_applied(b, "user_profiles");
    free(b);
    if (applied >= n) {
      t_end = now_ms();
      break;
    }
    usleep(100 * 1000);
  }
  double live_s = (double)(t_end - t0) / 1000.0;
  printf("live projector: %d events in %.1f s (from its start, start-up included, to the report of the last;"
         " reports every 2 s): %.0f events/s\n",
         n,
         live_s, live_s > 0 ? n / live_s : 0);

  pthread_t th;
  pthread_create(&th, NULL, reader, NULL);
  char *b = NULL;
  http(c, "POST", admin_port, "/v1/admin/replays",
       "{\"projection\":\"user_profiles\",\"from\":\"beginning\",\"dryRun\":false}", &b);
  char id[64];
  json_str(b, "replayId", id, sizeof id);
  free(b);
  if (!id[0]) {
    fprintf(stderr, "the replay did not start\n");
    return 1;
  }
  char path[128], state[32] = "";
  snprintf(path, sizeof path, "/v1/admin/replays/%s", id);
  int64_t started = cqrs_time_monotonic_ms(), swap_at = 0, done_at = 0;
  for (;;) {
    http(c, "GET", admin_port, path, NULL, &b);
    json_str(b, "state", state, sizeof state);
    if (!swap_at && strcmp(state, "swapping") == 0) swap_at = cqrs_time_monotonic_ms();
    if (!strcmp(state, "completed") || !strcmp(state, "failed") || !strcmp(state, "cancelled")) {
      done_at = cqrs_time_monotonic_ms();
      if (!swap_at) swap_at = done_at;
      printf("replay %s: %s; applied %lld, reported rate at its last report %.0f events/s\n", id, state,
             (long long)json_int(b, "applied"), (double)json_int(b, "rate"));
      free(b);
      break;
    }
    free(b);
    usleep(50 * 1000);
  }
  atomic_store(&reader_stop, true);
  pthread_join(th, NULL);
  double replay_s = (double)(swap_at - started) / 1000.0;
  printf("replay: %d events in %.1f s (request to swap): %.0f events/s; live/replay %.2f\n", n, replay_s,
         replay_s > 0 ? n / replay_s : 0, replay_s > 0 && live_s > 0 ? (n / live_s) / (n / replay_s) : 0);
  printf("swap (swapping to completed: alias swap, handoff from the live projector, old collection dropped): "
         "%.1f s\n",
         (double)(done_at - swap_at) / 1000.0);
  printf("reads during the replay: %ld, errors %ld, missing documents %ld\n", atomic_load(&reads),
         atomic_load(&read_errors), atomic_load(&read_missing));
  curl_easy_cleanup(c);
  return 0;
}

int main(int argc, char **argv) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if ((argc == 3 || argc == 4) && strcmp(argv[1], "load") == 0) return load(atoi(argv[2]), argc == 4 ? atoi(argv[3]) : 1);
  if (argc == 6 && strcmp(argv[1], "run") == 0)
    return run(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), strtoll(argv[5], NULL, 10));
  fprintf(stderr, "usage: replay_bench load <events> [<events per user>] | run <admin port> <query port> <events> <projector start ms>\n");
  return 2;
}
