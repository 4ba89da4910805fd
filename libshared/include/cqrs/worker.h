/* A worker thread that runs until asked to stop: the start, stop flag and join
 * that every service loop (command loop, results reader, apply loop, the
 * compacted-topic followers, replays, the projector's control thread) needs.
 * A thread that sleeps on a condition variable (query-svc's waiter hub, the
 * JWKS refresher) keeps its own stop flag under its mutex instead: setting
 * this one would not wake it. */
#ifndef CQRS_WORKER_H
#define CQRS_WORKER_H

#include "cqrs/error.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* Embedded in its owner, zeroed (calloc or {0}) before the first start; the
 * members are private to worker.c. */
typedef struct {
  pthread_t thread;
  bool started;     /* owner's thread only */
  atomic_bool stop; /* set by cqrs_worker_stop, read by the worker */
} cqrs_worker_t;

/* Runs fn(arg) on a new thread named name (cut to 15 characters, as top and
 * gdb show it). False with err when the thread cannot be created; w is then
 * as before. Call from the owner's thread, on a worker not running. */
bool cqrs_worker_start(cqrs_worker_t *w, const char *name, void *(*fn)(void *), void *arg, cqrs_error_t *err);

/* True once cqrs_worker_stop was called: fn checks it between rounds and
 * returns. Any thread. This function can't fail. */
bool cqrs_worker_stopping(cqrs_worker_t *w);

/* Asks fn to return (cqrs_worker_stopping turns true) and joins the thread.
 * Returns true when it was running, so the owner may now tear down what the
 * thread used; false when it was never started or is already stopped. Call
 * from the owner's thread, never from fn. */
bool cqrs_worker_stop(cqrs_worker_t *w);

#endif
