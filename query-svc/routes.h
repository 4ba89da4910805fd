/* query-svc routes: one file per resource under routes/, all reading MongoDB
 * only. Each registers its handlers on the HTTP server. */
#ifndef CQRS_ROUTES_H
#define CQRS_ROUTES_H

#include "cqrs/auth.h"
#include "cqrs/metrics.h"
#include "cqrs/ratelimit.h"
#include "cqrs/http.h"
#include "cqrs/log.h"
#include "params.h"
#include "pg_lists.h"
#include "projection.h"
#include "single_read.h"
#include "staleness.h"
#include "tenant_store.h"
#include "waiters.h"

#include <mongoc/mongoc.h>

/* API routes of query-svc (gates below); a few spare. */
#define CQRS_ROUTES_MAX 16

typedef struct cqrs_routes_ctx cqrs_routes_ctx_t;

/* One request that passed the gate: the service's parts and who is asking.
 * Only the gate (cqrs_routes_add) makes one, and a route can reach a read
 * model only through it (cqrs_routes_collection), so every read is the
 * verified tenant's. */
typedef struct {
  const cqrs_routes_ctx_t *ctx;
  cqrs_principal_t who;
  const void *arg; /* the route's own (cqrs_routes_add_arg), borrowed */
} cqrs_routes_call_t;

/* An API route's handler: runs after the gate let req through. */
typedef void (*cqrs_routes_handler_cb)(cqrs_http_req_t *req, const cqrs_routes_call_t *call);

typedef struct {
  cqrs_routes_ctx_t *ctx;
  cqrs_routes_handler_cb cb;
  const void *arg;
} cqrs_routes_gate_t;

struct cqrs_routes_ctx {
  mongoc_client_pool_t *pool; /* borrowed */
  const cqrs_log_t *log;      /* borrowed */
  cqrs_auth_t *auth;          /* borrowed: who is asking */
  cqrs_tenant_store_t *store; /* borrowed: where each tenant's read models are */
  cqrs_waiters_t *waiters;    /* borrowed: the hub that answers waiting single reads */
  cqrs_ratelimit_t *limits;   /* borrowed: each tenant's query rate (429 past it) */
  cqrs_metrics_t *metrics;    /* borrowed */
  cqrs_staleness_t *staleness; /* borrowed: how fresh each read model is; NULL: no freshness headers */
  cqrs_pg_lists_t *pg_lists;   /* borrowed: keyset lists through FerretDB's PostgreSQL; NULL: the store's finds */
  int snapshot_every;         /* SNAPSHOT_EVERY: where time travel finds snapshots; 0: it folds from the start */
  cqrs_routes_gate_t gates[CQRS_ROUTES_MAX]; /* the routes' own: ctx must not move once routes are added */
  size_t n_gates;
};

/* Adds an API route (cqrs_http_server_route's method, path and label) behind
 * the gate: cqrs_auth_http with the scope queries:read first (401, 403 and
 * their WWW-Authenticate answered there), then 403 for a credential of no
 * tenant (a platform administrator reads no tenant's documents), then cb. */
void cqrs_routes_add(cqrs_http_server_t *http, cqrs_routes_ctx_t *ctx, const char *method, const char *path,
                     const char *label, cqrs_routes_handler_cb cb);

/* cqrs_routes_add for a route described by a row: cb finds arg (borrowed for
 * the life of the server) in call->arg. */
void cqrs_routes_add_arg(cqrs_http_server_t *http, cqrs_routes_ctx_t *ctx, const char *method, const char *path,
                         const char *label, cqrs_routes_handler_cb cb, const void *arg);

/* The collection that currently serves read_model for the caller's tenant:
 * in its database "<MONGO_DB>_<tenant>", the collection a rebuild may have
 * swapped in. Free with mongoc_collection_destroy. NULL with err when the
 * alias had to be re-read and the store did not answer: the caller answers
 * 503 at once rather than wait on the store a second time. */
mongoc_collection_t *cqrs_routes_collection(const cqrs_routes_call_t *call, mongoc_client_t *client,
                                            const char *read_model, cqrs_error_t *err);

/* Where the collection serving read_model for the caller's tenant is, as
 * cqrs_routes_collection finds it, into *at. False with err as it. */
bool cqrs_routes_locate(const cqrs_routes_call_t *call, mongoc_client_t *client, const char *read_model,
                        cqrs_tenant_place_t *at, cqrs_error_t *err);

/* ---- the registry (routes/registry.c) ----
 *
 * Each route file exports one row, cqrs_routes_<name>, listed once in
 * routes/registry.c; main.c adds them all, POST /v1/query finds every
 * resource's seed queries, and the freshness watch covers every read model
 * named, from that one list. */
typedef struct cqrs_routes_query cqrs_routes_query_t;

typedef struct {
  const char *read_model;             /* the read model it serves (freshness watched); NULL: none of its own */
  const cqrs_routes_query_t *queries; /* its seed queries (POST /v1/query), ended by a NULL name; NULL: none */
  void (*add)(cqrs_http_server_t *http, cqrs_routes_ctx_t *ctx); /* adds its routes (cqrs_routes_add...) */
} cqrs_routes_resource_t;

