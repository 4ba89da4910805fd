/* HTTP server: evhttp loops per thread on one SO_REUSEPORT port, routing,
 * JSON replies, and requests answered later from other threads. */
#include "cqrs/alloc.h"
#include "cqrs/http.h"
#include "cqrs/json.h"
#include "cqrs/util.h"
#include "http_errors.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

typedef struct {
  char method[8]; /* "" for a fallback */
  char *path;
  bool prefix;
  int generality; /* 0: a literal path; +1 per {placeholder}; a prefix: PREFIX_GENERALITY */
  size_t tail_at; /* where the tail starts: the first placeholder, or the prefix's end */
  char *label;
  cqrs_http_handler_cb cb;
  void *ctx;
} route_t;

typedef struct {
  cqrs_http_server_t *srv;
  struct event_base *base;
  struct evhttp *http;
  pthread_t thread;
  bool started;
} loop_t;

struct cqrs_http_server {
  int port;
  size_t max_body;
  route_t *routes;
  size_t n_routes;
  loop_t *loops;
  int n_loops;
  cqrs_http_observer_cb observer;
  void *observer_ctx;
  atomic_bool stopped;
};

struct cqrs_http_req {
  struct evhttp_request *r;
  loop_t *loop;
  const route_t *route;
  char allow[64]; /* for a fallback: the path's methods, "" when no route has the path */
  char *tail;
  char *path;
  struct evkeyvalq query;
  bool query_parsed;
  bool query_malformed; /* the query string did not parse (evhttp then keeps no parameter) */
  int64_t start_us;
  bool replied;
  int status; /* what it was answered, 0 until then */
};

enum { D_PENDING, D_DONE, D_TIMED_OUT };

struct cqrs_http_deferred {
  pthread_mutex_t lock;
  atomic_int refs;
  int state;
  struct evhttp_request *r;
  struct event *ev;
  cqrs_http_server_t *srv;
  const char *label;
  int64_t start_us;
  int status;
  char *body;
  size_t len;
  char **headers; /* name, value, ..., NULL: extra reply headers; NULL: none */
  int timeout_status;
  char *timeout_json;
  cqrs_http_timeout_cb on_timeout;
  void *ctx;
};

static int64_t now_us(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

static void once_init_threads(void) { evthread_use_pthreads(); }

static int listen_reuseport(struct in_addr bind_addr, int port, cqrs_error_t *err) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) goto fail;
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
    goto fail;
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr = bind_addr};
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 1024) < 0) goto fail;
  return fd;
fail:
  cqrs_error_set(err, CQRS_ERR_FATAL, "HTTP_PORT", "cannot listen on port %d: %m", port);
  if (fd >= 0) close(fd);
  return -1;
}

static int bound_port(int fd) {
  struct sockaddr_in addr;
  socklen_t len = sizeof addr;
  if (getsockname(fd, (struct sockaddr *)&addr, &len) < 0) return -1;
  return ntohs(addr.sin_port);
}

static void dispatch_cb(struct evhttp_request *r, void *arg);

/* Limits on the request head: a request line longer than LINE_MAX answers
 * 414, header lines (name, ": ", value, CRLF) larger than HEADERS_MAX in all
 * answer 431, both in JSON. evhttp's own bound (HEAD_HARD_MAX, request line
 * and headers together) stays a backstop above them: past it evhttp refuses
 * the request itself (413) before we see it, in JSON too (http_errors.h). */
#define LINE_MAX_BYTES 8192
#define HEADERS_MAX_BYTES 32768
#define HEAD_HARD_MAX (LINE_MAX_BYTES + HEADERS_MAX_BYTES + 16384)

/* Every method reaches dispatch_cb, which answers 405 (with Allow) or 404 in
 * JSON. That includes methods evhttp has no name for (PROPFIND, made-up
 * tokens): libevent 2.1 gives them the type bit 1 << 15, which no public
 * EVHTTP_REQ_ constant names, so all 16 bits are allowed; evhttp's own refusal
 * would be a 501 HTML page. */
#define ALL_METHODS ((ev_uint16_t)0xffff)

