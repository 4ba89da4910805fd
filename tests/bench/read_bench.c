/* Read-side benchmark driver (not a test): the pieces tests/bench/read_run.sh
 * puts next to each other. Every rate here is measured against a raw baseline
 * in the same run by the script; this program only measures.
 *
 *   read_bench seed-events <brokers> <prefix> <count> <idfile>
 *       <count> UserCreated events onto <prefix>events, CloudEvents binary
 *       mode exactly as command-svc writes them; their ids into <idfile>
 *   read_bench raw-write <mongo-uri> <db> <collection> <idfile> <chunk>
 *       the user_profiles documents of those ids, written as the projector
 *       writes them (ordered bulk update_one, upsert, $setOnInsert) in bulk
 *       commands of <chunk> updates (0: all in one bulk operation)
 *   read_bench wait-applied <projector-port> <count> <timeout-s>
 *       polls projector-svc's /metrics until user_profiles applied <count>
 *   read_bench raw-find <mongo-uri> <db> <collection> <idfile> <threads> <seconds>
 *       find by _id of random ids, one client (from a pool) per thread
 *   read_bench visible <command-port> <query-port> <rate> <seconds>
 *       CreateUser over HTTP at a fixed rate, each then read back from
 *       query-svc with minVersion=1&waitMs=10000; send-to-visible latency */
#include "cqrs/config.h"
#include "cqrs/event.h"
#include "cqrs/json.h"
#include "cqrs/kafka.h"
#include "cqrs/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <mongoc/mongoc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static cqrs_log_t quiet = {"read-bench", CQRS_LOG_WARN};

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_until_us(int64_t t) {
  for (int64_t d; (d = t - now_us()) > 0;) {
    struct timespec ts = {(time_t)(d / 1000000), (long)(d % 1000000) * 1000};
    nanosleep(&ts, NULL);
  }
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* q-quantile of sorted v[0..n), in ms. */
static double pct_ms(const int64_t *v, size_t n, double q) {
  if (n == 0) return -1;
  size_t i = (size_t)(q * (double)n);
  return (double)v[i < n ? i : n - 1] / 1000.0;
}

/* ---- ids ---- */

typedef struct {
  char (*id)[CQRS_UUID_LEN];
  size_t n;
} ids_t;

static ids_t read_ids(const char *path) {
  ids_t ids = {0};
  FILE *f = fopen(path, "r");
  if (!f) {
    perror(path);
    exit(2);
  }
  size_t cap = 1024;
  ids.id = malloc(cap * sizeof *ids.id);
  char line[128];
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = 0;
    if (strlen(line) != CQRS_UUID_LEN - 1) continue;
    if (ids.n == cap) ids.id = realloc(ids.id, (cap *= 2) * sizeof *ids.id);
    memcpy(ids.id[ids.n++], line, CQRS_UUID_LEN);
  }
  fclose(f);
  if (ids.n == 0) {
    fprintf(stderr, "%s: no ids\n", path);
    exit(2);
  }
  return ids;
}

/* The user of index i: the same fields in the event and in the raw write. */
static void user_fields(size_t i, char email[64], char name[64]) {
  snprintf(email, 64, "reader%zu@example.com", i);
  snprintf(name, 64, "Read Bench User %zu", i);
}

/* ---- seed-events ---- */

