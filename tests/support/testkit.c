/* End-to-end test support: HTTP client, service processes, awaiting. */
#include "testkit.h"

#include "cqrs/json.h"
#include "cqrs/tenant.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

int tk_connect(const char *host, int port, int timeout_ms) {
  struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai = NULL;
  char p[16];
  snprintf(p, sizeof p, "%d", port);
  if (getaddrinfo(host, p, &hints, &ai) != 0 || !ai) return -1;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
    close(fd);
    fd = -1;
  }
  freeaddrinfo(ai);
  return fd;
}

bool tk_port_open(const char *host, int port) {
  int fd = tk_connect(host, port, 0);
  if (fd < 0) return false;
  close(fd);
  return true;
}

bool tk_http(const char *method, int port, const char *path, const char *body, size_t len, tk_response_t *out) {
  return tk_http_headers(method, port, path, "", body, len, out);
}

bool tk_http_headers(const char *method, int port, const char *path, const char *headers, const char *body,
                     size_t len, tk_response_t *out) {
  return tk_http_timeout(method, port, path, headers, body, len, 30000, out);
}

bool tk_http_timeout(const char *method, int port, const char *path, const char *headers, const char *body,
                     size_t len, int timeout_ms, tk_response_t *out) {
  memset(out, 0, sizeof *out);
  int fd = tk_connect("127.0.0.1", port, timeout_ms);
  if (fd < 0) return false;
  static const char fmt[] =
      "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n"
      "%sContent-Length: %zu\r\n\r\n";
  size_t n = (size_t)snprintf(NULL, 0, fmt, method, path, headers, body ? len : 0);
  char *head = malloc(n + 1); /* heads may be large: the limit tests send megabytes */
  snprintf(head, n + 1, fmt, method, path, headers, body ? len : 0);
  /* The server may answer and close before it read everything (413, 414, 431):
   * stop writing then (no SIGPIPE) and read its answer all the same. */
  bool ok = true;
  for (size_t off = 0; ok && off < n;) {
    ssize_t w = send(fd, head + off, n - off, MSG_NOSIGNAL);
    if (w <= 0) break;
    off += (size_t)w;
  }
  free(head);
  for (size_t off = 0; ok && body && off < len;) {
    ssize_t w = send(fd, body + off, len - off, MSG_NOSIGNAL);
    if (w <= 0) break;
    off += (size_t)w;
  }
  size_t cap = 4096, used = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (used + 1 >= cap) buf = realloc(buf, cap *= 2);
    ssize_t r = read(fd, buf + used, cap - used - 1);
    if (r <= 0) break;
    used += (size_t)r;
  }
  close(fd);
  buf[used] = '\0';
  char *sep = strstr(buf, "\r\n\r\n");
  if (!ok || !sep || sscanf(buf, "HTTP/1.%*d %d", &out->status) != 1) {
    free(buf);
    out->status = 0;
    return false;
  }
  out->headers = strndup(buf, (size_t)(sep - buf));
  out->body = strdup(sep + 4);
  out->len = strlen(out->body);
  free(buf);
  return true;
}

void tk_response_cleanup(tk_response_t *r) {
  free(r->body);
  free(r->headers);
  memset(r, 0, sizeof *r);
}

static bson_t *parse(const char *json) { return json ? cqrs_json_parse(json, strlen(json), NULL) : NULL; }

char *tk_json_string(const char *json, const char *key) {
  bson_t *doc = parse(json);
  bson_iter_t it;
  char *s = NULL;
  if (doc && bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it)) s = strdup(bson_iter_utf8(&it, NULL));
  if (doc) bson_destroy(doc);
  return s;
}

int64_t tk_json_int(const char *json, const char *key) {
  bson_t *doc = parse(json);
  bson_iter_t it;
  int64_t v = INT64_MIN;
  if (doc && bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_NUMBER(&it)) v = bson_iter_as_int64(&it);
  if (doc) bson_destroy(doc);
  return v;
}

