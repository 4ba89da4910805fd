/* A replay, run inside projector-svc on behalf of the control plane
 * (cqrs/ops.h "replay/<id>"), by the one replica that owns the jobs
 * (control.h). It never produces anything but its own state records: no
 * event, no command, so no saga ever sees it.
 *
 * From the beginning: the zero-downtime rebuild (rebuild.h) into the
 * collection "<projection>__replay_<id>" of each tenant met, swapped in once
 * caught up. Its checkpoint (the next offset of each partition, and the
 * tenants met) is in its state record every second; a replica taking over
 * after the owner died resumes there (writes are idempotent: whatever was
 * written after the checkpoint is written again, unchanged).
 *
 * From a time T: (scan) the aggregates with an event at or after T; (derive)
 * each of those aggregates' documents re-derived from its WHOLE history, from
 * the beginning of the log, into a scratch collection; (copy) each derived
 * document replaces the live one unless the live one is newer (version
 * guard: the live projector's later writes are never overwritten). Documents
 * of other aggregates are not touched. A replica taking over starts the
 * phases again (each is idempotent).
 *
 * Pause holds the apply loop at a batch boundary; cancel drops what the
 * replay built (the live collection was never touched before the swap or
 * copy, so it keeps serving). */
#ifndef CQRS_REPLAY_H
#define CQRS_REPLAY_H

#include "projection.h"

#include "cqrs/config.h"
#include "cqrs/control.h"
#include "cqrs/log.h"
#include "cqrs/ops.h"

#include <mongoc/mongoc.h>

typedef struct {
  const cqrs_config_t *cfg;
  const cqrs_log_t *log;
  mongoc_client_pool_t *pool;
  cqrs_registry_t *reg; /* the control registry: deleted tenants are never replayed */
  cqrs_ops_t *ops;
  const char *instance; /* who runs it, for its state record */
} cqrs_replay_env_t;

typedef struct cqrs_replay cqrs_replay_t;

/* Starts replay id on a thread of its own, resuming from its state record
 * when it has one. env is copied; what it points to is borrowed. NULL with
 * err when the thread cannot start. */
cqrs_replay_t *cqrs_replay_start(const cqrs_replay_env_t *env, const char *id, cqrs_error_t *err);

/* True once it has finished (completed, failed or cancelled: recorded). */
bool cqrs_replay_finished(cqrs_replay_t *r);

/* The projection it replays. */
const char *cqrs_replay_projection(const cqrs_replay_t *r);

/* Stops it where it is without recording anything more (this replica no
 * longer owns the jobs, or is stopping: the next owner resumes it), and
 * frees. A finished one is just freed. NULL is fine. */
void cqrs_replay_abandon(cqrs_replay_t *r);

#endif
