/* The HTTP server over real loopback sockets: routing, limits, query
 * parameters, and requests answered later from another thread. */
#include "testkit.h"

#include "cqrs/http.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static cqrs_http_server_t *srv;
static int port;

static void echo_tail_cb(cqrs_http_req_t *req, void *ctx) {
  (void)ctx;
  const char *q = cqrs_http_req_query(req, "q");
  char body[256];
  int n = snprintf(body, sizeof body, "{\"tail\":\"%s\",\"q\":\"%s\"}", cqrs_http_req_tail(req), q ? q : "");
  cqrs_http_reply_json(req, 200, body, (size_t)n);
}

static void body_len_cb(cqrs_http_req_t *req, void *ctx) {
  (void)ctx;
  size_t len;
  cqrs_http_req_body(req, &len);
  char body[64];
  int n = snprintf(body, sizeof body, "{\"len\":%zu}", len);
  cqrs_http_reply_json(req, 200, body, (size_t)n);
}

static void strict_cb(cqrs_http_req_t *req, void *ctx) {
  (void)ctx;
  static const char *const allowed[] = {"a", NULL};
  const char *unknown;
  if (cqrs_http_req_query_unknown(req, allowed, &unknown)) {
    cqrs_http_reply_error(req, 400, "unknown parameter", unknown);
    return;
  }
  cqrs_http_reply_json(req, 200, "{}", 2);
}

static void never_cb(cqrs_http_req_t *req, void *ctx) {
  (void)ctx;
  cqrs_http_deferred_t *d = cqrs_http_req_defer(req, 200, 503, "{\"error\":\"too late\"}", NULL, NULL);
  cqrs_http_deferred_release(d); /* nobody will answer: the deadline does */
}

static void *complete_later(void *arg) {
  struct timespec ts = {0, 20 * 1000000L};
  nanosleep(&ts, NULL); /* an answer that comes from elsewhere, later */
  cqrs_http_deferred_complete(arg, 201, "{\"done\":true}", 13);
  return NULL;
}

static void later_cb(cqrs_http_req_t *req, void *ctx) {
  (void)ctx;
  cqrs_http_deferred_t *d = cqrs_http_req_defer(req, 5000, 503, "{\"error\":\"too late\"}", NULL, NULL);
  pthread_t t;
  pthread_create(&t, NULL, complete_later, d);
  pthread_detach(t);
}

static void *complete_with_headers(void *arg) {
  static const char *const headers[] = {"X-Stale", "true", "X-Two", "2", NULL};
  cqrs_http_deferred_complete_headers(arg, 200, headers, "{}", 2);
  return NULL;
}

static void headers_cb(cqrs_http_req_t *req, void *ctx) {
  (void)ctx;
  cqrs_http_deferred_t *d = cqrs_http_req_defer(req, 5000, 503, "{\"error\":\"too late\"}", NULL, NULL);
  pthread_t t;
  pthread_create(&t, NULL, complete_with_headers, d);
  pthread_detach(t);
}

/* A fallback: says what it was handed (418, to tell it from the router's own). */
static void fallback_cb(cqrs_http_req_t *req, void *ctx) {
  (void)ctx;
  if (cqrs_http_req_query(req, "reply") && *cqrs_http_req_allow(req)) {
    cqrs_http_reply_not_allowed(req);
    return;
  }
  char body[128];
  int n = snprintf(body, sizeof body, "{\"allow\":\"%s\",\"tail\":\"%s\"}", cqrs_http_req_allow(req),
                   cqrs_http_req_tail(req));
  cqrs_http_reply_json(req, 418, body, (size_t)n);
}