bool tk_json_is_null(const char *json, const char *key) {
  bson_t *doc = parse(json);
  bson_iter_t it;
  bool v = doc && bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_NULL(&it);
  if (doc) bson_destroy(doc);
  return v;
}

/* True when a socket without SO_REUSEADDR can bind port on every interface,
 * as a service binds it: no listener and no connection holds it. */
static bool bindable(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = INADDR_ANY};
  bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
  if (fd >= 0) close(fd);
  return ok;
}

/* The first port the kernel hands to outgoing connections (32768 unless
 * configured otherwise). */
static int ephemeral_low(void) {
  int low = 32768, high;
  FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
  if (f) {
    if (fscanf(f, "%d %d", &low, &high) != 2) low = 32768;
    fclose(f);
  }
  return low;
}

#define PORT_FLOOR 10000
#define PORTS_KEPT 32 /* ports handed out lately, not handed out again */

/* A port below the ephemeral range: a port the kernel picks (bind to 0) is
 * one outgoing connections use too, and one of them, or its TIME_WAIT after a
 * burst of short connections on this shared machine, can hold it by the time
 * the service binds (EADDRINUSE). */
int tk_free_port(void) {
  static unsigned seed;
  static int recent[PORTS_KEPT];
  static size_t n_recent;
  if (!seed) seed = (unsigned)getpid() ^ (unsigned)now_ms();
  int low = ephemeral_low();
  for (int tries = 0; low > PORT_FLOOR + 1000 && tries < 1000; tries++) {
    int port = PORT_FLOOR + rand_r(&seed) % (low - PORT_FLOOR);
    bool given = false;
    for (size_t i = 0; i < PORTS_KEPT; i++) given |= recent[i] == port;
    if (given || !bindable(port)) continue;
    recent[n_recent++ % PORTS_KEPT] = port;
    return port;
  }
  /* no room below the range: the kernel's pick */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  bind(fd, (struct sockaddr *)&a, sizeof a);
  getsockname(fd, (struct sockaddr *)&a, &len);
  close(fd);
  return ntohs(a.sin_port);
}

/* host:port of the first entry of a list like "h1:9092,h2:9092" or a mongodb URI. */
static bool reachable(const char *what, const char *hostport_list) {
  char host[256] = "127.0.0.1";
  int port = 0;
  const char *s = hostport_list;
  if (strncmp(s, "mongodb://", 10) == 0) {
    s += 10;
    const char *at = strchr(s, '@');
    if (at) s = at + 1;
  }
  if (sscanf(s, "%255[^:/,]:%d", host, &port) < 1) return false;
  if (port == 0) port = strcmp(what, "Kafka") == 0 ? 9092 : 27017;
  int fd = tk_connect(host, port, 3000);
  if (fd >= 0) close(fd);
  return fd >= 0;
}

void tk_env_init(tk_env_t *env) {
  memset(env, 0, sizeof *env);
  const char *b = getenv("KAFKA_BROKERS"), *m = getenv("MONGO_URI");
  snprintf(env->brokers, sizeof env->brokers, "%s", b && *b ? b : "127.0.0.1:9092");
  snprintf(env->mongo_uri, sizeof env->mongo_uri, "%s", m && *m ? m : "mongodb://127.0.0.1:27017");
  if (!reachable("Kafka", env->brokers))
    cr_assert_fail("Kafka is not reachable at %s: start the local stack (make run, or deploy/local/stack.sh start) "
             "or point KAFKA_BROKERS at a broker",
             env->brokers);
  if (!reachable("MongoDB", env->mongo_uri))
    cr_assert_fail("MongoDB is not reachable at %s: start the local stack (make run, or deploy/local/stack.sh start) "
             "or point MONGO_URI at a server",
             env->mongo_uri);
  env->command_port = tk_free_port();
  env->query_port = tk_free_port();
  env->projector_port = tk_free_port();
  env->admin_port = tk_free_port();
  env->saga_port = tk_free_port();
  unsigned tag = (unsigned)getpid() ^ (unsigned)now_ms();
  snprintf(env->prefix, sizeof env->prefix, "e2e%08x.", tag);
  snprintf(env->db, sizeof env->db, "e2e_%08x", tag);
}

