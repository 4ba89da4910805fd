/* MongoDB helpers. */
#include "cqrs/mongo.h"

#include <pthread.h>

/* The driver's own log lines: warnings and errors only. Its debug lines (a
 * line per failed heartbeat while the store is down) drown the service's. */
static void driver_log(mongoc_log_level_t level, const char *domain, const char *message, void *ctx) {
  if (level <= MONGOC_LOG_LEVEL_WARNING) mongoc_log_default_handler(level, domain, message, ctx);
}

static void init_once(void) {
  mongoc_init();
  mongoc_log_set_handler(driver_log, NULL);
}

mongoc_client_pool_t *cqrs_mongo_pool_new(const cqrs_config_t *cfg, const char *app_name,
                                          cqrs_error_t *err) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, init_once);
  bson_error_t berr;
  mongoc_uri_t *uri = mongoc_uri_new_with_error(cfg->mongo_uri, &berr);
  if (!uri) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "MONGO_URI", "MONGO_URI: %s", berr.message);
    return NULL;
  }
  /* Fail fast instead of waiting 30 s for a server that is not there. */
  int32_t bound = cfg->mongo_timeout_ms > 0 ? cfg->mongo_timeout_ms : 5000;
  /* Finding no server is known fast: at most 5 s even when MONGO_TIMEOUT_MS
   * allows long answers (the projector's bulk writes). */
  if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, bound < 5000 ? bound : 5000);
  /* MONGO_TIMEOUT_MS also bounds connecting and every socket wait: a store
   * that accepts but never answers costs that long, not the driver's default
   * socketTimeoutMS of 5 minutes. Options in the URI win. */
  if (cfg->mongo_timeout_ms > 0) {
    if (!mongoc_uri_has_option(uri, MONGOC_URI_CONNECTTIMEOUTMS))
      mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, bound);
    if (!mongoc_uri_has_option(uri, MONGOC_URI_SOCKETTIMEOUTMS))
      mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, bound);
  }
  if (!mongoc_uri_has_option(uri, MONGOC_URI_APPNAME)) mongoc_uri_set_appname(uri, app_name);
  mongoc_client_pool_t *pool = mongoc_client_pool_new(uri);
  mongoc_uri_destroy(uri);
  if (!pool) cqrs_error_set(err, CQRS_ERR_INVALID, "MONGO_URI", "MONGO_URI is not usable");
  else mongoc_client_pool_set_error_api(pool, MONGOC_ERROR_API_VERSION_2);
  return pool;
}

bool cqrs_mongo_ping(mongoc_client_pool_t *pool, const char *db, cqrs_error_t *err) {
  mongoc_client_t *client = mongoc_client_pool_pop(pool);
  bson_t cmd = BSON_INITIALIZER;
  BSON_APPEND_INT32(&cmd, "ping", 1);
  bson_error_t berr;
  bool ok = mongoc_client_command_simple(client, db, &cmd, NULL, NULL, &berr);
  if (!ok) cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "MongoDB ping: %s", berr.message);
  bson_destroy(&cmd);
  mongoc_client_pool_push(pool, client);
  return ok;
}