/* Room for the read models the resources name, and the NULL after them. */
#define CQRS_ROUTES_RESOURCES_MAX 16

/* Every resource, NULL-terminated. */
extern const cqrs_routes_resource_t *const cqrs_routes_resources[];

/* Adds every resource's routes to http, ctx borrowed for its life. */
void cqrs_routes_add_all(cqrs_http_server_t *http, cqrs_routes_ctx_t *ctx);

/* The read models the resources serve, each once, into out[0..n), out[n]
 * NULL; max is out's room (CQRS_ROUTES_RESOURCES_MAX). Returns n. */
size_t cqrs_routes_read_models(const char **out, size_t max);

/* Adds read_model's freshness headers to req's answer:
 * X-Read-Model-Lag-Ms (ms since its projector last had applied the whole
 * log) and X-Read-Model-Lag-Events (events behind at its last report); none
 * while unknown. */
void cqrs_routes_freshness(cqrs_http_req_t *req, const cqrs_routes_call_t *call, const char *read_model);

/* Ends a page whose items out holds after '{"items":[': appends
 * '],"nextCursor":' with next (a cursor, or null when NULL) and '}'. */
void cqrs_routes_end_page(bson_string_t *out, const char *next);

/* Logs a failed store read (why) and answers 503 {"error": "the read store
 * did not answer"}. */
void cqrs_routes_reply_no_store(cqrs_http_req_t *req, const cqrs_routes_call_t *call, const char *read_model,
                                const char *why);

/* Answers with the first document (in read's sort order) of read's read
 * model (of the caller's tenant) whose read->field equals value, without _id, or 404 with
 * read->not_found. Honours read-your-writes: with minVersion=N and waitMs=M
 * among the parameters p (URL or POST /v1/query body) a read that is not
 * fresh yet is handed to the waiter hub (waiters.h), which answers once the
 * document's version >= N, or after M ms with X-Stale: true (404 when still
 * absent). Logs and answers 503 when the store fails. Single-read routes must
 * allow CQRS_ROUTES_WAIT_PARAMS. */
#define CQRS_ROUTES_WAIT_PARAMS "minVersion", "waitMs"

void cqrs_routes_find_one(cqrs_http_req_t *req, const cqrs_routes_call_t *call, const cqrs_single_read_t *read,
                          const char *value, const cqrs_params_t *p);

/* Answers 400 naming the first query parameter not in allowed; returns false
 * then. */
bool cqrs_routes_check_params(cqrs_http_req_t *req, const char *const *allowed);

/* ---- queries: one function per seed query, reachable by route and by
 * POST /v1/query ---- */

/* Runs one query from its parameters (names already checked against the
 * query's list) and answers req exactly once. */
typedef void (*cqrs_routes_query_cb)(cqrs_http_req_t *req, const cqrs_routes_call_t *call,
                                     const cqrs_params_t *params);

struct cqrs_routes_query {
  const char *name;          /* seed query name, e.g. "GetOrder"; NULL ends a table */
  const char *const *params; /* the parameters it takes, NULL-terminated */
  cqrs_routes_query_cb run;
};

/* The parameters of a GET: the query string's members named in allowed (400
 * naming the first other one, or one given twice), plus path_name = the path's
 * tail when path_name is not NULL. Returns a set to cqrs_params_destroy, or
 * NULL once it has answered 400. */
cqrs_params_t *cqrs_routes_query_params(cqrs_http_req_t *req, const char *const *allowed,
                                        const char *path_name);

/* Answers err (a 400 naming its parameter, usually) and returns false. */
bool cqrs_routes_reply_invalid(cqrs_http_req_t *req, const cqrs_error_t *err);

/* Answers one page of a list: the documents of read_model (of the caller's
 * tenant) matching filter, in
 * (sort_field, _id) order, at most the "limit" parameter of them, after the
 * position in the "cursor" parameter, as {"items": [...without _id],
 * "nextCursor": "..."|null}. list names the list inside its cursors, so a
 * cursor of another list is refused (400 naming "cursor"); so are a bad limit
 * or cursor. Logs and answers 503 when the store fails. On FerretDB over
 * PostgreSQL (ctx->pg_lists), a list that pages on a keyset index of its read
 * model is read through that index (pg_lists.h): the same items, order and
 * cursors, a cursor whose position is not two strings refused (400), and 503
 * when PostgreSQL fails. */
void cqrs_routes_find_page(cqrs_http_req_t *req, const cqrs_routes_call_t *call, const char *read_model,
                           const char *list, const bson_t *filter, const char *sort_field,
                           const cqrs_params_t *params);

/* How a read model's documents show as list items, beyond leaving out _id:
 * each list NULL-terminated, or NULL for none. */
typedef struct {
  const char *const *hidden; /* fields left out (they only serve queries) */
  const char *const *always; /* fields shown null when a document lacks them
                                (one recorded before the field was) */
  /* Not NULL: the document as it shows, into out (initialised by it,
   * destroyed by the caller), before hidden and always apply. */
  void (*shape)(const bson_t *doc, bson_t *out);
} cqrs_routes_item_t;

