/* The schema registry store of admin-svc: reader, producer, and registration
 * by write, read back, first wins (schema_writer.h). */
#include "schema_writer.h"

#include "writer.h"

#include "cqrs/alloc.h"
#include "cqrs/event_schema.h"
#include "cqrs/worker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REGISTER_TRIES 5 /* races lost in a row before answering 503 */

struct admin_schemas {
  cqrs_log_t log;
  int timeout_ms;
  char *topic;
  cqrs_schemas_t *reg;
  cqrs_schemas_reader_t *reader;
  rd_kafka_t *rk;
  pthread_mutex_t mu; /* one write at a time */
  /* bootstrap.c */
  cqrs_worker_t boot;
  atomic_bool bootstrapped;
};

admin_schemas_t *admin_schemas_new(const cqrs_config_t *cfg, const cqrs_log_t *log, int timeout_ms,
                                   cqrs_error_t *err) {
  admin_schemas_t *w = cqrs_xcalloc(1, sizeof *w);
  if (!(w->topic = cqrs_config_topic(cfg, CQRS_TOPIC_SCHEMAS)) || !(w->reg = cqrs_schemas_new())) {
    cqrs_error_set(err, CQRS_ERR_FATAL, NULL, "out of memory making the schema registry");
    free(w->topic);
    free(w);
    return NULL;
  }
  w->log = *log;
  w->timeout_ms = timeout_ms;
  pthread_mutex_init(&w->mu, NULL);
  atomic_init(&w->bootstrapped, false);
  if (!(w->reader = cqrs_schemas_reader_start(cfg, log, w->reg, err)) ||
      !(w->rk = admin_producer_new(cfg, log, timeout_ms, err))) {
    admin_schemas_destroy(w);
    return NULL;
  }
  return w;
}

void admin_schemas_destroy(admin_schemas_t *w) {
  if (!w) return;
  cqrs_worker_stop(&w->boot);
  if (w->rk) {
    rd_kafka_flush(w->rk, w->timeout_ms);
    rd_kafka_destroy(w->rk);
  }
  cqrs_schemas_reader_stop(w->reader);
  cqrs_schemas_destroy(w->reg);
  pthread_mutex_destroy(&w->mu);
  free(w->topic);
  free(w);
}

cqrs_schemas_t *admin_schemas_registry(admin_schemas_t *w) { return w->reg; }

bool admin_schemas_caught_up(admin_schemas_t *w) { return cqrs_schemas_reader_caught_up(w->reader); }

bool admin_schemas_sync(admin_schemas_t *w, cqrs_error_t *err) {
  return cqrs_schemas_reader_sync(w->reader, w->timeout_ms, err);
}

/* Writes one record and reads the topic back past it. @locks w->mu held */
static bool write_record(admin_schemas_t *w, char *key, char *value, size_t len, cqrs_error_t *err) {
  admin_record_t rec = {.key = key, .value = value, .value_len = len};
  bool ok = key && value;
  if (!ok) cqrs_error_set(err, CQRS_ERR_INTERNAL, NULL, "out of memory writing a schemas record");
  ok = ok && admin_produce(w->rk, w->topic, &rec, w->timeout_ms, err) && admin_schemas_sync(w, err);
  free(key);
  free(value);
  return ok;
}

/* One try: decide from what this process has read, write the next version,
 * read back. Sets *lost when another record took that version first.
 * @locks w->mu held */
static admin_schema_outcome_t try_register(admin_schemas_t *w, const char *subject, const char *canonical,
                                           const cqrs_jsonschema_t *compiled, bool check, cqrs_schema_version_t *out,
                                           cqrs_compat_messages_t *msgs, bool *lost, cqrs_error_t *err) {
  *lost = false;
  if (!admin_schemas_sync(w, err)) return ADMIN_SCHEMA_FAILED;
  if (cqrs_schemas_find(w->reg, subject, canonical, out)) return ADMIN_SCHEMA_EXISTS;
  int32_t id = cqrs_schema_id(canonical);
  if (cqrs_schemas_id_taken(w->reg, id, canonical)) {
    cqrs_error_set(err, CQRS_ERR_INTERNAL, NULL,
                   "schema id %d is taken by another schema (a hash collision); change the schema (e.g. its "
                   "description) and register again",
                   (int)id);
    return ADMIN_SCHEMA_FAILED;
  }
  cqrs_compat_messages_cleanup(msgs);
  if (check &&
      !cqrs_schemas_check(w->reg, subject, compiled, cqrs_schemas_effective_level(w->reg, subject), 0, msgs))
    return ADMIN_SCHEMA_INCOMPATIBLE;
  int version = cqrs_schemas_latest(w->reg, subject) + 1;
  size_t len = 0;
  char *value = cqrs_schemas_version_json(subject, version, id, canonical, &len);
  if (!write_record(w, cqrs_schemas_version_key(subject, version, id), value, len, err)) return ADMIN_SCHEMA_FAILED;
  if (cqrs_schemas_find(w->reg, subject, canonical, out)) return ADMIN_SCHEMA_REGISTERED;
  *lost = true;
  return ADMIN_SCHEMA_FAILED;
}