static int seed_events(const char *brokers, const char *prefix, long count, const char *idpath) {
  char b[512], p[256];
  snprintf(b, sizeof b, "KAFKA_BROKERS=%s", brokers);
  snprintf(p, sizeof p, "TOPIC_PREFIX=%s", prefix);
  char *envp[] = {b, p, NULL};
  cqrs_config_t cfg;
  cqrs_error_t err;
  if (!cqrs_config_load(&cfg, envp, 0, &err)) {
    fprintf(stderr, "config: %s\n", err.message);
    return 2;
  }
  rd_kafka_conf_t *conf = cqrs_kafka_conf_new(&cfg, &quiet, &err, "linger.ms", "5", "enable.idempotence", "true", NULL);
  rd_kafka_t *prod = conf ? cqrs_kafka_new(RD_KAFKA_PRODUCER, conf, &err) : NULL;
  int parts;
  if (!prod || !cqrs_kafka_topics_ensure(prod, &cfg, 15000, &parts, &err)) {
    fprintf(stderr, "kafka: %s\n", err.message);
    return 2;
  }
  char *t_events = cqrs_config_topic(&cfg, CQRS_TOPIC_EVENTS);
  FILE *ids = fopen(idpath, "w");
  if (!ids) {
    perror(idpath);
    return 2;
  }
  int64_t t0 = cqrs_time_monotonic_ms();
  for (long i = 0; i < count; i++) {
    char name_key[300], id[CQRS_UUID_LEN], ev_id[CQRS_UUID_LEN], cid[320], now[32], email[64], name[64];
    snprintf(name_key, sizeof name_key, "%sreader-%ld", prefix, i);
    cqrs_uuid_from_name(name_key, id);
    cqrs_uuid_random(ev_id);
    snprintf(cid, sizeof cid, "read-bench-%s", name_key);
    cqrs_time_now_rfc3339(now);
    user_fields((size_t)i, email, name);
    /* The event command-svc's user decider makes of a CreateUser. */
    bson_t data = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&data, "userId", id);
    BSON_APPEND_UTF8(&data, "email", email);
    BSON_APPEND_UTF8(&data, "name", name);
    BSON_APPEND_UTF8(&data, "createdAt", now);
    cqrs_event_t ev = {.id = ev_id, .type = "UserCreated", .source = "command-svc", .aggregate_type = "user",
                       .aggregate_id = id, .time = now, .correlation_id = cid, .causation_id = cid,
                       .version = 1, .data = &data};
    cqrs_header_t hdrs[CQRS_EVENT_MAX_HEADERS];
    char version[24];
    size_t nh = cqrs_event_to_headers(&ev, hdrs, version);
    size_t len;
    char *value = cqrs_json_write(&data, &len);
    for (;;) {
      rd_kafka_headers_t *h = cqrs_kafka_headers_new(hdrs, nh);
      rd_kafka_resp_err_t e = rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(t_events), RD_KAFKA_V_KEY(id, strlen(id)),
                                                RD_KAFKA_V_VALUE(value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                                RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
      if (!e) break;
      rd_kafka_headers_destroy(h);
      if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        fprintf(stderr, "produce: %s\n", rd_kafka_err2str(e));
        return 2;
      }
      rd_kafka_poll(prod, 10);
    }
    rd_kafka_poll(prod, 0);
    bson_free(value);
    bson_destroy(&data);
    fprintf(ids, "%s\n", id);
  }
  fclose(ids);
  if (rd_kafka_flush(prod, 60000)) {
    fprintf(stderr, "flush timed out\n");
    return 2;
  }
  printf("seed-events events=%ld partitions=%d seconds=%.2f\n", count, parts,
         (double)(cqrs_time_monotonic_ms() - t0) / 1000.0);
  rd_kafka_destroy(prod);
  free(t_events);
  cqrs_config_cleanup(&cfg);
  return 0;
}

/* ---- raw-write ---- */

static mongoc_client_pool_t *pool_new(const char *uri_s, int max) {
  mongoc_init();
  mongoc_log_set_handler(NULL, NULL); /* FerretDB has no endSessions: libmongoc warns at every pool end */
  bson_error_t e;
  mongoc_uri_t *uri = mongoc_uri_new_with_error(uri_s, &e);
  if (!uri) {
    fprintf(stderr, "uri: %s\n", e.message);
    exit(2);
  }
  if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 5000);
  mongoc_client_pool_t *pool = mongoc_client_pool_new(uri);
  mongoc_uri_destroy(uri);
  mongoc_client_pool_set_error_api(pool, MONGOC_ERROR_API_VERSION_2);
  mongoc_client_pool_max_size(pool, (uint32_t)max);
  return pool;
}

