/* HTTP server on libevent's evhttp: one event loop per thread, all sharing the
 * port with SO_REUSEPORT so the kernel spreads connections over the cores.
 * Why evhttp: on this machine kind (2 cores, 70-byte JSON answer, wrk -t1 -c64)
 * it served 50k req/s with one loop and 62k with one loop per core, against
 * 84-96k for nginx and about 15k for libmicrohttpd in every threading mode.
 *
 * Threads: handlers run on the loop thread that accepted the connection; a
 * handler may block briefly (a store read) but holds up only its own loop.
 * Replies must be sent from that loop thread: to answer from another thread,
 * defer the request (cqrs_http_req_defer) and complete it from anywhere. */
#ifndef CQRS_HTTP_H
#define CQRS_HTTP_H

#include "cqrs/error.h"

#include <bson/bson.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cqrs_http_server cqrs_http_server_t;
typedef struct cqrs_http_req cqrs_http_req_t;
typedef struct cqrs_http_deferred cqrs_http_deferred_t;

/* A route handler. req is valid until the handler returns; the handler must
 * reply or defer it (cqrs_http_req_defer). */
typedef void (*cqrs_http_handler_cb)(cqrs_http_req_t *req, void *ctx);

/* Called once a reply went out: route label ("" when no route matched), HTTP
 * status and the time from request to reply. Runs on a loop thread. */
typedef void (*cqrs_http_observer_cb)(const char *route, int status, int64_t micros, void *ctx);

/* Called on the loop thread after a deferred request timed out and its timeout
 * reply went out, so the owner can forget it (and release its reference). */
typedef void (*cqrs_http_timeout_cb)(cqrs_http_deferred_t *d, void *ctx);

/* Creates a server for port with threads event loops. Bodies larger than
 * max_body get 413 with a JSON error. Returns NULL with err when the port
 * cannot be bound. Routes are added before cqrs_http_server_start. */
cqrs_http_server_t *cqrs_http_server_new(int port, int threads, size_t max_body, cqrs_error_t *err);

/* As cqrs_http_server_new, listening only on the IPv4 address addr (e.g.
 * "127.0.0.1"); NULL: every interface. */
cqrs_http_server_t *cqrs_http_server_new_at(const char *addr, int port, int threads, size_t max_body,
                                            cqrs_error_t *err);

/* Adds a route. method is "GET", "POST", "PUT" or "DELETE" (HEAD is served
 * as GET). path is an exact path; or a pattern whose "{name}" segments each
 * match one non-empty segment ("/v1/dlq/{id}/redrive"); or a prefix when it
 * ends with '/': "/v1/users/" matches "/v1/users/42/x". cqrs_http_req_tail
 * gives the path from the first placeholder on ("42/redrive"), or after the
 * prefix; "/" alone is exact (the site root). Of the routes whose path
 * matches a request's, only the most specific serve it (a literal path before
 * a pattern, a pattern with fewer placeholders first, prefixes last; among
 * equals, the first added): they decide its method (405 with their Allow
 * otherwise). label names the route in metrics and logs. */
void cqrs_http_server_route(cqrs_http_server_t *srv, const char *method, const char *path,
                            const char *label, cqrs_http_handler_cb cb, void *ctx);

/* Hands the requests under prefix (ending in '/') that no route serves to cb
 * instead of the default JSON 404 or 405, e.g. to authenticate first or to
 * answer in another error format. cqrs_http_req_allow tells which answer is
 * due; cb adds the Allow header to a 405 (the router does not, so that a
 * refusal before it says nothing about the path). */
void cqrs_http_server_fallback(cqrs_http_server_t *srv, const char *prefix, const char *label,
                               cqrs_http_handler_cb cb, void *ctx);

/* Sets the reply observer (metrics). Call before start. */
void cqrs_http_server_set_observer(cqrs_http_server_t *srv, cqrs_http_observer_cb cb, void *ctx);

/* Starts the loop threads. False with err when a thread cannot start. */
bool cqrs_http_server_start(cqrs_http_server_t *srv, cqrs_error_t *err);

/* Stops accepting, breaks every loop and joins the threads. Any thread; safe
 * to call twice. Requests still deferred are dropped. */
void cqrs_http_server_stop(cqrs_http_server_t *srv);

/* Stops the server if running and frees it. NULL is fine. */
void cqrs_http_server_destroy(cqrs_http_server_t *srv);

/* The port actually bound (useful with port 0). */
int cqrs_http_server_port(const cqrs_http_server_t *srv);