admin_schema_outcome_t admin_schemas_register(admin_schemas_t *w, const char *subject, const char *canonical,
                                              const cqrs_jsonschema_t *compiled, bool check,
                                              cqrs_schema_version_t *out, cqrs_compat_messages_t *msgs,
                                              cqrs_error_t *err) {
  admin_schema_outcome_t outcome = ADMIN_SCHEMA_FAILED;
  bool lost = true;
  pthread_mutex_lock(&w->mu);
  for (int i = 0; i < REGISTER_TRIES && lost; i++) {
    outcome = try_register(w, subject, canonical, compiled, check, out, msgs, &lost, err);
    if (lost) cqrs_log_info(&w->log, "schema registration lost a race; retrying", "subject", subject, NULL);
  }
  pthread_mutex_unlock(&w->mu);
  if (lost)
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "other registrations of subject %s kept winning; retry",
                   subject);
  if (outcome == ADMIN_SCHEMA_FAILED && err && err->code == CQRS_ERR_UNAVAILABLE)
    cqrs_log_warn(&w->log, "schema registration failed", "subject", subject, "error", err->message, NULL);
  return outcome;
}

bool admin_schemas_set_level(admin_schemas_t *w, const char *subject, cqrs_compat_level_t level, cqrs_error_t *err) {
  size_t len = 0;
  pthread_mutex_lock(&w->mu);
  char *value = cqrs_schemas_config_json(level, &len);
  bool ok = write_record(w, cqrs_schemas_config_key(subject), value, len, err);
  pthread_mutex_unlock(&w->mu);
  return ok;
}

/* ---- bootstrap: the contract's own schemas ---- */

static void register_contract(admin_schemas_t *w, const cqrs_event_type_t *t, bool *done) {
  size_t len;
  char *json = cqrs_event_json_schema(t, &len);
  cqrs_error_t err = {0};
  cqrs_jsonschema_t *compiled = NULL;
  char *canonical = cqrs_schema_canonical(json, len, &compiled, &err);
  bson_free(json);
  char version[16];
  snprintf(version, sizeof version, "%d", t->version);
  if (!canonical) { /* a bug in the generator: say so, do not loop on it */
    cqrs_log_error(&w->log, "contract schema does not compile", "subject", t->name, "version", version, "error",
                   err.message, NULL);
    *done = true;
    return;
  }
  cqrs_schema_version_t out = {0};
  cqrs_compat_messages_t msgs = {0};
  admin_schema_outcome_t o = admin_schemas_register(w, t->name, canonical, compiled, true, &out, &msgs, &err);
  if (o == ADMIN_SCHEMA_INCOMPATIBLE) {
    for (size_t i = 0; i < msgs.n; i++)
      cqrs_log_warn(&w->log, "contract schema registered although its level refuses it (its upcaster bridges it)",
                    "subject", t->name, "version", version, "reason", msgs.items[i], NULL);
    o = admin_schemas_register(w, t->name, canonical, compiled, false, &out, &msgs, &err);
  }
  if (o == ADMIN_SCHEMA_REGISTERED) {
    char got[16];
    snprintf(got, sizeof got, "%d", out.version);
    cqrs_log_info(&w->log, "contract schema registered", "subject", t->name, "version", got, NULL);
  }
  *done = o == ADMIN_SCHEMA_REGISTERED || o == ADMIN_SCHEMA_EXISTS || err.code == CQRS_ERR_INTERNAL;
  if (err.code == CQRS_ERR_INTERNAL)
    cqrs_log_error(&w->log, "contract schema not registered", "subject", t->name, "error", err.message, NULL);
  cqrs_schema_version_cleanup(&out);
  cqrs_compat_messages_cleanup(&msgs);
  cqrs_jsonschema_destroy(compiled);
  bson_free(canonical);
}

static bool nap(admin_schemas_t *w, int ms) {
  for (int waited = 0; waited < ms && !cqrs_worker_stopping(&w->boot); waited += 50) {
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
  }
  return !cqrs_worker_stopping(&w->boot);
}

static void *bootstrap(void *arg) {
  admin_schemas_t *w = arg;
  const cqrs_event_type_t *rows[256];
  size_t n = cqrs_event_types_by_version(rows, 256);
  if (n > 256) n = 256;
  while (!admin_schemas_caught_up(w))
    if (!nap(w, 100)) return NULL;
  for (size_t i = 0; i < n; i++) {
    bool done = false;
    for (int backoff = 200; !done; backoff = backoff < 5000 ? backoff * 2 : 5000) {
      register_contract(w, rows[i], &done);
      if (!done && !nap(w, backoff)) return NULL;
    }
  }
  atomic_store(&w->bootstrapped, true);
  cqrs_log_info(&w->log, "contract schemas registered", NULL);
  return NULL;
}

bool admin_schemas_bootstrap_start(admin_schemas_t *w, cqrs_error_t *err) {
  return cqrs_worker_start(&w->boot, "schema-boot", bootstrap, w, err);
}

bool admin_schemas_bootstrapped(admin_schemas_t *w) { return atomic_load(&w->bootstrapped); }