static int raw_write(const char *uri, const char *db, const char *coll_name, const char *idpath, long chunk) {
  ids_t ids = read_ids(idpath);
  mongoc_client_pool_t *pool = pool_new(uri, 1);
  mongoc_client_t *client = mongoc_client_pool_pop(pool);
  mongoc_collection_t *coll = mongoc_client_get_collection(client, db, coll_name);
  size_t per = chunk > 0 ? (size_t)chunk : ids.n, commands = 0;
  char now[32];
  cqrs_time_now_rfc3339(now);
  bson_error_t error;
  bool ok = true;
  int64_t t0 = now_us();
  for (size_t off = 0; ok && off < ids.n; off += per) {
    bson_t opts = BSON_INITIALIZER;
    BSON_APPEND_BOOL(&opts, "ordered", true);
    mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(coll, &opts);
    bson_destroy(&opts);
    for (size_t i = off; i < ids.n && i < off + per; i++) {
      char email[64], name[64];
      user_fields(i, email, name);
      bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, set, *o = bson_new();
      BSON_APPEND_UTF8(&filter, "_id", ids.id[i]);
      BSON_APPEND_DOCUMENT_BEGIN(&update, "$setOnInsert", &set);
      BSON_APPEND_UTF8(&set, "userId", ids.id[i]);
      BSON_APPEND_UTF8(&set, "email", email);
      BSON_APPEND_UTF8(&set, "name", name);
      BSON_APPEND_UTF8(&set, "createdAt", now);
      BSON_APPEND_UTF8(&set, "updatedAt", now);
      BSON_APPEND_INT64(&set, "version", 1);
      bson_append_document_end(&update, &set);
      BSON_APPEND_BOOL(o, "upsert", true);
      mongoc_bulk_operation_update_one_with_opts(bulk, &filter, &update, o, &error);
      bson_destroy(o);
      bson_destroy(&filter);
      bson_destroy(&update);
    }
    bson_t reply;
    ok = mongoc_bulk_operation_execute(bulk, &reply, &error) != 0;
    bson_destroy(&reply);
    mongoc_bulk_operation_destroy(bulk);
    commands++;
  }
  double secs = (double)(now_us() - t0) / 1e6;
  bson_t all = BSON_INITIALIZER;
  int64_t count = ok ? mongoc_collection_count_documents(coll, &all, NULL, NULL, NULL, &error) : -1;
  printf("raw-write docs=%zu chunk=%s%zu bulk_commands=%zu ok=%s seconds=%.2f docs_per_s=%.0f count=%lld%s%s\n",
         ids.n, chunk > 0 ? "" : "all:", per, commands, ok ? "yes" : "no", secs, ok ? (double)ids.n / secs : 0.0,
         (long long)count, ok ? "" : " error=", ok ? "" : error.message);
  mongoc_collection_destroy(coll);
  mongoc_client_pool_push(pool, client);
  mongoc_client_pool_destroy(pool);
  return ok ? 0 : 1;
}

/* ---- a minimal loopback HTTP/1.1 client (one connection per request) ---- */

typedef struct {
  int status;
  char *body; /* NUL-terminated, may be NULL */
  bool stale; /* X-Stale: true */
} http_resp_t;

static bool http_do(int port, const char *method, const char *path, const char *body, int timeout_ms,
                    http_resp_t *r) {
  memset(r, 0, sizeof *r);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return false;
  }
  char req[1024];
  int n;
  if (body) n = snprintf(req, sizeof req,
                         "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\nContent-Type: "
                         "application/json\r\nContent-Length: %zu\r\n\r\n%s",
                         method, path, port, strlen(body), body);
  else n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", method,
                    path, port);
  if (n < 0 || (size_t)n >= sizeof req || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
    close(fd);
    return false;
  }
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (cap - len < 1024) buf = realloc(buf, cap *= 2);
    ssize_t got = recv(fd, buf + len, cap - len - 1, 0);
    if (got <= 0) break;
    len += (size_t)got;
  }
  close(fd);
  buf[len] = 0;
  char *hdr_end = strstr(buf, "\r\n\r\n");
  if (len < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || !hdr_end) {
    free(buf);
    return false;
  }
  r->status = atoi(buf + 9);
  *hdr_end = 0;
  for (char *h = strstr(buf, "\r\n"); h; h = strstr(h + 2, "\r\n"))
    if (strncasecmp(h + 2, "X-Stale:", 8) == 0) r->stale = true;
  memmove(buf, hdr_end + 4, len - (size_t)(hdr_end + 4 - buf) + 1);
  r->body = buf;
  return true;
}

