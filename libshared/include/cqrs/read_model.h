/* Which collection serves a read model. A rebuild fills a fresh collection and
 * then swaps an alias, so queries never see a half-built read model and never a
 * missing one (FerretDB's renameCollection has no dropTarget, so drop + rename
 * would leave a gap). The alias lives in the `read_models` collection:
 * {_id: <read model>, collection: <name>}; without one, the read model's own
 * name is the collection.
 *
 * Readers switch later than writers. Right after a swap the live projector
 * still writes the newest events into the old collection until its resolver
 * re-reads the alias (its TTL, plus a batch in flight), and the rebuild puts
 * the same events into the new one later, by how far it is behind: a query
 * reading the new collection at once could see a document older than the one
 * it just read from the old (e2e_read_side saw 3 reads in 4,473 go back; with
 * a fixed 2 s for readers, 1 in 1,450 on a loaded machine). So a swap also
 * records the previous collection and holds readers there (readersFromMs =
 * swap + CQRS_READ_MODELS_READER_HOLD_MS, wall clock) until the swapper, once
 * the new collection has every event the old one got, releases them
 * (cqrs_read_models_release_readers: readersFromMs = now). The hold's bound
 * only matters when the swapper dies in between. Until then a
 * CQRS_ALIAS_READER resolver keeps answering the previous collection, so a
 * reader's versions never go back.  */
#ifndef CQRS_READ_MODEL_H
#define CQRS_READ_MODEL_H

#include "cqrs/error.h"

#include <mongoc/mongoc.h>

#define CQRS_READ_MODELS_COLLECTION "read_models"
#define CQRS_COLLECTION_NAME_MAX 120
/* How often the services re-read an alias (projector-svc as a writer,
 * query-svc as a reader). */
#define CQRS_ALIAS_TTL_MS 1000
/* How long after a swap readers stay on the previous collection at most, when
 * the swapper does not release them sooner (it died). */
#define CQRS_READ_MODELS_READER_HOLD_MS 60000

typedef enum {
  CQRS_ALIAS_WRITER, /* follows a swap at once (the projector) */
  CQRS_ALIAS_READER  /* follows it once the swapper releases readers (query-svc) */
} cqrs_alias_role_t;

typedef struct cqrs_read_models cqrs_read_models_t;

/* How many (database, read model) aliases a resolver remembers at most.
 * Past it, answers older than the TTL go first, then the oldest fetched. */
#define CQRS_READ_MODELS_CACHE_MAX 4096

/* A resolver that re-reads an alias at most every ttl_ms (a reader also when
 * its delay after a swap ends), for role. db is the database
 * of cqrs_read_models_resolve and _lookup; NULL makes a resolver for any
 * database (then only the _in functions may be used). Its cache is keyed by
 * database and read model, so one resolver serves every tenant's database
 * (cqrs/tenant.h) under one lock and one bound on memory, and a tenant's
 * entries need no lifecycle of their own: they age out like any other.
 * Thread-safe. Free with cqrs_read_models_destroy (NULL is fine). */
cqrs_read_models_t *cqrs_read_models_new(const char *db, int ttl_ms, cqrs_alias_role_t role);
void cqrs_read_models_destroy(cqrs_read_models_t *rm);

/* Writes the collection now serving read_model into out. When the store
 * cannot be read it keeps the last known answer (or the read model's name).
 * Can't fail. */
void cqrs_read_models_resolve(cqrs_read_models_t *rm, mongoc_client_t *client, const char *read_model,
                              char out[CQRS_COLLECTION_NAME_MAX]);

/* As cqrs_read_models_resolve, but says whether the store answered: false
 * with err when the alias had to be re-read and the store did not answer
 * (out still holds the last known answer). A caller that is about to read
 * the store anyway can answer "unavailable" at once instead of waiting on the
 * store a second time. */
bool cqrs_read_models_lookup(cqrs_read_models_t *rm, mongoc_client_t *client, const char *read_model,
                             char out[CQRS_COLLECTION_NAME_MAX], cqrs_error_t *err);

/* As cqrs_read_models_resolve and _lookup, for the alias in database db. */
void cqrs_read_models_resolve_in(cqrs_read_models_t *rm, mongoc_client_t *client, const char *db,
                                 const char *read_model, char out[CQRS_COLLECTION_NAME_MAX]);
bool cqrs_read_models_lookup_in(cqrs_read_models_t *rm, mongoc_client_t *client, const char *db,
                                const char *read_model, char out[CQRS_COLLECTION_NAME_MAX], cqrs_error_t *err);

/* A swap's handoff to the live projector. A rebuild swaps while it still
 * applies; the live loop follows the swap within its TTL and from then on
 * writes the new collection too, starting wherever it was. Its first write
 * there could meet a document the rebuild had not yet brought up to the
 * event before it, and the guarded write, newer, would leave the events in
 * between out of that document for good (the rebuild's later writes of them
 * are older: they match nothing). So a swap records the swapper's positions
 * (for each partition of events, the first offset it had not applied: the
 * new collection holds every event before them), and a live loop that first
 * writes a collection goes back to them and applies from there again, in
 * order (cqrs_read_models_handoff; projector-svc/apply_loop.c). Two writers,
 * each in order from a point the collection is complete to, are safe with a
 * version guard that is atomic (MongoDB; on FerretDB v1 the store's guard,
 * cqrs_ferretdb_pg_monotonic). A first write later than
 * CQRS_READ_MODELS_HANDOFF_MS after the swap does not go back: by then the
 * rebuild has caught up with the live loop (its tail is bounded by 60 s),
 * and a restart long after a rebuild should not apply hours again. */
#define CQRS_READ_MODELS_HANDOFF_MS 300000

/* Points read_model at collection (an upsert of its alias, recording the
 * collection it served until now, and holding readers there for at most
 * CQRS_READ_MODELS_READER_HOLD_MS), recording positions[0..n) (may be NULL
 * with n 0: no handoff) and the time. False with err. */
bool cqrs_read_models_swap(mongoc_client_t *client, const char *db, const char *read_model, const char *collection,
                           const int64_t *positions, int n, cqrs_error_t *err);

/* The positions the swap of read_model in db to collection recorded, when
 * the alias points at collection and was swapped less than
 * CQRS_READ_MODELS_HANDOFF_MS ago: into out[0..max), returns how many (0:
 * no such swap, or none recorded). -1 with err when the store cannot be
 * read. */
int cqrs_read_models_handoff(mongoc_client_t *client, const char *db, const char *read_model, const char *collection,
                             int64_t *out, int max, cqrs_error_t *err);

/* Lets readers follow the swap of read_model to collection now (they do
 * within their TTL); nothing when the alias points elsewhere by now. False
 * with err when the store does not answer. */
bool cqrs_read_models_release_readers(mongoc_client_t *client, const char *db, const char *read_model,
                                      const char *collection, cqrs_error_t *err);

#endif