static void setup(void) {
  cqrs_error_t err = {0};
  srv = cqrs_http_server_new(0, 2, 1024, &err);
  cr_assert_not_null(srv, "%s", err.message);
  cqrs_http_server_route(srv, "GET", "/echo/", "/echo/{x}", echo_tail_cb, NULL);
  cqrs_http_server_route(srv, "POST", "/body", "/body", body_len_cb, NULL);
  cqrs_http_server_route(srv, "GET", "/strict", "/strict", strict_cb, NULL);
  cqrs_http_server_route(srv, "GET", "/never", "/never", never_cb, NULL);
  cqrs_http_server_route(srv, "GET", "/later", "/later", later_cb, NULL);
  cqrs_http_server_route(srv, "GET", "/headers", "/headers", headers_cb, NULL);
  cqrs_http_server_route(srv, "GET", "/items/{id}", "/items/{id}", echo_tail_cb, NULL);
  cqrs_http_server_route(srv, "POST", "/items/{id}/retry", "/items/{id}/retry", echo_tail_cb, NULL);
  cqrs_http_server_route(srv, "DELETE", "/items/{id}/{sub}", "/items/{id}/{sub}", echo_tail_cb, NULL);
  cqrs_http_server_route(srv, "POST", "/items/retry", "/items/retry", echo_tail_cb, NULL);
  cqrs_http_server_route(srv, "GET", "/guarded/{x}", "/guarded/{x}", echo_tail_cb, NULL);
  cqrs_http_server_fallback(srv, "/guarded/", "/guarded/...", fallback_cb, NULL);
  cr_assert(cqrs_http_server_start(srv, &err), "%s", err.message);
  port = cqrs_http_server_port(srv);
}

static void teardown(void) { cqrs_http_server_destroy(srv); }

TestSuite(http, .init = setup, .fini = teardown, .timeout = 30);

Test(http, prefix_route_gives_the_decoded_tail_and_query) {
  tk_response_t r;
  cr_assert(tk_http("GET", port, "/echo/a%20b?q=x%2By", NULL, 0, &r));
  cr_expect_eq(r.status, 200);
  cr_expect_str_eq(r.body, "{\"tail\":\"a b\",\"q\":\"x+y\"}");
  cr_expect(strstr(r.headers, "Content-Type: application/json") != NULL);
  tk_response_cleanup(&r);
}

Test(http, unknown_route_is_404_and_wrong_method_405_with_json) {
  tk_response_t r;
  tk_http("GET", port, "/nope", NULL, 0, &r);
  cr_expect_eq(r.status, 404);
  char *e = tk_json_string(r.body, "error");
  cr_expect_not_null(e);
  free(e);
  tk_response_cleanup(&r);
  tk_http("GET", port, "/body", NULL, 0, &r);
  cr_expect_eq(r.status, 405);
  cr_expect(r.headers && strstr(r.headers, "Allow: POST"), "%s", r.headers);
  e = tk_json_string(r.body, "error");
  cr_expect(e && *e, "405 without a JSON error: %s", r.body);
  free(e);
  tk_response_cleanup(&r);
}

Test(http, body_over_the_limit_is_413_with_json_and_at_the_limit_is_served) {
  char body[1025];
  memset(body, 'x', sizeof body);
  tk_response_t r;
  tk_http("POST", port, "/body", body, 1024, &r);
  cr_expect_eq(r.status, 200);
  cr_expect_eq(tk_json_int(r.body, "len"), 1024);
  tk_response_cleanup(&r);
  tk_http("POST", port, "/body", body, 1025, &r);
  cr_expect_eq(r.status, 413);
  char *e = tk_json_string(r.body, "error");
  cr_expect(e && strstr(e, "1024"), "413 body: %s", r.body);
  free(e);
  tk_response_cleanup(&r);
}

Test(http, unknown_query_parameter_is_named) {
  tk_response_t r;
  tk_http("GET", port, "/strict?a=1&zz=2", NULL, 0, &r);
  cr_expect_eq(r.status, 400);
  char *f = tk_json_string(r.body, "field");
  cr_expect_str_eq(f, "zz");
  free(f);
  tk_response_cleanup(&r);
}

/* A query string that does not parse hides every parameter from evhttp: it
 * counts as unknown, not as "no parameters". */