/* ---- wait-applied ---- */

static double applied_count(int port) {
  http_resp_t r;
  double v = -1;
  if (!http_do(port, "GET", "/metrics", NULL, 2000, &r)) return -1;
  const char *key = "events_applied_total{projection=\"user_profiles\"}";
  char *p = r.body ? strstr(r.body, key) : NULL;
  v = p ? strtod(p + strlen(key), NULL) : 0;
  free(r.body);
  return v;
}

static int wait_applied(int port, long count, int timeout_s) {
  int64_t t0 = now_us(), t_first = 0, deadline = t0 + (int64_t)timeout_s * 1000000;
  double first = 0, v = 0;
  while (now_us() < deadline) {
    v = applied_count(port);
    int64_t t = now_us();
    if (v > 0 && !t_first) t_first = t, first = v;
    if (v >= (double)count) {
      double total = (double)(t - t0) / 1e6, window = (double)(t - t_first) / 1e6;
      printf("projector applied=%.0f since_start_s=%.2f first_applied_after_s=%.2f first_sample=%.0f "
             "apply_window_s=%.2f events_per_s=%.0f events_per_s_since_start=%.0f\n",
             v, total, (double)(t_first - t0) / 1e6, first, window,
             window > 0 ? ((double)count - first) / window : 0.0, (double)count / total);
      return 0;
    }
    usleep(20000);
  }
  printf("projector applied=%.0f of %ld: timed out after %d s\n", v, count, timeout_s);
  return 1;
}

/* ---- raw-find ---- */

typedef struct {
  mongoc_client_pool_t *pool;
  const char *db, *coll;
  const ids_t *ids;
  int64_t end_us;
  unsigned seed;
  int64_t *lat;
  size_t n, cap;
  long errors, missing;
} finder_t;

static void *finder_main(void *arg) {
  finder_t *f = arg;
  mongoc_client_t *client = mongoc_client_pool_pop(f->pool);
  mongoc_collection_t *coll = mongoc_client_get_collection(client, f->db, f->coll);
  /* The options query-svc's single reads use (routes/common.c). */
  bson_t opts = BSON_INITIALIZER, proj;
  BSON_APPEND_INT64(&opts, "limit", 1);
  BSON_APPEND_BOOL(&opts, "singleBatch", true);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, "_id", 0);
  bson_append_document_end(&opts, &proj);
  while (now_us() < f->end_us) {
    bson_t filter = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&filter, "_id", f->ids->id[(size_t)rand_r(&f->seed) % f->ids->n]);
    int64_t t = now_us();
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    const bson_t *doc;
    bson_error_t e;
    bool found = mongoc_cursor_next(cur, &doc);
    if (!found && mongoc_cursor_error(cur, &e)) f->errors++;
    else if (!found) f->missing++;
    mongoc_cursor_destroy(cur);
    bson_destroy(&filter);
    if (f->n == f->cap) f->lat = realloc(f->lat, (f->cap = f->cap ? f->cap * 2 : 4096) * sizeof *f->lat);
    f->lat[f->n++] = now_us() - t;
  }
  bson_destroy(&opts);
  mongoc_collection_destroy(coll);
  mongoc_client_pool_push(f->pool, client);
  return NULL;
}