/* A list page in full: cqrs_routes_find_page's arguments, plus the order
 * (descending: newest first, cursors continue downwards) and what an empty
 * first page means. Borrowed by the call. */
typedef struct {
  const char *read_model;
  const char *list; /* names the list (and its order) inside its cursors */
  const bson_t *filter;
  const char *sort_field;
  bool descending;
  const char *not_found; /* not NULL: an empty first page answers 404 with it */
  const cqrs_routes_item_t *item; /* not NULL: how the documents show as items */
} cqrs_routes_page_t;

/* doc as a list item: JSON without _id, shaped by item (may be NULL). A
 * string to bson_free. */
char *cqrs_routes_item_json(const bson_t *doc, const cqrs_routes_item_t *item);

/* How event_history documents show: their data upcast to the current
 * schema version (cqrs_event_history_upcast: schemaVersion the data's,
 * writtenSchemaVersion the stored one), without the fields that serve its
 * queries, with actor always there. */
extern const cqrs_routes_item_t cqrs_routes_history_item;

void cqrs_routes_find_page_with(cqrs_http_req_t *req, const cqrs_routes_call_t *call, const cqrs_routes_page_t *page,
                                const cqrs_params_t *params);

/* A page read segment by segment: each segment one find (an equality the
 * store pushes down, e.g. one hour or one version block), in order, until
 * the page is full or the segments end. */
typedef struct {
  const char *read_model; /* where (the caller's tenant's collection) */
  const char *key;        /* the sort key, whose value the cursor carries with _id */
  const cqrs_routes_item_t *item; /* how the documents show as items */
  bool empty_ends;        /* a segment that yields nothing ends the page */
  /* Segment i's filter and sort (both begun, to append to; last_key is the
   * last item's key so far, empty before the first). Returns false when
   * there is no segment i. */
  bool (*segment)(void *ctx, size_t i, const bson_value_t *last_key, bson_t *filter, bson_t *sort);
  void *ctx;
} cqrs_routes_segments_t;

/* Reads up to limit items of s's segments after *n already in out, appending
 * them to out (comma-separated) and counting them in *n; *more set when
 * another item follows; *last_key and *last_id are the last item's (copies:
 * bson_value_destroy them). False with err (the store failed). */
bool cqrs_routes_read_segments(const cqrs_routes_call_t *call, const cqrs_routes_segments_t *s, int limit,
                               bson_string_t *out, int *n, bool *more, bson_value_t *last_key, bson_value_t *last_id,
                               cqrs_error_t *err);

/* ---- aggregates: the document, then and now, and the history (routes/aggregate.c) ---- */

/* The parameters of time travel on a single read (GET .../{id}): the
 * document as it was at a moment or at a version. */
#define CQRS_ROUTES_TIME_PARAMS "asOf", "atVersion"

/* The read model every history and time travel reads: one document per event. */
#define CQRS_ROUTES_HISTORY "event_history"

/* One aggregate's routes as one row, declared static const in its resource's
 * file: GET <path>{id} (its read model's document, by get) and GET
 * <path>{id}/history (its events in version order, keyset pages). */
typedef struct {
  const char *path;                    /* the prefix route, "/v1/users/" */
  const char *label;                   /* "/v1/users/{userId}"; history requests count under it too */
  const char *id_param;                /* "userId": the id's parameter name */
  const char *aggregate_type;          /* "user": whose events its history holds */
  const cqrs_single_read_t *read;      /* the document by _id, now */
  const cqrs_projection_t *projection; /* what writes it: time travel applies it to the history */
  const char *no_history;              /* the history's 404: "no such user" */
  cqrs_routes_query_cb get;            /* the single read (a seed query); takes id_param,
                                          CQRS_ROUTES_WAIT_PARAMS and CQRS_ROUTES_TIME_PARAMS */
} cqrs_routes_aggregate_t;

/* Adds agg's prefix route: "{id}/history" answers the history, anything else
 * is the id of a single read answered by agg->get. */
void cqrs_routes_add_aggregate(cqrs_http_server_t *http, cqrs_routes_ctx_t *ctx, const cqrs_routes_aggregate_t *agg);

/* The single read of agg's document id: with asOf=<RFC 3339> or atVersion=<n>
 * among p, the document as it was then, recomputed by agg's projection
 * (time_travel.h) from the nearest snapshot at or before it (CQRS_SNAPSHOTS;
 * none: from the beginning) and the history after it, with
 * X-Read-Model-Version (404 when it did not exist yet, or the version is
 * beyond the aggregate's last); otherwise the stored document
 * (cqrs_routes_find_one). asOf is the document after the aggregate's events
 * up to the first one later than asOf (event times are not promised to grow
 * with versions across command-svc instances' clocks; this keeps a prefix of
 * the history, as snapshots do). Counted in time_travels_total{read_model,
 * base="snapshot"|"none"} and time_travel_events_total{read_model} (events
 * folded). */
void cqrs_routes_find_aggregate(cqrs_http_req_t *req, const cqrs_routes_call_t *call,
                                const cqrs_routes_aggregate_t *agg, const char *id, const cqrs_params_t *p);


#endif