Test(http, a_malformed_query_string_is_not_an_empty_one) {
  tk_response_t r;
  tk_http("GET", port, "/strict?a=&=null", NULL, 0, &r);
  cr_expect_eq(r.status, 400, "%s", r.body);
  tk_response_cleanup(&r);
  tk_http("GET", port, "/strict?a=1", NULL, 0, &r);
  cr_expect_eq(r.status, 200, "%s", r.body);
  tk_response_cleanup(&r);
}

Test(http, deferred_request_answers_its_timeout_when_nobody_completes_it) {
  tk_response_t r;
  tk_http("GET", port, "/never", NULL, 0, &r);
  cr_expect_eq(r.status, 503);
  cr_expect_str_eq(r.body, "{\"error\":\"too late\"}");
  tk_response_cleanup(&r);
}

Test(http, deferred_request_is_completed_from_another_thread) {
  tk_response_t r;
  tk_http("GET", port, "/later", NULL, 0, &r);
  cr_expect_eq(r.status, 201);
  cr_expect_str_eq(r.body, "{\"done\":true}");
  tk_response_cleanup(&r);
}

Test(http, deferred_request_is_completed_with_extra_headers) {
  tk_response_t r;
  tk_http("GET", port, "/headers", NULL, 0, &r);
  cr_expect_eq(r.status, 200);
  cr_expect_str_eq(r.body, "{}");
  cr_expect(r.headers && strstr(r.headers, "X-Stale: true") && strstr(r.headers, "X-Two: 2"), "%s", r.headers);
  cr_expect(r.headers && strstr(r.headers, "Content-Type: application/json"), "%s", r.headers);
  tk_response_cleanup(&r);
}

static void expect_answer(const char *method, const char *path, int status, const char *allow, const char *body) {
  tk_response_t r;
  tk_http(method, port, path, NULL, 0, &r);
  cr_expect_eq(r.status, status, "%s %s: %d %s", method, path, r.status, r.body);
  if (allow) {
    char line[64];
    snprintf(line, sizeof line, "Allow: %s\r\n", allow);
    cr_expect(r.headers && strstr(r.headers, line), "%s %s: want %s: %s", method, path, line, r.headers);
  } else {
    cr_expect(r.headers && !strstr(r.headers, "Allow:"), "%s %s: an Allow header: %s", method, path, r.headers);
  }
  if (body) cr_expect_str_eq(r.body, body, "%s %s", method, path);
  tk_response_cleanup(&r);
}

/* Patterns: a {placeholder} is one non-empty segment; the tail starts at the
 * first one. Allow names the methods of the path's own routes only: a literal
 * path before a pattern, fewer placeholders before more. */
Test(http, pattern_routes_match_by_segment_and_allow_is_per_path) {
  expect_answer("GET", "/items/a%20b", 200, NULL, "{\"tail\":\"a b\",\"q\":\"\"}");
  expect_answer("POST", "/items/a/retry", 200, NULL, "{\"tail\":\"a/retry\",\"q\":\"\"}");
  expect_answer("POST", "/items/retry", 200, NULL, "{\"tail\":\"\",\"q\":\"\"}");
  expect_answer("TRACE", "/items/a", 405, "GET, HEAD", NULL);
  expect_answer("POST", "/items/a", 405, "GET, HEAD", NULL);
  expect_answer("GET", "/items/a/retry", 405, "POST", NULL);      /* not DELETE's {sub}: less specific */
  expect_answer("GET", "/items/retry", 405, "POST", NULL);        /* the literal, not {id} */
  expect_answer("PUT", "/items/a/other", 405, "DELETE", NULL);
  expect_answer("GET", "/items/a/b/c", 404, NULL, NULL);
  expect_answer("GET", "/items/", 404, NULL, NULL);
  expect_answer("POST", "/items//retry", 404, NULL, NULL);
  expect_answer("GET", "/items", 404, NULL, NULL);
}

/* Under a fallback's prefix, what no route serves goes to it, with the
 * methods the router would have named in Allow; what a route serves does not. */