static int raw_find(const char *uri, const char *db, const char *coll, const char *idpath, int threads, int seconds) {
  ids_t ids = read_ids(idpath);
  mongoc_client_pool_t *pool = pool_new(uri, threads);
  finder_t *f = calloc((size_t)threads, sizeof *f);
  pthread_t *th = calloc((size_t)threads, sizeof *th);
  int64_t t0 = now_us();
  for (int i = 0; i < threads; i++) {
    f[i] = (finder_t){.pool = pool, .db = db, .coll = coll, .ids = &ids, .end_us = t0 + (int64_t)seconds * 1000000,
                      .seed = (unsigned)(t0 + i * 7919)};
    pthread_create(&th[i], NULL, finder_main, &f[i]);
  }
  size_t total = 0;
  long errors = 0, missing = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(th[i], NULL);
    total += f[i].n;
    errors += f[i].errors;
    missing += f[i].missing;
  }
  double secs = (double)(now_us() - t0) / 1e6;
  int64_t *all = malloc((total ? total : 1) * sizeof *all);
  for (size_t i = 0, k = 0; i < (size_t)threads; k += f[i].n, i++) {
    if (f[i].n) memcpy(all + k, f[i].lat, f[i].n * sizeof *all);
    free(f[i].lat);
  }
  qsort(all, total, sizeof *all, cmp_i64);
  printf("raw-find threads=%d seconds=%.2f requests=%zu requests_per_s=%.0f p50_ms=%.2f p99_ms=%.2f errors=%ld "
         "missing=%ld\n",
         threads, secs, total, (double)total / secs, pct_ms(all, total, 0.50), pct_ms(all, total, 0.99), errors,
         missing);
  free(all);
  free(f);
  free(th);
  mongoc_client_pool_destroy(pool);
  return errors ? 1 : 0;
}

/* ---- visible ---- */

typedef struct {
  int cmd_port, query_port;
  long total;
  int64_t t0, interval_us;
  char run[16];
  atomic_long next;
  int64_t *ack_us, *vis_us, *lag_us; /* per command; -1 when it failed */
  atomic_long failed_cmd, read_no_answer, read_status, stale;
} visible_t;

static void *visible_main(void *arg) {
  visible_t *v = arg;
  for (long i; (i = atomic_fetch_add(&v->next, 1)) < v->total;) {
    int64_t due = v->t0 + i * v->interval_us;
    sleep_until_us(due);
    char cid[96], id[CQRS_UUID_LEN], body[512], path[160];
    snprintf(cid, sizeof cid, "visible-%s-%ld", v->run, i);
    cqrs_uuid_from_name(cid, id);
    snprintf(body, sizeof body,
             "{\"commandType\":\"CreateUser\",\"commandId\":\"%s\",\"aggregateId\":\"%s\",\"email\":"
             "\"visible%ld@example.com\",\"name\":\"Visible User %ld\"}",
             cid, id, i, i);
    int64_t sent = now_us();
    v->lag_us[i] = sent - due;
    v->ack_us[i] = v->vis_us[i] = -1;
    http_resp_t r;
    bool ok = http_do(v->cmd_port, "POST", "/v1/commands", body, 15000, &r) && r.status == 201;
    free(r.body);
    if (!ok) {
      atomic_fetch_add(&v->failed_cmd, 1);
      continue;
    }
    v->ack_us[i] = now_us() - sent;
    snprintf(path, sizeof path, "/v1/users/%s?minVersion=1&waitMs=10000", id);
    bool answered = http_do(v->query_port, "GET", path, NULL, 15000, &r); /* no answer in 15 s: failed */
    ok = answered && r.status == 200 && !r.stale;
    free(r.body);
    if (!ok) {
      atomic_fetch_add(!answered ? &v->read_no_answer : r.status != 200 ? &v->read_status : &v->stale, 1);
      continue;
    }
    v->vis_us[i] = now_us() - sent;
  }
  return NULL;
}

static size_t collect(const int64_t *in, long n, int64_t *out) {
  size_t k = 0;
  for (long i = 0; i < n; i++)
    if (in[i] >= 0) out[k++] = in[i];
  qsort(out, k, sizeof *out, cmp_i64);
  return k;
}