cqrs_http_server_t *cqrs_http_server_new(int port, int threads, size_t max_body, cqrs_error_t *err) {
  return cqrs_http_server_new_at(NULL, port, threads, max_body, err);
}

cqrs_http_server_t *cqrs_http_server_new_at(const char *addr, int port, int threads, size_t max_body,
                                            cqrs_error_t *err) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, once_init_threads);
  struct in_addr bind_addr = {.s_addr = htonl(INADDR_ANY)};
  if (addr && inet_pton(AF_INET, addr, &bind_addr) != 1) {
    cqrs_error_set(err, CQRS_ERR_FATAL, NULL, "cannot listen on %s: not an IPv4 address", addr);
    return NULL;
  }
  cqrs_http_server_t *srv = cqrs_xcalloc(1, sizeof *srv);
  srv->max_body = max_body;
  srv->loops = cqrs_xcalloc((size_t)threads, sizeof *srv->loops);
  srv->n_loops = threads;
  srv->port = port;
  for (int i = 0; i < threads; i++) {
    loop_t *l = &srv->loops[i];
    l->srv = srv;
    l->base = event_base_new();
    l->http = evhttp_new(l->base);
    evhttp_set_bevcb(l->http, http_errors_bev_cb, NULL);
    /* evhttp's own limit answers a bare 413 before we see the request; keep it
     * well above ours so clients get our 413 naming the limit for ordinary
     * oversize bodies. */
    evhttp_set_max_body_size(l->http, (ev_ssize_t)(max_body * 4 + 65536));
    evhttp_set_allowed_methods(l->http, ALL_METHODS);
    evhttp_set_gencb(l->http, dispatch_cb, l);
    evhttp_set_max_headers_size(l->http, HEAD_HARD_MAX);
    int fd = listen_reuseport(bind_addr, srv->port, err);
    if (fd < 0 || !evhttp_accept_socket_with_handle(l->http, fd)) {
      if (fd >= 0) {
        close(fd);
        cqrs_error_set(err, CQRS_ERR_FATAL, "HTTP_PORT", "cannot accept on port %d", port);
      }
      cqrs_http_server_destroy(srv);
      return NULL;
    }
    /* With port 0 the first loop picks a port; the others share it. */
    if (srv->port == 0) srv->port = bound_port(fd);
  }
  return srv;
}

/* Above any count of placeholders a path can hold. */
#define PREFIX_GENERALITY 1000

void cqrs_http_server_route(cqrs_http_server_t *srv, const char *method, const char *path,
                            const char *label, cqrs_http_handler_cb cb, void *ctx) {
  srv->routes = cqrs_xrealloc(srv->routes, (srv->n_routes + 1) * sizeof *srv->routes);
  route_t *rt = &srv->routes[srv->n_routes++];
  memset(rt, 0, sizeof *rt);
  snprintf(rt->method, sizeof rt->method, "%s", method);
  rt->path = cqrs_xstrdup(path);
  /* "/" alone is the site root, an exact path: as a prefix it would match every path. */
  rt->prefix = path[strlen(path) - 1] == '/' && path[1] != '\0';
  for (const char *p = path; (p = strchr(p, '{')); p++) rt->generality++;
  if (rt->prefix) rt->generality = PREFIX_GENERALITY;
  rt->tail_at = strcspn(path, "{");
  rt->label = cqrs_xstrdup(label);
  rt->cb = cb;
  rt->ctx = ctx;
}

void cqrs_http_server_fallback(cqrs_http_server_t *srv, const char *prefix, const char *label,
                               cqrs_http_handler_cb cb, void *ctx) {
  cqrs_http_server_route(srv, "", prefix, label, cb, ctx);
}

void cqrs_http_server_set_observer(cqrs_http_server_t *srv, cqrs_http_observer_cb cb, void *ctx) {
  srv->observer = cb;
  srv->observer_ctx = ctx;
}

static void *loop_main(void *arg) {
  loop_t *l = arg;
  event_base_loop(l->base, EVLOOP_NO_EXIT_ON_EMPTY);
  return NULL;
}