Test(http, a_fallback_gets_what_no_route_serves_under_its_prefix) {
  expect_answer("GET", "/guarded/x", 200, NULL, "{\"tail\":\"x\",\"q\":\"\"}");
  /* the fallback sets Allow itself, if it answers 405 */
  expect_answer("DELETE", "/guarded/x", 418, NULL, "{\"allow\":\"GET, HEAD\",\"tail\":\"x\"}");
  expect_answer("GET", "/guarded/x/y", 418, NULL, "{\"allow\":\"\",\"tail\":\"x/y\"}");
  expect_answer("DELETE", "/guarded/x?reply=405", 405, "GET, HEAD",
                "{\"error\":\"method DELETE is not allowed here; allowed: GET, HEAD\"}");
  expect_answer("GET", "/guarded", 404, NULL, NULL);
}

/* A method evhttp has no name for reaches our dispatcher: 405 with Allow and
 * a JSON body (libevent's own answer would be a 501 HTML page). */
Test(http, unknown_method_is_405_in_json_with_allow) {
  static const char *const methods[] = {"PROPFIND", "FOO", "TRACE", NULL};
  for (const char *const *m = methods; *m; m++) {
    tk_response_t r;
    tk_http(*m, port, "/body", NULL, 0, &r);
    cr_expect_eq(r.status, 405, "%s: %d %s", *m, r.status, r.body);
    cr_expect(r.headers && strstr(r.headers, "Allow: POST"), "%s: %s", *m, r.headers);
    cr_expect(r.headers && strstr(r.headers, "Content-Type: application/json"), "%s: %s", *m, r.headers);
    char *e = tk_json_string(r.body, "error");
    cr_expect(e && strstr(e, "not allowed"), "%s: %s", *m, r.body);
    free(e);
    tk_response_cleanup(&r);
    tk_http(*m, port, "/nope", NULL, 0, &r);
    cr_expect_eq(r.status, 404, "%s on an unknown path: %d", *m, r.status);
    tk_response_cleanup(&r);
  }
}

/* Headers past evhttp's own bound (about 56 KB) and a head it cannot parse
 * are answered by libevent itself; the answer is still JSON. */
Test(http, heads_libevent_refuses_are_answered_in_json) {
  size_t big = 70000;
  char *headers = malloc(big + 16);
  memcpy(headers, "X-Big: ", 7);
  memset(headers + 7, 'a', big);
  memcpy(headers + 7 + big, "\r\n", 3);
  tk_response_t r;
  tk_http_headers("GET", port, "/echo/x", headers, NULL, 0, &r);
  free(headers);
  cr_expect_eq(r.status, 400, "%d %s", r.status, r.body);
  cr_expect(r.headers && strstr(r.headers, "Content-Type: application/json"), "%s", r.headers);
  char *e = tk_json_string(r.body, "error");
  cr_expect(e && strstr(e, "56 KB"), "%s", r.body);
  free(e);
  tk_response_cleanup(&r);

  /* 2,000 headers of 1 KB: 2 MB in all */
  size_t one = 1024, n = 2000;
  headers = malloc(n * (one + 16) + 1);
  size_t at = 0;
  for (size_t i = 0; i < n; i++) {
    at += (size_t)sprintf(headers + at, "X-H%zu: ", i);
    memset(headers + at, 'b', one);
    at += one;
    memcpy(headers + at, "\r\n", 3);
    at += 2;
  }
  tk_http_headers("GET", port, "/echo/x", headers, NULL, 0, &r);
  free(headers);
  cr_expect_eq(r.status, 400, "%d %s", r.status, r.body);
  cr_expect(r.headers && strstr(r.headers, "Content-Type: application/json"), "%s", r.headers);
  cr_expect(r.body && r.body[0] == '{' && !strstr(r.body, "<HTML>"), "%s", r.body);
  tk_response_cleanup(&r);
}

