/* Worker threads with a stop flag (see worker.h). */
#include "cqrs/worker.h"

#include <stdio.h>

bool cqrs_worker_start(cqrs_worker_t *w, const char *name, void *(*fn)(void *), void *arg, cqrs_error_t *err) {
  atomic_store(&w->stop, false);
  if (pthread_create(&w->thread, NULL, fn, arg) != 0) {
    cqrs_error_set(err, CQRS_ERR_FATAL, NULL, "cannot start the %s thread", name);
    return false;
  }
  char short_name[16]; /* the kernel keeps 15 characters */
  snprintf(short_name, sizeof short_name, "%s", name);
  pthread_setname_np(w->thread, short_name); /* cosmetic: a failure changes nothing */
  w->started = true;
  return true;
}

bool cqrs_worker_stopping(cqrs_worker_t *w) { return atomic_load(&w->stop); }

bool cqrs_worker_stop(cqrs_worker_t *w) {
  if (!w->started) return false;
  atomic_store(&w->stop, true);
  pthread_join(w->thread, NULL);
  w->started = false;
  return true;
}
