/* projector-svc's command line: --help, and --rebuild run as a one-off
 * process (rebuild.h); and the store timeout both the service and a rebuild
 * default to. */
#ifndef CQRS_PROJECTOR_CLI_H
#define CQRS_PROJECTOR_CLI_H

#include "projection.h"

#include "cqrs/config.h"

/* MONGO_TIMEOUT_MS unset: a store that accepts but never answers costs a
 * minute per try, not the driver's five; the write is then retried. Long
 * enough for a bulk command of 1,000 writes (5 s at 200 upserts/s on the
 * local FerretDB) with others in flight. */
#define CQRS_PROJECTOR_MONGO_TIMEOUT_MS 60000

/* Sets cfg's MONGO_TIMEOUT_MS to CQRS_PROJECTOR_MONGO_TIMEOUT_MS when unset. */
void cqrs_projector_default_store_timeout(cqrs_config_t *cfg);

/* The projections this process runs: PROJECTIONS (cfg->projections, names
 * separated by commas) or, when unset, every one, into out (room for all of
 * cqrs_projections), *n their count, in registry order. False with err
 * naming an unknown name. Why one may leave some out: to run a read model
 * elsewhere, or to measure one without another (BENCHMARKS.md). snapshots
 * follows event_history, which must run somewhere. */
bool cqrs_projector_selected(const cqrs_config_t *cfg, const cqrs_projection_t **out, size_t *n, cqrs_error_t *err);

/* Runs the command line argv when it is not empty (argc > 1): --help,
 * --rebuild <projection> [...] with the environment envp, or a usage error
 * on stderr. Returns the process exit status. */
int cqrs_projector_cli(int argc, char **argv, char **envp);

#endif