/* Between our limits and evhttp's: our own 414 and 431, named. */
Test(http, long_request_line_is_414_and_large_headers_431) {
  char path[20000] = "/echo/";
  memset(path + 6, 'p', sizeof path - 7);
  path[sizeof path - 1] = '\0';
  tk_response_t r;
  tk_http("GET", port, path, NULL, 0, &r);
  cr_expect_eq(r.status, 414, "%d %s", r.status, r.body);
  char *e = tk_json_string(r.body, "error");
  cr_expect(e && strstr(e, "8192"), "%s", r.body);
  free(e);
  tk_response_cleanup(&r);
  char headers[40 * 1024 + 64];
  size_t at = 0;
  for (int i = 0; i < 40; i++) {
    at += (size_t)sprintf(headers + at, "X-H%02d: ", i);
    memset(headers + at, 'h', 1000);
    at += 1000;
    memcpy(headers + at, "\r\n", 3);
    at += 2;
  }
  tk_http_headers("GET", port, "/echo/x", headers, NULL, 0, &r);
  cr_expect_eq(r.status, 431, "%d %s", r.status, r.body);
  e = tk_json_string(r.body, "error");
  cr_expect(e && strstr(e, "32768"), "%s", r.body);
  free(e);
  tk_response_cleanup(&r);
}

/* A malformed request behind a good one on the same connection: the second
 * answer (libevent's, written after the first left) is JSON too. */
Test(http, a_malformed_request_after_a_good_one_is_answered_in_json) {
  tk_response_t r;
  /* the "path" ends the first request and starts a malformed second one */
  tk_http("GET", port, "/echo/x HTTP/1.1\r\nHost: a\r\n\r\nGARBAGE\r\n\r\nGET /echo/y", NULL, 0, &r);
  cr_expect_eq(r.status, 200, "%d", r.status);
  const char *second = r.body ? strstr(r.body, "HTTP/1.1 400") : NULL;
  cr_expect_not_null(second, "no second answer: %s", r.body);
  cr_expect(second && strstr(second, "Content-Type: application/json") && strstr(second, "{\"error\":"), "%s",
            second);
  cr_expect(r.body && !strstr(r.body, "<HTML>"), "%s", r.body);
  tk_response_cleanup(&r);
}

/* Sends raw on one connection and returns all it answers until the server
 * closes it or 2 s pass (malloc'd). */
static char *raw_exchange(const char *raw) {
  int fd = tk_connect("127.0.0.1", port, 2000);
  cr_assert(fd >= 0, "no connection to 127.0.0.1:%d", port);
  cr_assert(write(fd, raw, strlen(raw)) == (ssize_t)strlen(raw));
  size_t cap = 8192, len = 0;
  char *out = malloc(cap);
  ssize_t n;
  while ((n = read(fd, out + len, cap - len - 1)) > 0) len += (size_t)n;
  out[len] = '\0';
  close(fd);
  return out;
}

/* evhttp reads no body for TRACE, HEAD or a method it has no name for: one
 * announced anyway must not be taken for the next request on the connection
 * (a smuggled request). The connection closes with the one answer. */
Test(http, a_body_evhttp_does_not_read_closes_the_connection) {
  static const char *const methods[] = {"TRACE /body", "FOO /body", "HEAD /echo/x", NULL};
  static const char smuggled[] = "GET /echo/smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
  for (const char *const *m = methods; *m; m++) {
    char raw[512];
    snprintf(raw, sizeof raw, "%s HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s", *m, strlen(smuggled),
             smuggled);
    char *got = raw_exchange(raw);
    cr_expect(strstr(got, "HTTP/1.1 ") == got, "%s: %s", *m, got);
    cr_expect(strstr(got + 1, "HTTP/1.1 ") == NULL, "%s: two answers on one request: %s", *m, got);
    cr_expect(strstr(got, "smuggled") == NULL, "%s: the body was served as a request: %s", *m, got);
    cr_expect(strstr(got, "Connection: close") != NULL, "%s: %s", *m, got);
    free(got);
  }
}
