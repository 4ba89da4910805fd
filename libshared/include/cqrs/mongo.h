/* MongoDB helpers over libmongoc: one client pool per process, a probe. */
#ifndef CQRS_MONGO_H
#define CQRS_MONGO_H

#include "cqrs/config.h"
#include "cqrs/error.h"

#include <mongoc/mongoc.h>

/* A client pool for cfg->mongo_uri (calls mongoc_init once per process).
 * With cfg->mongo_timeout_ms > 0 (MONGO_TIMEOUT_MS) every wait on the store
 * (connect, each socket read or write) is bounded by it, and server selection
 * by it or 5 s, whichever is shorter; otherwise only server selection is
 * (5 s). Options given in the URI win.
 * NULL with err when the URI is invalid. Free with mongoc_client_pool_destroy. */
mongoc_client_pool_t *cqrs_mongo_pool_new(const cqrs_config_t *cfg, const char *app_name,
                                          cqrs_error_t *err);

/* True when the server answers ping. Takes a client from pool for the call;
 * bounded by the pool's timeouts (see cqrs_mongo_pool_new). */
bool cqrs_mongo_ping(mongoc_client_pool_t *pool, const char *db, cqrs_error_t *err);

#endif
