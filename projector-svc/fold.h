/* Folding a batch's writes: all writes of one document become one write with
 * the final state. Pure: data in, data out, tested without a store.
 *
 * Why: each store round trip costs a document lookup (FerretDB on PostgreSQL:
 * ~3-5 ms per guarded upsert), so ten events of one order in a batch cost ten
 * lookups unfolded and one folded.
 *
 * Why it is safe: projections write only $set and $setOnInsert (checked here;
 * anything else is refused), and every $set carries absolute values plus the
 * event's version. The folded write keeps the LAST write's filter (the
 * version guard of the newest event), upserts when any write did, $sets the
 * union of the $sets (a later event's value wins) and $setOnInserts the
 * creation's fields minus those a $set overrides; fields keep the order in
 * which they first appear, as on a stored document. On a document that
 * has seen none, some or all of the events (a redelivery), that gives the
 * same document as applying the writes one by one: a re-applied $set writes
 * the value it wrote before, then later events overwrite it as they did. */
#ifndef CQRS_FOLD_H
#define CQRS_FOLD_H

#include "projection.h"

#include <stddef.h>

typedef struct {
  cqrs_write_t w; /* owned: cqrs_write_cleanup */
  /* For an upsert: the document folding the writes into nothing gives,
   * {_id, fields in the order the writes one by one would leave them}.
   * Inserting it is the fast path for a document's first events (an insert
   * needs no lookup); when the document exists the insert fails with a
   * duplicate key and w is used. Empty otherwise. Owned. */
  bson_t insert;
  const char *id; /* the document's _id, borrowed from the first source write */
  size_t ns;      /* the namespace (tenant database + collection) it is written to */
  size_t first;   /* its source writes are order[first .. first + count) */
  size_t count;
} cqrs_folded_t;

typedef struct {
  cqrs_folded_t *writes; /* one per document, in (namespace, _id) order */
  size_t n;
  size_t *order; /* indexes into the source writes, grouped by document, log order within */
} cqrs_fold_t;

/* Folds in[0..n) (log order) into out. ns[i] (ns NULL: all 0) is the
 * namespace in[i] is written to, i.e. its tenant's database and collection:
 * the same _id in two namespaces is two documents (two tenants' aggregates
 * with one id), never folded together. Returns false with err, and out empty,
 * when a write cannot be folded: no string _id in its filter, an update
 * operator other than $set/$setOnInsert, or an upsert after the first write
 * of its document (a creation after an update: not something a decider
 * emits, but then only the writes one by one are right) unless the first is
 * an upsert too and this one only a $setOnInsert (a redelivered creation: a
 * no-op on the document the first created). in must outlive out. */
bool cqrs_fold(const cqrs_write_t *in, const size_t *ns, size_t n, cqrs_fold_t *out, cqrs_error_t *err);

void cqrs_fold_cleanup(cqrs_fold_t *f);

#endif
