/* The HTTP request path: raw bytes from a client, through libshared's server
 * (cqrs_http_server_t on libevent: request line and header limits 414/431,
 * 404/405, the body limit 413, path and query decoding) into handlers that do
 * what our services' handlers do with a request before any I/O of theirs:
 * the authentication gate (cqrs_auth_http with an HS256 secret and an API key
 * in the registry), the command ingress's checks (cqrs_decider_prepare,
 * cqrs_command_check_tenant, the canonical JSON it would produce) answered
 * through a deferred reply, and the query routes' parameter reading
 * (cqrs_http_req_query_unknown, cqrs_params_*, the cursor).
 *
 * Input: the bytes a client sends on one connection (one request or several,
 * pipelined). The server runs on loopback in this process; each input is one
 * connection, half-closed after the input, read until the server closes it.
 * Properties: the server answers every input with HTTP (or closes without a
 * word), and keeps answering: a stuck or dead server fails the next input's
 * connect or its 5 s read. */
#include "fuzz.h"

#include "cursor.h"
#include "decider.h"
#include "params.h"
#include "processor.h"

#include "cqrs/auth.h"
#include "cqrs/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BODY 2048
#define READ_TIMEOUT_MS 5000

/* The key "cqrs_00000000000000aa_<0123456789abcdef x4>" of tenant acme. */
#define KEY_RECORD                                                                                             \
  "{\"keyId\":\"00000000000000aa\",\"tenantId\":\"acme\",\"scopes\":[\"queries:read\",\"commands:write\"],"    \
  "\"sha256\":\"a8ae6e6ee929abea3afcfc5258c8ccd6f85273e0d4626d26c7279f3250f77c8e\","                          \
  "\"createdAt\":\"2026-01-01T00:00:00Z\",\"revoked\":false}"

static cqrs_http_server_t *srv;
static cqrs_auth_t *auth;
static cqrs_registry_t *reg;
static cqrs_config_t cfg;
static struct sockaddr_in addr;

/* POST /v1/commands, up to the produce. */
static void command_cb(cqrs_http_req_t *req, void *ctx) {
  (void)ctx;
  cqrs_principal_t who;
  if (!cqrs_auth_http(auth, req, CQRS_SCOPE_COMMANDS_WRITE, &who)) return;
  size_t len;
  const char *body = cqrs_http_req_body(req, &len);
  cqrs_command_t cmd;
  cqrs_error_t err = {0};
  const cqrs_decider_t *d;
  const cqrs_command_spec_t *spec;
  if (!cqrs_decider_prepare(&cmd, body, len, &d, &spec, &err) || !cqrs_command_check_tenant(&cmd, who.tenant, &err)) {
    cqrs_http_reply_cqrs_error(req, &err);
  } else {
    size_t json_len;
    char *json = cqrs_command_to_json(&cmd, &json_len);
    cqrs_http_deferred_t *def = cqrs_http_req_defer(req, 1000, 503, "{\"error\":\"timeout\"}", NULL, NULL);
    static const char *const headers[] = {"X-Fuzz", "deferred", NULL};
    cqrs_http_deferred_complete_headers(def, 202, headers, json, json_len);
    bson_free(json);
  }
  cqrs_command_cleanup(&cmd);
}