const char *tk_tenant_db(const tk_env_t *env, const char *tenant, char out[128]) {
  snprintf(out, 128, "%s_%s", env->db, tenant);
  return out;
}

static const char *names[] = {"command-svc", "projector-svc", "query-svc", "admin-svc", "saga-svc"};

int tk_port(const tk_env_t *env, tk_service_t svc) {
  switch (svc) {
  case TK_COMMAND: return env->command_port;
  case TK_QUERY: return env->query_port;
  case TK_PROJECTOR: return env->projector_port;
  case TK_ADMIN: return env->admin_port;
  case TK_SAGA: return env->saga_port;
  }
  return 0;
}

const char *tk_service_name(tk_service_t svc) { return names[svc]; }

const char *tk_log_path(const tk_env_t *env, tk_service_t svc, char out[512]) {
  snprintf(out, 512, "%s/%s%s.log", CQRS_TEST_LOG_DIR, env->prefix, names[svc]);
  return out;
}

static pid_t spawn(const tk_env_t *env, tk_service_t svc, const char *const *extra, char *const *args,
                   char log[512]) {
  int port = tk_port(env, svc);
  char bin[512];
  snprintf(bin, sizeof bin, "%s/%s", CQRS_BIN_DIR, names[svc]);
  mkdir(CQRS_TEST_LOG_DIR, 0755);
  tk_log_path(env, svc, log);
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a crashed test */
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    setenv("HTTP_PORT", p, 1);
    setenv("KAFKA_BROKERS", env->brokers, 1);
    setenv("MONGO_URI", env->mongo_uri, 1);
    setenv("MONGO_DB", env->db, 1);
    setenv("TOPIC_PREFIX", env->prefix, 1);
    setenv("TOPIC_PARTITIONS", "3", 1);
    setenv("HTTP_THREADS", "2", 1);
    /* Tests that are not about authentication run as tenant "default" without
     * credentials; the auth tests pass AUTH=on and its settings in extra. */
    setenv("AUTH", "off", 1);
    for (const char *const *e = extra; e && *e; e++) putenv(strdup(*e));
    char *argv[16] = {bin};
    for (int i = 0; args && args[i] && i < 14; i++) argv[i + 1] = args[i];
    execv(bin, argv);
    _exit(127);
  }
  cr_assert(pid > 0, "fork failed");
  return pid;
}

pid_t tk_spawn(const tk_env_t *env, tk_service_t svc, const char *const *extra, char log[512]) {
  return spawn(env, svc, extra, NULL, log);
}

int tk_rebuild(const tk_env_t *env, const char *projection) { return tk_rebuild_tenant(env, projection, NULL); }

int tk_rebuild_tenant(const tk_env_t *env, const char *projection, const char *tenant) {
  char proj[64], t[64];
  snprintf(proj, sizeof proj, "%s", projection);
  snprintf(t, sizeof t, "%s", tenant ? tenant : "");
  char *args[] = {"--rebuild", proj, "--from-beginning", tenant ? "--tenant" : NULL, t, NULL};
  return tk_projector_cli(env, args);
}

void tk_ferretdb_url_arg(const char *pg, char *out, size_t cap) {
  const char *max = getenv("FERRETDB_POOL_MAX_CONNS");
  snprintf(out, cap, "--postgresql-url=%s%cpool_max_conns=%s", pg, strchr(pg, '?') ? '&' : '?',
           max && *max ? max : "500");
}

int tk_projector_cli(const tk_env_t *env, char *const *args) {
  char log[512];
  pid_t pid = spawn(env, TK_PROJECTOR, NULL, args, log);
  int status = 0;
  int64_t deadline = now_ms() + 180000;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (now_ms() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      cr_assert_fail("projector-svc %s %s did not finish within 180 s; see %s", args[0], args[1] ? args[1] : "", log);
    }
    pause_ms(50);
  }
  return status;
}

