/* The control plane's records about tenants and API keys, and every service's
 * view of them.
 *
 * admin-svc is the only writer: it produces control records to the compacted
 * topic TOPIC_PREFIX + "control". Every service that authenticates runs a
 * cqrs_control_reader_t, which reads that topic from the beginning (no
 * consumer group: each process reads every partition) into a
 * cqrs_registry_t, and keeps following it, so a created tenant, a revoked key
 * or a deleted tenant reaches every process within about a second.
 *
 * Records (key -> value, JSON):
 *   "tenant/<tenantId>"  -> {"tenantId","state":"active"|"deleted","createdAt","deletedAt"?}
 *   "apikey/<keyId>"     -> {"keyId","tenantId","scopes":["queries:read",...],
 *                            "sha256":"<64 hex: SHA-256 of the key's secret>",
 *                            "createdAt","revoked":bool,"revokedAt"?}
 * The key's secret itself is never written anywhere: only its hash. A record
 * that does not parse is logged (without its value) and skipped. */
#ifndef CQRS_CONTROL_H
#define CQRS_CONTROL_H

#include "cqrs/config.h"
#include "cqrs/error.h"
#include "cqrs/log.h"
#include "cqrs/tenant.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CQRS_TOPIC_CONTROL "control"

#define CQRS_KEY_ID_LEN 16     /* hex characters of a keyId */
#define CQRS_KEY_SECRET_LEN 64 /* hex characters of a key's secret */

/* Records ------------------------------------------------------------- */

typedef enum { CQRS_TENANT_UNKNOWN = 0, CQRS_TENANT_ACTIVE, CQRS_TENANT_DELETED } cqrs_tenant_state_t;

typedef struct {
  char tenant[CQRS_TENANT_MAX + 1];
  cqrs_tenant_state_t state;
  char created_at[40];
  char deleted_at[40]; /* "" unless deleted */
} cqrs_tenant_rec_t;

typedef struct {
  char key_id[CQRS_KEY_ID_LEN + 1];
  char tenant[CQRS_TENANT_MAX + 1];
  unsigned scopes; /* CQRS_SCOPE_* bits (cqrs/auth.h) */
  unsigned char sha256[32];
  bool revoked;
  char created_at[40];
  char revoked_at[40]; /* "" unless revoked */
} cqrs_apikey_rec_t;

/* The record key and JSON value of r (strings to free()); the JSON is NULL for a
 * state that has no record. Out of memory aborts (cqrs/alloc.h). */
char *cqrs_control_tenant_key(const char *tenant);
char *cqrs_control_tenant_json(const cqrs_tenant_rec_t *r, size_t *len);
char *cqrs_control_apikey_key(const char *key_id);
char *cqrs_control_apikey_json(const cqrs_apikey_rec_t *r, size_t *len);

/* The registry ---------------------------------------------------------- */

/* Thread-safe: one writer (the reader thread), any number of readers. */
typedef struct cqrs_registry cqrs_registry_t;

/* A new, empty registry; free with cqrs_registry_destroy (NULL is fine). NULL
 * only when its lock cannot be initialised (pthread_rwlock_init); out of
 * memory aborts (cqrs/alloc.h). */
cqrs_registry_t *cqrs_registry_new(void);
void cqrs_registry_destroy(cqrs_registry_t *reg);

/* Applies one control record (value NULL: a tombstone, which forgets the key).
 * False with err (CQRS_ERR_INVALID) when key or value do not parse; the
 * registry is then unchanged. */
bool cqrs_registry_apply(cqrs_registry_t *reg, const char *key, size_t key_len, const char *value,
                         size_t value_len, cqrs_error_t *err);

/* The state of tenant t (CQRS_TENANT_UNKNOWN when never created). */
cqrs_tenant_state_t cqrs_registry_tenant_state(cqrs_registry_t *reg, const char *t);

/* Copies the key record of key_id into *out. False when there is none. */
bool cqrs_registry_apikey(cqrs_registry_t *reg, const char *key_id, cqrs_apikey_rec_t *out);

/* A snapshot of every tenant record, ordered by tenant id (malloc'd array,
 * free() it); *n gets the count. NULL with *n = 0 when there are none. */
cqrs_tenant_rec_t *cqrs_registry_tenants(cqrs_registry_t *reg, size_t *n);

/* A snapshot of tenant t's key records, ordered by keyId (as above). */
cqrs_apikey_rec_t *cqrs_registry_apikeys(cqrs_registry_t *reg, const char *t, size_t *n);

/* Called by the reader thread after a record changed tenant t's state to
 * deleted (also for a deletion read at start). ctx as given. */
typedef void (*cqrs_tenant_deleted_cb)(const char *tenant, void *ctx);

/* The reader ------------------------------------------------------------ */

typedef struct cqrs_control_reader cqrs_control_reader_t;

/* Starts a thread that creates the control topic when missing (compacted, one
 * partition), reads it from the beginning into reg (borrowed; must outlive the
 * reader) and keeps following it. on_deleted may be NULL. NULL with err when
 * the Kafka client cannot be made or the thread cannot start. */
cqrs_control_reader_t *cqrs_control_reader_start(const cqrs_config_t *cfg, const cqrs_log_t *log,
                                                 cqrs_registry_t *reg, cqrs_tenant_deleted_cb on_deleted,
                                                 void *ctx, cqrs_error_t *err);

/* True once the reader has applied every record that existed when it started
 * (readiness: a service must not answer before it knows the keys). */
bool cqrs_control_reader_caught_up(const cqrs_control_reader_t *r);

/* Waits until every control record produced before this call has been applied
 * (reads the topic's end offsets now and waits for the reader to pass them),
 * up to timeout_ms. False with err (CQRS_ERR_UNAVAILABLE) on timeout. admin-svc
 * uses it to read its own writes. */
bool cqrs_control_reader_sync(cqrs_control_reader_t *r, int timeout_ms, cqrs_error_t *err);

/* Stops the thread and frees the reader. NULL is fine. */
void cqrs_control_reader_stop(cqrs_control_reader_t *r);

#endif