bool cqrs_http_server_start(cqrs_http_server_t *srv, cqrs_error_t *err) {
  for (int i = 0; i < srv->n_loops; i++) {
    if (pthread_create(&srv->loops[i].thread, NULL, loop_main, &srv->loops[i]) != 0) {
      cqrs_error_set(err, CQRS_ERR_FATAL, NULL, "cannot start HTTP thread");
      cqrs_http_server_stop(srv);
      return false;
    }
    srv->loops[i].started = true;
  }
  return true;
}

void cqrs_http_server_stop(cqrs_http_server_t *srv) {
  if (!srv || atomic_exchange(&srv->stopped, true)) return;
  /* loopexit, not loopbreak: it is an event the loop runs, so it also stops a
   * thread that has not entered event_base_loop yet (which clears a pending
   * break: a stop right after start hung the join, 4 test runs in 10). */
  for (int i = 0; i < srv->n_loops; i++)
    if (srv->loops[i].started) event_base_loopexit(srv->loops[i].base, NULL);
  for (int i = 0; i < srv->n_loops; i++)
    if (srv->loops[i].started) pthread_join(srv->loops[i].thread, NULL);
}

void cqrs_http_server_destroy(cqrs_http_server_t *srv) {
  if (!srv) return;
  cqrs_http_server_stop(srv);
  for (int i = 0; i < srv->n_loops; i++) {
    if (srv->loops[i].http) evhttp_free(srv->loops[i].http);
    if (srv->loops[i].base) event_base_free(srv->loops[i].base);
  }
  for (size_t i = 0; i < srv->n_routes; i++) {
    free(srv->routes[i].path);
    free(srv->routes[i].label);
  }
  free(srv->routes);
  free(srv->loops);
  free(srv);
}

int cqrs_http_server_port(const cqrs_http_server_t *srv) { return srv->port; }

/* ---- requests ---- */

static const char *method_name(enum evhttp_cmd_type t) {
  switch (t) {
  case EVHTTP_REQ_GET: return "GET";
  case EVHTTP_REQ_POST: return "POST";
  case EVHTTP_REQ_HEAD: return "HEAD";
  case EVHTTP_REQ_PUT: return "PUT";
  case EVHTTP_REQ_DELETE: return "DELETE";
  case EVHTTP_REQ_PATCH: return "PATCH";
  case EVHTTP_REQ_OPTIONS: return "OPTIONS";
  case EVHTTP_REQ_TRACE: return "TRACE";
  case EVHTTP_REQ_CONNECT: return "CONNECT";
  default: return "OTHER";
  }
}

static void observe(cqrs_http_server_t *srv, const char *label, int status, int64_t start_us) {
  if (srv->observer) srv->observer(label, status, now_us() - start_us, srv->observer_ctx);
}

static void send_json(struct evhttp_request *r, int status, const char *json, size_t len) {
  evhttp_add_header(evhttp_request_get_output_headers(r), "Content-Type", "application/json");
  struct evbuffer *buf = evbuffer_new();
  evbuffer_add(buf, json, len);
  /* evhttp 2.1 has no phrase for 431 (it would say "Client Error") */
  evhttp_send_reply(r, status, status == 431 ? "Request Header Fields Too Large" : NULL, buf);
  evbuffer_free(buf);
}

static void send_error(struct evhttp_request *r, int status, const char *message, const char *field) {
  bson_string_t *s = bson_string_new("{\"error\":");
  cqrs_json_append_string(s, message);
  if (field) {
    bson_string_append(s, ",\"field\":");
    cqrs_json_append_string(s, field);
  }
  bson_string_append_c(s, '}');
  send_json(r, status, s->str, s->len);
  bson_string_free(s, true);
}

/* Whether path is one of rt's: literal bytes equal, each {placeholder} one
 * non-empty segment, a prefix route's rest non-empty. */
