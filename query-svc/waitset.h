/* The waiting single reads and what to ask the store for them: waiters are
 * grouped by tenant and read (read model, field, sort) and by the value they
 * wait on, so a waiter is only ever settled from its own tenant's documents;
 * a poll round asks for every value of a tenant's read with one find per batch of values
 * ({field: {$in: [...]}}), and the documents found settle the waiters that are
 * fresh or past their deadline. Pure: the caller runs the finds, reads the
 * clock and sends the answers. Not thread-safe: one thread owns a waitset. */
#ifndef CQRS_WAITSET_H
#define CQRS_WAITSET_H

#include "single_read.h"

#include <stddef.h>

typedef struct cqrs_waitset cqrs_waitset_t;
typedef struct cqrs_wait_batch cqrs_wait_batch_t;

/* Called once for each waiter the set lets go, with the token it was added
 * with, the outcome (never WAIT) and the answer to send (borrowed for the
 * call). */
typedef void (*cqrs_waitset_settle_cb)(void *token, cqrs_read_outcome_t o, const cqrs_read_answer_t *a, void *ctx);

/* A new, empty set whose finds ask for at most batch_max values each (>= 1).
 * Free with cqrs_waitset_destroy. This function can't fail (allocation failure
 * aborts, as everywhere in libbson). */
cqrs_waitset_t *cqrs_waitset_new(size_t batch_max);

/* Frees ws. Waiters still in it are dropped without a call: drain it first
 * (cqrs_waitset_drain). NULL is fine. */
void cqrs_waitset_destroy(cqrs_waitset_t *ws);

/* Adds a waiter for the document of tenant's (copied) read whose field equals value (copied),
 * until its version >= min_version (> 0) or deadline_ms passes; now_ms is the
 * time it starts waiting. read is borrowed for the life of ws; token is the
 * caller's and comes back in the settle call. Not during a round. */
void cqrs_waitset_add(cqrs_waitset_t *ws, const cqrs_single_read_t *read, const char *tenant, const char *value,
                      int64_t min_version,
                      int64_t now_ms, int64_t deadline_ms, void *token);

/* Waiters in the set. */
size_t cqrs_waitset_size(const cqrs_waitset_t *ws);

/* Starts a poll round over every value waited on now, and returns how many
 * finds (batches) it takes: the number of (tenant, read) pairs waited on, times the number
 * of batch_max slices of their values, never the number of waiters. Every
 * batch of the round must be settled before the next round or an add. */
size_t cqrs_waitset_begin_round(cqrs_waitset_t *ws);

/* The i-th batch of the current round (i < what begin_round returned), owned
 * by ws until settled. */
cqrs_wait_batch_t *cqrs_waitset_batch(cqrs_waitset_t *ws, size_t i);

/* The batch's read, the tenant whose read models it asks, its filter {field: {$in: [values...]}} and find options
 * (the read's sort; a batch size that takes every match at once). Borrowed
 * from the batch. */
const cqrs_single_read_t *cqrs_wait_batch_read(const cqrs_wait_batch_t *b);
const char *cqrs_wait_batch_tenant(const cqrs_wait_batch_t *b);
const bson_t *cqrs_wait_batch_filter(const cqrs_wait_batch_t *b);
const bson_t *cqrs_wait_batch_opts(const cqrs_wait_batch_t *b);

/* One document the batch's find returned, in the order it returned them (the
 * read's sort): for each value the first one offered counts, later ones with
 * the same value are ignored, as are documents of no value in the batch. doc
 * is copied when kept. */
void cqrs_wait_batch_offer(cqrs_wait_batch_t *b, const bson_t *doc);

/* Ends batch b at now_ms. With store_answered, each of its waiters whose
 * document now reached minVersion is settled FRESH, and one past its deadline
 * STALE (document older) or ABSENT; without (the find failed), the waiters
 * wait on until their deadline and are then settled from the last document
 * the store gave for them since they started waiting, or NO_STORE when it
 * gave none. Waiters not settled stay for the next round. */
void cqrs_wait_batch_settle(cqrs_waitset_t *ws, cqrs_wait_batch_t *b, bool store_answered, int64_t now_ms,
                            cqrs_waitset_settle_cb cb, void *ctx);

/* Settles every waiter with outcome o (e.g. STOPPING) and empties ws. Not
 * during a round. */
void cqrs_waitset_drain(cqrs_waitset_t *ws, cqrs_read_outcome_t o, cqrs_waitset_settle_cb cb, void *ctx);

#endif