pid_t tk_start(const tk_env_t *env, tk_service_t svc, const char *const *extra) {
  char log[512];
  pid_t pid = tk_spawn(env, svc, extra, log);
  return tk_await_ready(env, svc, pid, log);
}

pid_t tk_await_ready(const tk_env_t *env, tk_service_t svc, pid_t pid, const char *log) {
  int port = tk_port(env, svc);
  int64_t deadline = now_ms() + 60000;
  while (now_ms() < deadline) {
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid)
      cr_assert_fail("%s exited during start (status %d); see %s", names[svc], status, log);
    tk_response_t r;
    bool ok = tk_http("GET", port, "/readyz", NULL, 0, &r) && r.status == 200;
    tk_response_cleanup(&r);
    if (ok) return pid;
    pause_ms(100);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  cr_assert_fail("%s did not become ready within 60 s; see %s", names[svc], log);
  return -1;
}

void tk_start_all(const tk_env_t *env, pid_t pids[3]) {
  pids[TK_COMMAND] = tk_start(env, TK_COMMAND, NULL);
  pids[TK_PROJECTOR] = tk_start(env, TK_PROJECTOR, NULL);
  pids[TK_QUERY] = tk_start(env, TK_QUERY, NULL);
}

void tk_stop_all(pid_t pids[3]) {
  for (int i = 0; i < 3; i++) {
    if (pids[i] > 0) tk_stop(pids[i], SIGTERM);
    pids[i] = 0;
  }
}

int tk_stop(pid_t pid, int sig) {
  int status = 0;
  kill(pid, sig);
  int64_t deadline = now_ms() + 15000;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (now_ms() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    pause_ms(20);
  }
  return status;
}

