/* Worker threads (cqrs/worker.h): start, the stop flag the worker sees, stop
 * joins, and stop on a worker that is not running. */
#include "cqrs/worker.h"
#include "unit.h"

typedef struct {
  cqrs_worker_t worker;
  atomic_int rounds;
  atomic_bool saw_stop;
} job_t;

static void *job_main(void *arg) {
  job_t *job = arg;
  while (!cqrs_worker_stopping(&job->worker)) atomic_fetch_add(&job->rounds, 1);
  atomic_store(&job->saw_stop, true);
  return NULL;
}

Test(worker, stop_raises_the_flag_the_worker_polls_and_joins_it) {
  job_t job = {0};
  cqrs_error_t err = {0};
  cr_assert(cqrs_worker_start(&job.worker, "a-name-longer-than-fifteen", job_main, &job, &err), "%s", err.message);
  while (atomic_load(&job.rounds) == 0) continue; /* it runs */
  cr_expect_not(cqrs_worker_stopping(&job.worker));
  cr_expect(cqrs_worker_stop(&job.worker), "it was running");
  cr_expect(atomic_load(&job.saw_stop), "stop returned before the worker did");
  cr_expect_not(cqrs_worker_stop(&job.worker), "a second stop has nothing to stop");
}

Test(worker, a_worker_can_run_again_after_a_stop) {
  job_t job = {0};
  cr_assert(cqrs_worker_start(&job.worker, "first", job_main, &job, NULL));
  cr_assert(cqrs_worker_stop(&job.worker));
  atomic_store(&job.saw_stop, false);
  atomic_store(&job.rounds, 0);
  cr_assert(cqrs_worker_start(&job.worker, "second", job_main, &job, NULL));
  while (atomic_load(&job.rounds) == 0) continue;
  cr_expect(cqrs_worker_stop(&job.worker));
  cr_expect(atomic_load(&job.saw_stop));
}

Test(worker, stopping_a_worker_never_started_does_nothing) {
  cqrs_worker_t w = {0};
  cr_expect_not(cqrs_worker_stop(&w));
  cr_expect_not(cqrs_worker_stopping(&w));
}