static bool path_matches(const route_t *rt, const char *path) {
  const char *p = rt->path, *s = path;
  while (*p) {
    if (*p == '{') {
      size_t n = strcspn(s, "/");
      if (n == 0) return false;
      s += n;
      p = strchr(p, '}') + 1;
    } else if (*p++ != *s++) {
      return false;
    }
  }
  return rt->prefix ? *s != '\0' : *s == '\0';
}

static bool method_matches(const route_t *rt, const char *method) {
  return strcmp(rt->method, method) == 0 || (strcmp(method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0);
}

/* The generality of the most specific routes (fallbacks aside) whose path
 * matches; -1 when none does. Only those routes serve path, as OpenAPI has it:
 * "/dlq/redrive" takes its path from "/dlq/{id}", whose methods do not apply there. */
static int path_generality(const cqrs_http_server_t *srv, const char *path) {
  int best = -1;
  for (size_t i = 0; i < srv->n_routes; i++) {
    const route_t *rt = &srv->routes[i];
    if (rt->method[0] && (best < 0 || rt->generality < best) && path_matches(rt, path)) best = rt->generality;
  }
  return best;
}

/* The route for method on path (the first added of the most specific), NULL when none. */
static const route_t *find_route(const cqrs_http_server_t *srv, const char *method, const char *path) {
  int g = path_generality(srv, path);
  for (size_t i = 0; g >= 0 && i < srv->n_routes; i++) {
    const route_t *rt = &srv->routes[i];
    if (rt->method[0] && rt->generality == g && method_matches(rt, method) && path_matches(rt, path)) return rt;
  }
  return NULL;
}

/* The fallback whose prefix path is under, NULL when none. */
static const route_t *find_fallback(const cqrs_http_server_t *srv, const char *path) {
  for (size_t i = 0; i < srv->n_routes; i++)
    if (!srv->routes[i].method[0] && path_matches(&srv->routes[i], path)) return &srv->routes[i];
  return NULL;
}

/* The methods the routes of path accept, as an Allow header value ("GET, HEAD"). */
static void allowed_methods(const cqrs_http_server_t *srv, const char *path, char *out, size_t size) {
  static const char *const order[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", NULL};
  size_t len = 0;
  out[0] = '\0';
  for (const char *const *m = order; *m; m++)
    if (find_route(srv, *m, path) && len + strlen(*m) + 3 < size)
      len += (size_t)snprintf(out + len, size - len, "%s%s", len ? ", " : "", *m);
}

bool cqrs_http_req_route_exists(const cqrs_http_req_t *req, const char *method, const char *path) {
  return find_route(req->loop->srv, method, path) != NULL;
}

static void req_free(cqrs_http_req_t *req) {
  free(req->tail);
  free(req->path);
  if (req->query_parsed) evhttp_clear_headers(&req->query);
  free(req);
}

/* Runs the route's handler; the request ends with it (a deferred request
 * lives on in its cqrs_http_deferred_t). */
static void run_handler(cqrs_http_req_t *req) {
  req->route->cb(req, req->route->ctx);
  req_free(req);
}

/* A 405 in JSON with Allow: allow. */
static void send_not_allowed(struct evhttp_request *r, const char *method, const char *allow) {
  evhttp_add_header(evhttp_request_get_output_headers(r), "Allow", allow);
  char msg[128];
  if (strcmp(method, "OTHER") == 0) /* a method evhttp has no name for */
    snprintf(msg, sizeof msg, "this method is not allowed here; allowed: %s", allow);
  else
    snprintf(msg, sizeof msg, "method %s is not allowed here; allowed: %s", method, allow);
  send_error(r, 405, msg, NULL);
}

/* True when r announced a body evhttp did not read: libevent 2.1 reads none
 * for TRACE, HEAD and methods it has no name for, and would then parse the
 * body's bytes as the next request on the connection (a request smuggled
 * past whatever looked at this one). Such a connection closes with its answer. */
static bool body_left_unread(struct evhttp_request *r, size_t body_len) {
  struct evkeyvalq *h = evhttp_request_get_input_headers(r);
  if (evhttp_find_header(h, "Transfer-Encoding")) return body_len == 0;
  const char *cl = evhttp_find_header(h, "Content-Length");
  return cl && strtoull(cl, NULL, 10) > body_len;
}

static void dispatch_cb(struct evhttp_request *r, void *arg) {
  loop_t *l = arg;
  cqrs_http_server_t *srv = l->srv;
  cqrs_http_req_t *req = cqrs_xcalloc(1, sizeof *req);
  req->r = r;
  req->loop = l;
  req->start_us = now_us();
  const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r);
  const char *raw_path = uri ? evhttp_uri_get_path(uri) : NULL;
  req->path = evhttp_uridecode(raw_path && *raw_path ? raw_path : "/", 0, NULL);
  const char *method = method_name(evhttp_request_get_command(r));
  req->route = find_route(srv, method, req->path);
  bool path_known = req->route || path_generality(srv, req->path) >= 0;
  const route_t *fallback = req->route ? NULL : find_fallback(srv, req->path);
  size_t body_len = evbuffer_get_length(evhttp_request_get_input_buffer(r));
  if (body_left_unread(r, body_len)) evhttp_add_header(evhttp_request_get_output_headers(r), "Connection", "close");
  const char *uri_text = evhttp_request_get_uri(r);
  size_t line_len = strlen(method) + 1 + (uri_text ? strlen(uri_text) : 0) + 9; /* " HTTP/1.1" */
  size_t headers_len = 0;
  for (struct evkeyval *h = evhttp_request_get_input_headers(r)->tqh_first; h; h = h->next.tqe_next)
    headers_len += strlen(h->key) + 2 + strlen(h->value) + 2;
  if (line_len > LINE_MAX_BYTES || headers_len > HEADERS_MAX_BYTES) {
    char msg[96];
    int status = line_len > LINE_MAX_BYTES ? 414 : 431;
    if (status == 414)
      snprintf(msg, sizeof msg, "the request line is longer than %d bytes", LINE_MAX_BYTES);
    else
      snprintf(msg, sizeof msg, "the request headers are larger than %d bytes in all", HEADERS_MAX_BYTES);
    if (!evhttp_find_header(evhttp_request_get_output_headers(r), "Connection"))
      evhttp_add_header(evhttp_request_get_output_headers(r), "Connection", "close");
    send_error(r, status, msg, NULL);
    observe(srv, "", status, req->start_us);
  } else if (!req->route && !fallback) {
    if (path_known) {
      allowed_methods(srv, req->path, req->allow, sizeof req->allow);
      send_not_allowed(r, method, req->allow);
    } else
      send_error(r, 404, "no such route", NULL);
    observe(srv, "", path_known ? 405 : 404, req->start_us);
  } else if (fallback) {
    /* Its handler answers the 404 or 405 (cqrs_http_req_allow says which,
     * and gives the Allow header's value: not set yet, as the handler may
     * first refuse the request for want of a credential). */
    if (path_known) allowed_methods(srv, req->path, req->allow, sizeof req->allow);
    req->route = fallback;
    req->tail = cqrs_xstrdup(req->path + fallback->tail_at);
    run_handler(req);
    return;
  } else if (body_len > srv->max_body) {
    char msg[96];
    snprintf(msg, sizeof msg, "body is larger than the limit of %zu bytes", srv->max_body);
    send_error(r, 413, msg, NULL);
    observe(srv, req->route->label, 413, req->start_us);
  } else {
    req->tail = cqrs_xstrdup(req->route->prefix || req->route->generality ? req->path + req->route->tail_at : "");
    run_handler(req);
    return;
  }
  req_free(req);
}

int64_t cqrs_http_req_age_ms(const cqrs_http_req_t *req) { return (now_us() - req->start_us) / 1000; }

bool cqrs_http_req_client_gone(const cqrs_http_req_t *req) {
  struct evhttp_connection *c = evhttp_request_get_connection(req->r);
  struct bufferevent *bev = c ? evhttp_connection_get_bufferevent(c) : NULL;
  evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
  if (fd < 0) return false;
  char b;
  ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT); /* 0: the peer's FIN, with nothing before it */
  return n == 0 || (n < 0 && (errno == ECONNRESET || errno == ENOTCONN || errno == EPIPE));
}