char *tk_command(const tk_env_t *env, int want, const char *fmt, ...) {
  char json[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(json, sizeof json, fmt, ap);
  va_end(ap);
  tk_response_t r;
  tk_http("POST", env->command_port, "/v1/commands", json, strlen(json), &r);
  cr_assert_eq(r.status, want, "%s answered %d: %s", json, r.status, r.body ? r.body : "");
  char *body = strdup(r.body);
  tk_response_cleanup(&r);
  return body;
}

bool tk_await_get(int port, const char *path, int want, bool (*pred)(const char *body, void *ctx), void *ctx,
                  int timeout_ms, tk_response_t *r) {
  int64_t deadline = now_ms() + timeout_ms;
  memset(r, 0, sizeof *r);
  for (;;) {
    tk_response_cleanup(r);
    if (tk_http("GET", port, path, NULL, 0, r) && r->status == want && (!pred || pred(r->body, ctx))) return true;
    if (now_ms() > deadline) return false;
    pause_ms(50);
  }
}

/* ---- Kafka ---- */

#include <librdkafka/rdkafka.h>

const char *tk_topic(const tk_env_t *env, const char *name, char out[128]) {
  snprintf(out, 128, "%s%s", env->prefix, name);
  return out;
}

static char *header_dup(rd_kafka_message_t *m, const char *name) {
  rd_kafka_headers_t *h;
  const void *v;
  size_t len;
  if (rd_kafka_message_headers(m, &h) || rd_kafka_header_get_last(h, name, &v, &len) || !v) return NULL;
  return strndup(v, len);
}

/* Copies every header of m into r. */
static void headers_copy(rd_kafka_message_t *m, tk_record_t *r) {
  rd_kafka_headers_t *h;
  if (rd_kafka_message_headers(m, &h) || rd_kafka_header_cnt(h) == 0) return;
  size_t n = rd_kafka_header_cnt(h);
  r->headers = calloc(n, sizeof *r->headers);
  const char *name;
  const void *v;
  size_t len;
  for (size_t i = 0; i < n && !rd_kafka_header_get_all(h, i, &name, &v, &len); i++) {
    char *copy = malloc(len + 1);
    if (len) memcpy(copy, v, len);
    copy[len] = '\0';
    r->headers[r->n_headers++] = (cqrs_header_t){strdup(name), copy, len};
  }
}

tk_record_t *tk_kafka_read_all(const tk_env_t *env, const char *topic, size_t *n) {
  char errstr[256];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", env->brokers, errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "group.id", "tk-reader", errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "isolation.level", "read_committed", errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof errstr);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  cr_assert_not_null(rk, "%s", errstr);
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
  cr_assert_eq(rd_kafka_metadata(rk, 0, rkt, &md, 10000), 0, "no metadata for %s", topic);
  int parts = md->topics[0].partition_cnt;
  rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
  for (int p = 0; p < parts; p++) rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(rk, l);
  rd_kafka_topic_partition_list_destroy(l);
  size_t cap = 1024, used = 0;
  tk_record_t *out = calloc(cap, sizeof *out);
  int eofs = 0;
  int64_t deadline = now_ms() + 60000;
  while (eofs < parts) {
    cr_assert(now_ms() < deadline, "reading %s took longer than 60 s", topic);
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      eofs++;
    } else if (!m->err) {
      if (used == cap) out = realloc(out, (cap *= 2) * sizeof *out);
      tk_record_t *r = &out[used++];
      memset(r, 0, sizeof *r);
      r->key = m->key ? strndup(m->key, m->key_len) : NULL;
      r->value = m->payload ? strndup(m->payload, m->len) : NULL;
      r->partition = m->partition;
      r->offset = m->offset;
      r->ce_type = header_dup(m, "ce_type");
      r->ce_subject = header_dup(m, "ce_subject");
      r->ce_causationid = header_dup(m, "ce_causationid");
      r->traceparent = header_dup(m, "traceparent");
      r->ce_tenant = header_dup(m, "ce_tenant");
      r->ce_id = header_dup(m, "ce_id");
      r->ce_time = header_dup(m, "ce_time");
      r->ce_dataschema = header_dup(m, "ce_dataschema");
      r->ce_schemaversion = header_dup(m, "ce_schemaversion");
      r->dlq_error = header_dup(m, "dlq_error");
      r->dlq_projection = header_dup(m, "dlq_projection");
      char *v = header_dup(m, "ce_aggregateversion");
      r->version = v ? atoll(v) : 0;
      free(v);
      headers_copy(m, r);
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  *n = used;
  return out;
}

char *tk_await_result(const tk_env_t *env, const char *key, int timeout_ms, size_t *count) {
  char topic[128];
  tk_topic(env, "command-results", topic);
  int64_t deadline = now_ms() + timeout_ms;
  for (;;) {
    size_t n, found = 0;
    char *value = NULL;
    tk_record_t *res = tk_kafka_read_all(env, topic, &n);
    for (size_t i = 0; i < n; i++)
      if (res[i].key && strcmp(res[i].key, key) == 0 && found++ == 0) value = strdup(res[i].value);
    tk_records_free(res, n);
    if (count) *count = found;
    if (value || now_ms() >= deadline) return value;
    pause_ms(100);
  }
}

void tk_records_free(tk_record_t *r, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(r[i].key), free(r[i].value), free(r[i].ce_type), free(r[i].ce_subject), free(r[i].ce_causationid);
    free(r[i].traceparent), free(r[i].ce_tenant), free(r[i].ce_id), free(r[i].ce_time);
    for (size_t h = 0; h < r[i].n_headers; h++) free((void *)r[i].headers[h].name), free((void *)r[i].headers[h].value);
    free(r[i].headers);
    free(r[i].ce_dataschema), free(r[i].ce_schemaversion), free(r[i].dlq_error), free(r[i].dlq_projection);
  }
  free(r);
}

static void delivered(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk, (void)opaque;
  *(rd_kafka_resp_err_t *)m->_private = m->err;
}

tk_record_t *tk_event_record(const tk_env_t *env, const char *aggregate_id, int64_t version) {
  char topic[128];
  size_t n;
  tk_record_t *all = tk_kafka_read_all(env, tk_topic(env, "events", topic), &n), *out = NULL;
  for (size_t i = 0; i < n && !out; i++)
    if (all[i].ce_subject && strcmp(all[i].ce_subject, aggregate_id) == 0 && (!version || all[i].version == version)) {
      out = calloc(1, sizeof *out);
      *out = all[i];
      all[i] = (tk_record_t){0};
    }
  tk_records_free(all, n);
  cr_assert_not_null(out, "no event of %s at version %lld on %s", aggregate_id, (long long)version, topic);
  return out;
}

/* A producer whose delivery reports land in each record's opaque. */
static rd_kafka_t *producer_new(const tk_env_t *env) {
  char errstr[256];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", env->brokers, errstr, sizeof errstr);
  rd_kafka_conf_set_dr_msg_cb(conf, delivered);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  cr_assert_not_null(rk, "%s", errstr);
  return rk;
}

/* Queues one record (hdrs, may be NULL, are taken over); *delivery gets its
 * delivery report once rk is flushed. */
static void produce_one(rd_kafka_t *rk, const char *topic, int32_t partition, const char *key, size_t key_len,
                        const char *value, size_t value_len, rd_kafka_headers_t *hdrs,
                        rd_kafka_resp_err_t *delivery) {
  *delivery = RD_KAFKA_RESP_ERR__IN_PROGRESS;
  rd_kafka_resp_err_t e;
  while ((e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
                                RD_KAFKA_V_KEY(key, key ? key_len : 0), RD_KAFKA_V_VALUE((void *)value, value_len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
                                RD_KAFKA_V_OPAQUE(delivery), RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
    rd_kafka_poll(rk, 100);
  if (e && hdrs) rd_kafka_headers_destroy(hdrs);
  cr_assert_eq(e, 0, "produce to %s: %s", topic, rd_kafka_err2str(e));
}

/* Flushes rk, asserts every one of the n delivery reports, destroys rk. */
static void producer_done(rd_kafka_t *rk, const char *topic, const rd_kafka_resp_err_t *delivery, size_t n) {
  rd_kafka_flush(rk, 15000);
  for (size_t i = 0; i < n; i++)
    cr_assert_eq(delivery[i], 0, "Kafka did not take a record for %s: %s", topic, rd_kafka_err2str(delivery[i]));
  rd_kafka_destroy(rk);
}

void tk_kafka_produce(const tk_env_t *env, const char *topic, int32_t partition, const char *key,
                      const char *value, const char *const *headers) {
  rd_kafka_t *rk = producer_new(env);
  rd_kafka_headers_t *hdrs = NULL;
  for (const char *const *h = headers; h && h[0]; h += 2) {
    if (!hdrs) hdrs = rd_kafka_headers_new(4);
    rd_kafka_header_add(hdrs, h[0], -1, h[1], -1);
  }
  rd_kafka_resp_err_t delivery;
  produce_one(rk, topic, partition, key, key ? strlen(key) : 0, value, value ? strlen(value) : 0, hdrs, &delivery);
  producer_done(rk, topic, &delivery, 1);
}

void tk_kafka_create_topic(const tk_env_t *env, const char *topic, int partitions) {
  rd_kafka_t *rk = producer_new(env);
  char errstr[256];
  rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, errstr, sizeof errstr);
  cr_assert_not_null(nt, "%s", errstr);
  rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
  rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
  rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
  cr_assert_not_null(ev, "Kafka did not answer CreateTopics for %s", topic);
  size_t n;
  const rd_kafka_topic_result_t **r = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
  cr_assert(n == 1 && (rd_kafka_topic_result_error(r[0]) == RD_KAFKA_RESP_ERR_NO_ERROR ||
                       rd_kafka_topic_result_error(r[0]) == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS),
            "creating %s: %s", topic, n ? rd_kafka_topic_result_error_string(r[0]) : "no result");
  rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  rd_kafka_NewTopic_destroy(nt);
  rd_kafka_destroy(rk);
}

void tk_kafka_reproduce(const tk_env_t *env, const char *topic, const tk_record_t *rec) {
  rd_kafka_t *rk = producer_new(env);
  rd_kafka_headers_t *hdrs = rd_kafka_headers_new(rec->n_headers ? rec->n_headers : 1);
  for (size_t i = 0; i < rec->n_headers; i++)
    rd_kafka_header_add(hdrs, rec->headers[i].name, -1, rec->headers[i].value, (ssize_t)rec->headers[i].len);
  rd_kafka_resp_err_t delivery;
  produce_one(rk, topic, rec->partition, rec->key, rec->key ? strlen(rec->key) : 0, rec->value,
              rec->value ? strlen(rec->value) : 0, hdrs, &delivery);
  producer_done(rk, topic, &delivery, 1);
}

/* Queues ev as command-svc writes it, to partition (-1: by its key). */
static void queue_event(rd_kafka_t *rk, const char *topic, const cqrs_event_t *ev, int32_t partition,
                        rd_kafka_resp_err_t *delivery) {
  cqrs_header_t h[CQRS_EVENT_MAX_HEADERS];
  char version_buf[24];
  size_t nh = cqrs_event_to_headers(ev, h, version_buf);
  rd_kafka_headers_t *hdrs = rd_kafka_headers_new(nh);
  for (size_t k = 0; k < nh; k++) rd_kafka_header_add(hdrs, h[k].name, -1, h[k].value, (ssize_t)h[k].len);
  size_t len;
  char *json = cqrs_json_write(ev->data, &len);
  char *key = cqrs_tenant_key(ev->tenant, ev->aggregate_id);
  cr_assert(json && key);
  produce_one(rk, topic, partition, key, strlen(key), json, len, hdrs, delivery);
  free(key);
  bson_free(json);
}

void tk_produce_events(const tk_env_t *env, const cqrs_event_t *evs, size_t n) {
  char topic[128];
  tk_topic(env, "events", topic);
  rd_kafka_t *rk = producer_new(env);
  rd_kafka_resp_err_t *delivery = calloc(n ? n : 1, sizeof *delivery);
  for (size_t i = 0; i < n; i++) queue_event(rk, topic, &evs[i], -1, &delivery[i]);
  producer_done(rk, topic, delivery, n);
  free(delivery);
}

void tk_produce_event_on(const tk_env_t *env, const cqrs_event_t *ev, int32_t partition) {
  char topic[128];
  tk_topic(env, "events", topic);
  rd_kafka_t *rk = producer_new(env);
  rd_kafka_resp_err_t delivery;
  queue_event(rk, topic, ev, partition, &delivery);
  producer_done(rk, topic, &delivery, 1);
}

void tk_produce_raw_event(const tk_env_t *env, const char *name, const char *type, const char *aggregate_type,
                          const char *id, int version, const char *schema_version, const char *data,
                          const char *const *extra) {
  char topic[128], ce_id[160], v[16], key[128];
  snprintf(ce_id, sizeof ce_id, "%s-%s-%d", type, id, version);
  snprintf(v, sizeof v, "%d", version);
  snprintf(key, sizeof key, "default/%s", id);
  const char *h[48] = {"ce_specversion", "1.0", "ce_id", ce_id, "ce_source", "/e2e-raw", "ce_type", type,
                       "ce_subject", id, "ce_time", "2026-01-15T10:00:00.000Z", "content-type", "application/json",
                       "ce_aggregatetype", aggregate_type, "ce_aggregateversion", v};
  size_t n = 18;
  if (schema_version) h[n++] = "ce_schemaversion", h[n++] = schema_version;
  for (; extra && extra[0] && n < 46; extra += 2) h[n++] = extra[0], h[n++] = extra[1];
  h[n] = NULL;
  int32_t partition = rd_kafka_msg_partitioner_murmur2(NULL, key, strlen(key), 3, NULL, NULL);
  tk_kafka_produce(env, tk_topic(env, name, topic), partition, key, data, h);
}

double tk_metric(int port, const char *series) {
  tk_response_t r;
  double v = -1;
  size_t n = strlen(series);
  if (tk_http("GET", port, "/metrics", NULL, 0, &r) && r.status == 200)
    for (const char *p = r.body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
      if (strncmp(p, series, n) == 0 && p[n] == ' ') v = strtod(p + n + 1, NULL);
  tk_response_cleanup(&r);
  return v;
}