static int visible(int cmd_port, int query_port, int rate, int seconds) {
  /* One thread per command in flight: at 200/s with seconds of latency that
   * is hundreds; small stacks. */
  int workers = rate * seconds < 1000 ? rate * seconds : 1000;
  visible_t *v = calloc(1, sizeof *v);
  v->cmd_port = cmd_port;
  v->query_port = query_port;
  v->total = (long)rate * seconds;
  v->interval_us = 1000000 / rate;
  char rnd[CQRS_UUID_LEN];
  cqrs_uuid_random(rnd);
  snprintf(v->run, sizeof v->run, "%.8s", rnd);
  v->ack_us = calloc((size_t)v->total, sizeof(int64_t));
  v->vis_us = calloc((size_t)v->total, sizeof(int64_t));
  v->lag_us = calloc((size_t)v->total, sizeof(int64_t));
  v->t0 = now_us() + 10000;
  pthread_t *th = calloc((size_t)workers, sizeof *th);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  for (int i = 0; i < workers; i++) pthread_create(&th[i], &attr, visible_main, v);
  for (int i = 0; i < workers; i++) pthread_join(th[i], NULL);
  pthread_attr_destroy(&attr);
  free(th);
  int64_t *s = malloc((size_t)v->total * sizeof *s);
  size_t nv = collect(v->vis_us, v->total, s);
  double vp50 = pct_ms(s, nv, 0.5), vp99 = pct_ms(s, nv, 0.99), vmax = nv ? (double)s[nv - 1] / 1000.0 : -1;
  size_t na = collect(v->ack_us, v->total, s);
  double ap50 = pct_ms(s, na, 0.5), ap99 = pct_ms(s, na, 0.99);
  size_t nl = collect(v->lag_us, v->total, s);
  double lmax = nl ? (double)s[nl - 1] / 1000.0 : -1;
  printf("visible rate=%d seconds=%d commands=%ld accepted=%zu visible=%zu stale=%ld read_no_answer_15s=%ld "
         "read_non200=%ld "
         "p50_ms=%.1f p99_ms=%.1f max_ms=%.1f ack_p50_ms=%.1f ack_p99_ms=%.1f send_lag_max_ms=%.1f\n",
         rate, seconds, v->total, na, nv, atomic_load(&v->stale), atomic_load(&v->read_no_answer),
         atomic_load(&v->read_status), vp50, vp99, vmax,
         ap50, ap99, lmax);
  bool all = (long)nv == v->total;
  free(s);
  free(v->ack_us), free(v->vis_us), free(v->lag_us);
  free(v);
  return all ? 0 : 1;
}

int main(int argc, char **argv) {
  const char *m = argc > 1 ? argv[1] : "";
  if (strcmp(m, "seed-events") == 0 && argc == 6) return seed_events(argv[2], argv[3], atol(argv[4]), argv[5]);
  if (strcmp(m, "raw-write") == 0 && argc == 7) return raw_write(argv[2], argv[3], argv[4], argv[5], atol(argv[6]));
  if (strcmp(m, "wait-applied") == 0 && argc == 5) return wait_applied(atoi(argv[2]), atol(argv[3]), atoi(argv[4]));
  if (strcmp(m, "raw-find") == 0 && argc == 8)
    return raw_find(argv[2], argv[3], argv[4], argv[5], atoi(argv[6]), atoi(argv[7]));
  if (strcmp(m, "visible") == 0 && argc == 6) return visible(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
  fprintf(stderr,
          "usage: %s seed-events <brokers> <prefix> <count> <idfile>\n"
          "       %s raw-write <mongo-uri> <db> <collection> <idfile> <chunk, 0 = all>\n"
          "       %s wait-applied <projector-port> <count> <timeout-s>\n"
          "       %s raw-find <mongo-uri> <db> <collection> <idfile> <threads> <seconds>\n"
          "       %s visible <command-port> <query-port> <rate> <seconds>\n",
          argv[0], argv[0], argv[0], argv[0], argv[0]);
  return 2;
}