const char *cqrs_http_req_method(const cqrs_http_req_t *req) {
  return method_name(evhttp_request_get_command(req->r));
}
const char *cqrs_http_req_path(const cqrs_http_req_t *req) { return req->path; }
const char *cqrs_http_req_tail(const cqrs_http_req_t *req) { return req->tail ? req->tail : ""; }
const char *cqrs_http_req_allow(const cqrs_http_req_t *req) { return req->allow; }

static struct evkeyvalq *query(const cqrs_http_req_t *creq) {
  cqrs_http_req_t *req = (cqrs_http_req_t *)creq; /* parsed lazily, once */
  if (!req->query_parsed) {
    req->query.tqh_first = NULL;
    req->query.tqh_last = &req->query.tqh_first;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req->r);
    const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
    if (q && evhttp_parse_query_str(q, &req->query) != 0) req->query_malformed = true;
    req->query_parsed = true;
  }
  return &req->query;
}

const char *cqrs_http_req_query(const cqrs_http_req_t *req, const char *name) {
  return evhttp_find_header(query(req), name);
}

bool cqrs_http_req_query_unknown(const cqrs_http_req_t *req, const char *const *allowed,
                                 const char **unknown) {
  struct evkeyval *kv;
  if (query(req)->tqh_first == NULL && req->query_malformed) {
    *unknown = ""; /* e.g. "?=x": a parameter without a name */
    return true;
  }
  for (kv = query(req)->tqh_first; kv; kv = kv->next.tqe_next) {
    bool ok = false;
    for (const char *const *a = allowed; *a && !ok; a++) ok = strcmp(*a, kv->key) == 0;
    if (!ok) {
      *unknown = kv->key;
      return true;
    }
  }
  return false;
}

