/* query-svc routes: one file per resource under routes/, all reading MongoDB
 * only. Each registers its handlers on the HTTP server. */
#ifndef CQRS_ROUTES_H
#define CQRS_ROUTES_H

#include "cqrs/http.h"
#include "cqrs/log.h"

#include <mongoc/mongoc.h>

typedef struct {
  mongoc_client_pool_t *pool; /* borrowed */
  const char *db;             /* borrowed */
  const cqrs_log_t *log;      /* borrowed */
} cqrs_routes_ctx_t;

/* The collection that currently serves read_model (a rebuild may have swapped
 * in a new one). Free with mongoc_collection_destroy. */
mongoc_collection_t *cqrs_routes_collection(const cqrs_routes_ctx_t *ctx, mongoc_client_t *client,
                                            const char *read_model);

/* Answers with the first document of collection matching filter (without
 * _id), or 404 with not_found. Honours read-your-writes: with minVersion=N
 * and waitMs=M in the query it answers once the document's version >= N, or
 * after M ms with X-Stale: true (404 when still absent). Logs and answers 503
 * when the store fails. Single-read routes must allow CQRS_ROUTES_WAIT_PARAMS. */
#define CQRS_ROUTES_WAIT_PARAMS "minVersion", "waitMs"

void cqrs_routes_find_one(cqrs_http_req_t *req, const cqrs_routes_ctx_t *ctx, const char *collection,
                          const bson_t *filter, const bson_t *sort, const char *not_found);

/* Answers 400 naming the first query parameter not in allowed; returns false
 * then. */
bool cqrs_routes_check_params(cqrs_http_req_t *req, const char *const *allowed);

void cqrs_routes_users(cqrs_http_server_t *http, cqrs_routes_ctx_t *ctx);

#endif
