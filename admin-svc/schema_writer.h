/* admin-svc's schema registry store: the registry as this process has read it
 * (cqrs/schemas.h: its reader follows the schemas topic), and the one way to
 * change it: write a record, read it back, and see whether it won.
 *
 * Registration across replicas: nothing is locked between admin-svc
 * replicas. Each writes the record of the version it believes is next
 * (latest + 1) and reads the topic back up to its own record; the readers
 * apply first-wins (cqrs/schemas.h), so when two replicas race for version
 * n, every process agrees on the one written first, and the other finds its
 * schema not registered, re-checks compatibility against the new latest and
 * tries n + 1 (a few times, then answers 503). Within one process
 * registrations are one at a time (a mutex), so they do not race at all. */
#ifndef ADMIN_SCHEMA_WRITER_H
#define ADMIN_SCHEMA_WRITER_H

#include "cqrs/config.h"
#include "cqrs/error.h"
#include "cqrs/jsonschema.h"
#include "cqrs/log.h"
#include "cqrs/schemas.h"

#include <stdbool.h>

typedef struct admin_schemas admin_schemas_t;

/* Makes the registry, starts its reader and makes the producer. timeout_ms
 * bounds each write's delivery and each read-back. NULL with err. */
admin_schemas_t *admin_schemas_new(const cqrs_config_t *cfg, const cqrs_log_t *log, int timeout_ms,
                                   cqrs_error_t *err);

/* Stops the reader, flushes the producer, frees everything. NULL is fine. */
void admin_schemas_destroy(admin_schemas_t *w);

/* The registry (borrowed, valid until destroy): for reads. */
cqrs_schemas_t *admin_schemas_registry(admin_schemas_t *w);

/* True once the reader has read the whole topic as it was at start. */
bool admin_schemas_caught_up(admin_schemas_t *w);

/* Waits until this process has read every record written before the call
 * (read-your-writes for requests answered from the registry). */
bool admin_schemas_sync(admin_schemas_t *w, cqrs_error_t *err);

typedef enum {
  ADMIN_SCHEMA_REGISTERED,   /* a new version: out filled */
  ADMIN_SCHEMA_EXISTS,       /* the subject already has this schema: out is that version */
  ADMIN_SCHEMA_INCOMPATIBLE, /* refused by the subject's level: msgs say why */
  ADMIN_SCHEMA_FAILED        /* err: CQRS_ERR_UNAVAILABLE (Kafka) or CQRS_ERR_INTERNAL (an id collision) */
} admin_schema_outcome_t;

/* Registers canonical (cqrs_schema_canonical's text; compiled its tree) as
 * subject's next version. check false skips the compatibility check (the
 * contract's own versions, admin-svc/bootstrap.c). out (cleanup with
 * cqrs_schema_version_cleanup) is filled for REGISTERED and EXISTS. Any
 * thread; registrations run one at a time. */
admin_schema_outcome_t admin_schemas_register(admin_schemas_t *w, const char *subject, const char *canonical,
                                              const cqrs_jsonschema_t *compiled, bool check,
                                              cqrs_schema_version_t *out, cqrs_compat_messages_t *msgs,
                                              cqrs_error_t *err);

/* Sets the compatibility level of subject (NULL: the global one) and waits
 * until this process has read it. False with err (CQRS_ERR_UNAVAILABLE). */
bool admin_schemas_set_level(admin_schemas_t *w, const char *subject, cqrs_compat_level_t level, cqrs_error_t *err);

/* Bootstrap (in schema_writer.c) ---------------------------------------------------- */

/* Starts a thread that registers every (type, version) of the event contract
 * (cqrs/event_schema.h), in version order, once the reader has caught up;
 * idempotent (a schema already there is not registered again), retrying
 * while Kafka does not answer. A version the subject's level would refuse
 * is registered anyway, with a warning naming why: the contract is the
 * authority, and its upcasters bridge such versions on every read path.
 * False with err when the thread cannot start. */
bool admin_schemas_bootstrap_start(admin_schemas_t *w, cqrs_error_t *err);

/* True once every contract schema is registered (readiness). */
bool admin_schemas_bootstrapped(admin_schemas_t *w);

#endif