const char *cqrs_http_req_header(const cqrs_http_req_t *req, const char *name) {
  return evhttp_find_header(evhttp_request_get_input_headers(req->r), name);
}

const char *cqrs_http_req_body(cqrs_http_req_t *req, size_t *len) {
  struct evbuffer *in = evhttp_request_get_input_buffer(req->r);
  *len = evbuffer_get_length(in);
  return *len ? (const char *)evbuffer_pullup(in, -1) : "";
}

void cqrs_http_req_add_header(cqrs_http_req_t *req, const char *name, const char *value) {
  evhttp_add_header(evhttp_request_get_output_headers(req->r), name, value);
}

void cqrs_http_reply(cqrs_http_req_t *req, int status, const char *content_type, const char *body,
                     size_t len) {
  evhttp_add_header(evhttp_request_get_output_headers(req->r), "Content-Type", content_type);
  struct evbuffer *buf = evbuffer_new();
  evbuffer_add(buf, body, len);
  evhttp_send_reply(req->r, status, NULL, buf);
  evbuffer_free(buf);
  req->replied = true;
  req->status = status;
  observe(req->loop->srv, req->route ? req->route->label : "", status, req->start_us);
}

int cqrs_http_req_status(const cqrs_http_req_t *req) { return req->status; }

void cqrs_http_reply_json(cqrs_http_req_t *req, int status, const char *json, size_t len) {
  cqrs_http_reply(req, status, "application/json", json, len);
}

void cqrs_http_reply_doc(cqrs_http_req_t *req, int status, const bson_t *doc) {
  size_t len;
  char *json = cqrs_json_write(doc, &len);
  cqrs_http_reply_json(req, status, json, len);
  bson_free(json);
}

void cqrs_http_reply_error(cqrs_http_req_t *req, int status, const char *message, const char *field) {
  send_error(req->r, status, message, field);
  req->replied = true;
  observe(req->loop->srv, req->route ? req->route->label : "", status, req->start_us);
}

void cqrs_http_reply_not_allowed(cqrs_http_req_t *req) {
  send_not_allowed(req->r, cqrs_http_req_method(req), req->allow);
  req->replied = true;
  observe(req->loop->srv, req->route ? req->route->label : "", 405, req->start_us);
}

