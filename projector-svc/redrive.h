/* Dead-letter redrives (cqrs/ops.h "dlq/<id>" with action "redrive"), run
 * by the job owner (control.h), one at a time, in the order of the dead
 * letters' offsets.
 *
 * A redriven event is read back from events.dlq (read committed: saga-svc's
 * dead letters are written in its transactions) and goes through its
 * projection, whose dispatch (cqrs_projection_dispatch) upcasts it to its
 * type's current schema version and decodes it as on every read path; the
 * write goes into its tenant's live collection with the version guard, so an
 * event older than the document changes nothing. Only a projection's dead
 * letters are redriven (admin-svc refuses saga-svc's). An event that still fails
 * goes back to events.dlq, as a new dead letter with the new error (its
 * source coordinates unchanged), and the old one is recorded redriven with
 * that error: a redrive never loops. Each outcome is recorded as
 * "dlq-state/<id>". */
#ifndef CQRS_REDRIVE_H
#define CQRS_REDRIVE_H

#include "tenants.h"

#include "cqrs/config.h"
#include "cqrs/log.h"
#include "cqrs/ops.h"

#include <mongoc/mongoc.h>

typedef struct cqrs_redrive cqrs_redrive_t;

/* Borrowed: cfg, log, pool, tenants, ops. NULL with err. */
cqrs_redrive_t *cqrs_redrive_new(const cqrs_config_t *cfg, const cqrs_log_t *log, mongoc_client_pool_t *pool,
                                 cqrs_tenants_t *tenants, cqrs_ops_t *ops, cqrs_error_t *err);

/* Performs every redrive asked for and not yet done. Blocks while it works. */
void cqrs_redrive_run(cqrs_redrive_t *rd);

void cqrs_redrive_destroy(cqrs_redrive_t *rd);

#endif
