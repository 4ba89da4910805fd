/* The reader (projection.h, cqrs_projection_reader_t) the apply loop hands a
 * reading projection for one event: its tenant's database, the collection
 * the loop writes (a rebuild's, or where the alias points) as this batch's
 * earlier writes leave it, and the tenant's event history.
 *
 * Failures: a store that does not answer is CQRS_ERR_UNAVAILABLE at once (the
 * loop applies the batch up to the event and reads it again after a backoff,
 * outside the tenants' gate). So is a history that has not recorded the
 * asked version yet (its projection is behind this one). When it has
 * recorded it but not an earlier one, the history is read again for up to
 * CQRS_LOOP_READER_GAP_MS (the event_history loop writes a batch in
 * concurrent commands, so a later version can land first); a version still
 * missing then is missing for good (the log has a gap). */
#ifndef CQRS_LOOP_READER_H
#define CQRS_LOOP_READER_H

#include "projection.h"
#include "tenants.h"

#include "cqrs/log.h"
#include "cqrs/worker.h"

#include <mongoc/mongoc.h>

#define CQRS_LOOP_READER_GAP_MS 2000

/* Everything borrowed, for the one call of the projection. */
typedef struct {
  mongoc_client_pool_t *pool;
  cqrs_tenants_t *tenants;
  cqrs_worker_t *owner; /* once it is stopping, a wait gives up (CQRS_ERR_UNAVAILABLE) */
  const char *projection;
  const char *target; /* a rebuild's collection; NULL: the one tenant's alias names */
  const char *tenant; /* the event's */
  /* the batch's writes before the event, and each one's tenant */
  const cqrs_write_t *writes;
  const char (*write_tenants)[CQRS_TENANT_MAX + 1];
  size_t n_writes;
} cqrs_loop_reader_t;

/* Makes r read through ctx (borrowed for r's life). Can't fail. */
void cqrs_loop_reader_bind(cqrs_projection_reader_t *r, cqrs_loop_reader_t *ctx, int snapshot_every);

#endif