void cqrs_http_reply_cqrs_error(cqrs_http_req_t *req, const cqrs_error_t *err) {
  cqrs_http_reply_error(req, cqrs_error_http_status(err->code), err->message,
                        err->field[0] ? err->field : NULL);
}

/* ---- deferred requests ---- */

static void deferred_unref(cqrs_http_deferred_t *d) {
  if (atomic_fetch_sub(&d->refs, 1) != 1) return;
  pthread_mutex_destroy(&d->lock);
  for (char **h = d->headers; h && *h; h++) free(*h);
  free(d->headers);
  free(d->body);
  free(d->timeout_json);
  free(d);
}

/* Runs on the loop thread: either the completion woke us or the deadline hit. */
static void deferred_fire_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  cqrs_http_deferred_t *d = arg;
  pthread_mutex_lock(&d->lock);
  bool timed_out = d->state == D_PENDING;
  if (timed_out) d->state = D_TIMED_OUT;
  pthread_mutex_unlock(&d->lock);
  if (timed_out) {
    send_json(d->r, d->timeout_status, d->timeout_json, strlen(d->timeout_json));
    observe(d->srv, d->label, d->timeout_status, d->start_us);
    if (d->on_timeout) d->on_timeout(d, d->ctx);
  } else {
    for (char **h = d->headers; h && h[0] && h[1]; h += 2)
      evhttp_add_header(evhttp_request_get_output_headers(d->r), h[0], h[1]);
    send_json(d->r, d->status, d->body, d->len);
    observe(d->srv, d->label, d->status, d->start_us);
  }
  event_free(d->ev);
  d->ev = NULL;
  deferred_unref(d);
}

cqrs_http_deferred_t *cqrs_http_req_defer(cqrs_http_req_t *req, int timeout_ms, int timeout_status,
                                          const char *timeout_json, cqrs_http_timeout_cb on_timeout,
                                          void *ctx) {
  cqrs_http_deferred_t *d = cqrs_xcalloc(1, sizeof *d);
  pthread_mutex_init(&d->lock, NULL);
  atomic_init(&d->refs, 2); /* the loop's and the caller's */
  d->state = D_PENDING;
  d->r = req->r;
  d->srv = req->loop->srv;
  d->label = req->route ? req->route->label : "";
  d->start_us = req->start_us;
  d->timeout_status = timeout_status;
  d->timeout_json = cqrs_xstrdup(timeout_json);
  d->on_timeout = on_timeout;
  d->ctx = ctx;
  d->ev = event_new(req->loop->base, -1, 0, deferred_fire_cb, d);
  struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
  event_add(d->ev, &tv);
  req->replied = true;
  return d;
}

bool cqrs_http_deferred_complete(cqrs_http_deferred_t *d, int status, const char *json, size_t len) {
  return cqrs_http_deferred_complete_headers(d, status, NULL, json, len);
}

/* A NULL-terminated copy of a NULL-terminated list of strings (NULL for NULL). */
static char **strv_dup(const char *const *v) {
  if (!v) return NULL;
  size_t n = 0;
  while (v[n]) n++;
  char **out = cqrs_xcalloc(n + 1, sizeof *out);
  for (size_t i = 0; i < n; i++) out[i] = cqrs_xstrdup(v[i]);
  return out;
}

bool cqrs_http_deferred_complete_headers(cqrs_http_deferred_t *d, int status, const char *const *headers,
                                         const char *json, size_t len) {
  pthread_mutex_lock(&d->lock);
  bool pending = d->state == D_PENDING;
  if (pending) {
    d->state = D_DONE;
    d->status = status;
    d->headers = strv_dup(headers);
    d->body = cqrs_xmalloc(len ? len : 1);
    memcpy(d->body, json, len);
    d->len = len;
    /* The loop still holds its reference, so d->ev is alive here. */
    event_active(d->ev, EV_READ, 0);
  }
  pthread_mutex_unlock(&d->lock);
  deferred_unref(d);
  return pending;
}

void cqrs_http_deferred_release(cqrs_http_deferred_t *d) {
  if (d) deferred_unref(d);
}
