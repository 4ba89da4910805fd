/* projector-svc's side of the control plane (cqrs/ops.h): what admin-svc
 * asks for, acted on here.
 *
 * Every replica: pauses and resumes its apply loops as "projection/<p>" says
 * (a resume also moves a loop halted at a poison event past it), and reports
 * each projection's state as "projection-state/<p>/<instance>".
 *
 * One replica at a time, the job owner: runs the replays (replay.h) and the
 * dead-letter redrives (redrive.h). Ownership is membership of the consumer
 * group "projector-jobs" on the one-partition ops topic: the member assigned
 * its partition owns the jobs. When the owner dies its partition moves to
 * another replica after the session timeout (6 s), which resumes each replay
 * from its checkpoint; a replica that loses the partition abandons its
 * replays where they are. So each job runs on one replica at a time. */
#ifndef CQRS_PROJECTOR_CONTROL_H
#define CQRS_PROJECTOR_CONTROL_H

#include "apply_loop.h"

#include "cqrs/config.h"
#include "cqrs/control.h"
#include "cqrs/log.h"

#include <mongoc/mongoc.h>

typedef struct projector_control projector_control_t;

/* Starts following the ops topic and competing for the jobs. Borrowed: cfg,
 * log, pool, reg, tenants, loops[0..n) (one per projection). NULL with err. */
projector_control_t *projector_control_start(const cqrs_config_t *cfg, const cqrs_log_t *log,
                                             mongoc_client_pool_t *pool, cqrs_registry_t *reg,
                                             cqrs_tenants_t *tenants, cqrs_apply_loop_t **loops, size_t n,
                                             cqrs_error_t *err);

/* False with err until the ops topic is read to its end. */
bool projector_control_ready(projector_control_t *c, cqrs_error_t *err);

/* Abandons running jobs (the next owner resumes them), stops, frees. NULL is fine. */
void projector_control_stop(projector_control_t *c);

#endif