/* GET /v1/orders/..., as the list and single-read routes read their parameters. */
static void query_cb(cqrs_http_req_t *req, void *ctx) {
  (void)ctx;
  static const char *const allowed[] = {"userId", "status", "limit", "cursor", "minVersion", "waitMs", NULL};
  static const char *const statuses[] = {"Created", "Shipped", NULL};
  cqrs_principal_t who;
  if (!cqrs_auth_http(auth, req, CQRS_SCOPE_QUERIES_READ, &who)) return;
  const char *unknown;
  if (cqrs_http_req_query_unknown(req, allowed, &unknown)) {
    cqrs_http_reply_error(req, 400, "unknown parameter", unknown);
    return;
  }
  cqrs_params_t *p = cqrs_params_new();
  cqrs_error_t err = {0};
  for (const char *const *a = allowed; *a; a++) {
    const char *v = cqrs_http_req_query(req, *a);
    if (v) cqrs_params_add(p, *a, v, NULL);
  }
  const char *id, *by, *text;
  int limit;
  bson_value_t v, after;
  bool ok = cqrs_params_add(p, "orderId", cqrs_http_req_tail(req), &err) &&
            cqrs_params_string(p, "orderId", false, 128, &id, &err) &&
            (!cqrs_params_get(p, "status") || cqrs_params_enum(p, "status", statuses, &by, &err)) &&
            cqrs_params_limit(p, &limit, &err) && cqrs_params_cursor(p, &text, &err);
  if (ok && text && (ok = cqrs_cursor_decode(text, "GetOrdersByUser", "createdAt", &v, &after, &err))) {
    bson_value_destroy(&v);
    bson_value_destroy(&after);
  }
  if (ok)
    cqrs_http_reply_json(req, 200, "{}", 2);
  else
    cqrs_http_reply_cqrs_error(req, &err);
  cqrs_params_destroy(p);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put(const char *key, const char *value) {
  cqrs_error_t err = {0};
  FUZZ_CHECK(cqrs_registry_apply(reg, key, strlen(key), value, strlen(value), &err), "setup: %s", err.message);
}

static void cleanup(void) {
  cqrs_http_server_destroy(srv);
  cqrs_auth_destroy(auth);
  cqrs_registry_destroy(reg);
  cqrs_config_cleanup(&cfg);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  cqrs_error_t err = {0};
  reg = cqrs_registry_new();
  put("tenant/acme", "{\"tenantId\":\"acme\",\"state\":\"active\",\"createdAt\":\"2026-01-01T00:00:00Z\"}");
  put("apikey/00000000000000aa", KEY_RECORD);
  char *env[] = {"AUTH_ISSUER=https://issuer.test/", "AUTH_AUDIENCE=cqrs-api",
                 "AUTH_HS256_SECRET=an-hs256-secret-of-at-least-32-bytes!", NULL};
  FUZZ_CHECK(cqrs_config_load(&cfg, env, 8080, &err), "config: %s", err.message);
  static const cqrs_log_t quiet = {.service = "fuzz", .level = CQRS_LOG_ERROR};
  FUZZ_CHECK((auth = cqrs_auth_new(&cfg, &quiet, reg, &err)), "auth: %s", err.message);
  FUZZ_CHECK((srv = cqrs_http_server_new_at("127.0.0.1", 0, 1, MAX_BODY, &err)), "server: %s", err.message);
  cqrs_http_server_route(srv, "POST", "/v1/commands", "/v1/commands", command_cb, NULL);
  cqrs_http_server_route(srv, "GET", "/v1/orders/", "/v1/orders/{orderId}", query_cb, NULL);
  FUZZ_CHECK(cqrs_http_server_start(srv, &err), "start: %s", err.message);
  addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)cqrs_http_server_port(srv))};
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  atexit(cleanup);
  return 0;
}

/* A connection to the server from a loopback address of its own. Why: each
 * input leaves a TIME_WAIT behind for a minute, and at a thousand or more
 * inputs a second one source address runs out of ephemeral ports.
 * 127.0.0.0/8 is all loopback. Every call here restarts after EINTR:
 * libFuzzer's SIGALRM (its -timeout watchdog) interrupts them about once a
 * second, which an impatient loop takes for a server that does not answer. */
static int connect_server(void) {
  static uint32_t n;
  n++;
  struct sockaddr_in src = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(0x7f010000u | ((n / 254 % 254) << 8) | (n % 254 + 1))};
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  FUZZ_CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&src, sizeof src) == 0, "client socket: %s", strerror(errno));
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    /* interrupted, the connection goes on: wait for it */
    FUZZ_CHECK(errno == EINTR, "the server does not accept: %s", strerror(errno));
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    int ready, soerr = 0;
    socklen_t len = sizeof soerr;
    while ((ready = poll(&pfd, 1, READ_TIMEOUT_MS)) < 0 && errno == EINTR) {
    }
    FUZZ_CHECK(ready > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0,
               "the server does not accept: %s", strerror(soerr));
  }
  return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int fd = connect_server();
  /* the server may answer (413, 431) and close before it read everything: stop writing then */
  for (size_t off = 0; off < size;) {
    ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += (size_t)n;
  }
  shutdown(fd, SHUT_WR);
  char buf[4096], head[8] = {0};
  size_t got = 0;
  int64_t deadline = now_ms() + READ_TIMEOUT_MS;
  for (;;) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int left = (int)(deadline - now_ms()), ready = left > 0 ? poll(&pfd, 1, left) : 0;
    if (ready < 0 && errno == EINTR) continue;
    FUZZ_CHECK(ready > 0, "no answer and no close within %d ms", READ_TIMEOUT_MS);
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t i = 0; i < n && got < sizeof head - 1; i++) head[got++] = buf[i];
    got += got >= sizeof head - 1 ? (size_t)n : 0;
  }
  FUZZ_CHECK(got == 0 || strncmp(head, "HTTP/", got < 5 ? got : 5) == 0, "an answer that is not HTTP: %s", head);
  close(fd);
  return 0;
}