/* Request accessors. Strings are borrowed from req. */
const char *cqrs_http_req_method(const cqrs_http_req_t *req);
const char *cqrs_http_req_path(const cqrs_http_req_t *req);
/* The URL-decoded rest of the path from a pattern route's first placeholder
 * on, or after a prefix route's prefix (a fallback's too); "" for exact routes. */
const char *cqrs_http_req_tail(const cqrs_http_req_t *req);
/* In a fallback: the methods the routes of the path accept, as in the Allow
 * header ("GET, HEAD"), "" when no route has the path (a 404 is due). "" in
 * a route's own handler. cqrs_http_reply_not_allowed answers the 405. */
const char *cqrs_http_req_allow(const cqrs_http_req_t *req);
/* A decoded query parameter, NULL when absent. */
const char *cqrs_http_req_query(const cqrs_http_req_t *req, const char *name);
/* True when the query has a parameter not in allowed (NULL-terminated); its
 * name is written to *unknown ("" for a query string that does not parse,
 * such as "?=x", whose parameters would otherwise all look absent). */
bool cqrs_http_req_query_unknown(const cqrs_http_req_t *req, const char *const *allowed,
                                 const char **unknown);
const char *cqrs_http_req_header(const cqrs_http_req_t *req, const char *name);
/* The body, contiguous; *len may be 0. Not NUL-terminated. */
const char *cqrs_http_req_body(cqrs_http_req_t *req, size_t *len);

/* True when req's server has a route for method on path (routes are fixed
 * once the server runs, so any loop thread may ask). */
bool cqrs_http_req_route_exists(const cqrs_http_req_t *req, const char *method, const char *path);

/* Adds a header to the reply (before replying). */
void cqrs_http_req_add_header(cqrs_http_req_t *req, const char *name, const char *value);

/* Replies with a body of the given content type. */
void cqrs_http_reply(cqrs_http_req_t *req, int status, const char *content_type,
                     const char *body, size_t len);
/* Replies with a JSON body. */
void cqrs_http_reply_json(cqrs_http_req_t *req, int status, const char *json, size_t len);
/* Replies with doc written as JSON (cqrs/json.h's writer); doc is borrowed. */
void cqrs_http_reply_doc(cqrs_http_req_t *req, int status, const bson_t *doc);
/* The status req was answered with by a cqrs_http_reply* call, 0 before (or
 * when it was deferred). For what a handler does after answering (an audit). */
int cqrs_http_req_status(const cqrs_http_req_t *req);
/* Replies {"error": message, "field": field} (field omitted when NULL). */
void cqrs_http_reply_error(cqrs_http_req_t *req, int status, const char *message, const char *field);
/* In a fallback, for a path whose routes take other methods: the router's
 * own 405 (Allow: cqrs_http_req_allow, a JSON error naming them). */
void cqrs_http_reply_not_allowed(cqrs_http_req_t *req);
/* Replies with err's status and body. */
void cqrs_http_reply_cqrs_error(cqrs_http_req_t *req, const cqrs_error_t *err);

/* Milliseconds since req arrived. */
int64_t cqrs_http_req_age_ms(const cqrs_http_req_t *req);

/* Whether the client closed (or reset) req's connection after sending it,
 * sending nothing more: no answer can reach it. A peek at the socket, nothing
 * read. A client that shuts down only its sending side to wait for the answer
 * looks the same, and is taken as gone. Loop thread. */
bool cqrs_http_req_client_gone(const cqrs_http_req_t *req);

/* Takes over req so it can be answered later, from any thread. After
 * timeout_ms without completion the loop answers timeout_status with
 * timeout_json and calls on_timeout (may be NULL). Returns a handle holding one
 * reference for the caller, released by complete or release. */
cqrs_http_deferred_t *cqrs_http_req_defer(cqrs_http_req_t *req, int timeout_ms, int timeout_status,
                                          const char *timeout_json, cqrs_http_timeout_cb on_timeout,
                                          void *ctx);

/* Answers a deferred request with a JSON body, from any thread, and releases
 * the caller's reference. False when it had already timed out (nothing sent). */
bool cqrs_http_deferred_complete(cqrs_http_deferred_t *d, int status, const char *json, size_t len);

/* As cqrs_http_deferred_complete, with extra reply headers: headers is a
 * NULL-terminated list of name, value pairs, e.g. {"X-Stale", "true", NULL}
 * (copied; NULL means none). Any thread; false when it had already timed out
 * (nothing sent). */
bool cqrs_http_deferred_complete_headers(cqrs_http_deferred_t *d, int status, const char *const *headers,
                                         const char *json, size_t len);

/* Releases the caller's reference without answering. */
void cqrs_http_deferred_release(cqrs_http_deferred_t *d);

#endif
