/* Keyset pages of a read model kept by FerretDB v1 in PostgreSQL, read from
 * PostgreSQL itself: the btree expression index a list pages on, and the
 * statement that reads one page's ids (and sort values) through it. Both are
 * built here from the same expressions, so the statement always matches the
 * index. Pure: no I/O (cqrs/ferretdb_pg.h runs them).
 *
 * Why: FerretDB v1 pushes neither sort nor limit down, and no range at all:
 * every page of an unselective list pulled all its matching documents into
 * FerretDB and sorted them there, 18-34 s at 100,000 documents (orders by
 * status, active customers, customers by email prefix; BENCHMARKS.md, "Read
 * side"). Through this index the same page is an Index Scan under a Limit,
 * 0.2-1.9 ms at 100,000 whatever the page's depth.
 *
 * What it serves: a list whose filter is string equalities on the index's
 * leading keys and at most a string range on its sort key, sorted on
 * (sort key, _id) - the index's last two keys - and continued after a cursor
 * (sort value, _id). Every key is compared as text under COLLATE "C"
 * (bytewise, as MongoDB and FerretDB compare strings), so the order and the
 * pages are those of the store's find, as long as the keys are strings in
 * every document: the projections write them so (a document where one is
 * missing or of another type would be ordered otherwise). */
#ifndef CQRS_FERRETDB_KEYSET_H
#define CQRS_FERRETDB_KEYSET_H

#include <bson/bson.h>

#include <stdbool.h>
#include <stdint.h>

#define CQRS_KEYSET_KEYS_MAX 4 /* equalities, the sort key and _id */
#define CQRS_KEYSET_KEY_MAX 64 /* a key's name, NUL included */

/* One page of one list, as the statement reads it. Strings other than keys
 * are borrowed (from the filter and the cursor). */
typedef struct {
  char keys[CQRS_KEYSET_KEYS_MAX][CQRS_KEYSET_KEY_MAX]; /* the index's keys: equalities, sort key, "_id" */
  size_t n_keys;
  const char *equal[CQRS_KEYSET_KEYS_MAX]; /* equal[i]: the value of keys[i], for i < n_keys - 2 */
  const char *lower, *upper;               /* the sort key's range; NULL: unbounded */
  bool lower_open, upper_closed;           /* $gt rather than $gte; $lte rather than $lt */
  bool descending;                         /* newest first: the cursor continues downwards */
  const char *after_value, *after_id;      /* the page starts after this item; NULL: the first page */
  int64_t limit;                           /* rows to read */
} cqrs_keyset_query_t;

/* The planner settings the statement is meant to run under: one statement
 * of SETs for a session of its own (query-svc's, and whoever explains what
 * query-svc runs). Why: a page is read in the index's order and stops after
 * limit rows, whatever the list's length; a bitmap scan, or a sort, reads
 * every row of the list first. The planner chose that for a list it thought
 * short (customers by email prefix "anna.12", 111 of 100,000: 0.17 ms warm,
 * 16.7 ms cold, against 0.05 ms in the index's order) and would for a long one
 * whenever its estimate is off (statistics lag behind a bulk load or a
 * rebuild). With these the plan is the index's order; without such an index
 * the statement still runs (as a scan and a sort). */
#define CQRS_KEYSET_SESSION_SQL "SET enable_bitmapscan = off; SET enable_sort = off"

/* Whether the list with filter, sorted on (sort_field, _id), pages on the
 * index with keys[0..n): true when n is 2..CQRS_KEYSET_KEYS_MAX, the keys are
 * plain names ([A-Za-z0-9_]), the last two are sort_field and "_id", and
 * filter is exactly a string equality on each other key plus at most a
 * document of $gte/$gt/$lt/$lte with string values on sort_field. Then q's
 * keys, equal and range are set (the rest zeroed; strings borrowed from
 * filter). False otherwise (q undefined): the list is the store's. This
 * function can't fail. */
bool cqrs_keyset_match(const char *const *keys, size_t n, const bson_t *filter, const char *sort_field,
                       cqrs_keyset_query_t *q);

/* CREATE INDEX IF NOT EXISTS name ON "schema"."table" on the keys'
 * expressions, in order. NULL when a key is not a plain name or n is out of
 * range; otherwise a string to free. */
char *cqrs_keyset_index_sql(const char *name, const char *schema, const char *table, const char *const *keys,
                            size_t n);

/* The statement reading q's page from "schema"."table": rows of (_id, sort
 * value) as text, in the list's order, at most q->limit; its parameters
 * (borrowed from q) into params[0..*n_params), params having room for
 * CQRS_KEYSET_KEYS_MAX + 4. A string to free. This function can't fail. */
char *cqrs_keyset_select_sql(const char *schema, const char *table, const cqrs_keyset_query_t *q,
                             const char **params, int *n_params);

/* Whether doc is in q's list: each equality key a string equal to its
 * value, and the sort key a string within q's range, compared bytewise as
 * the statement does. For documents read by _id after the statement: one
 * that changed meanwhile is left out. (Not the filter in the find by _id:
 * FerretDB pushes an equality down beside _id, and PostgreSQL then ANDs the
 * GIN index of an unselective key, 5.7 ms a document at 90,000 matches,
 * against 0.05 ms by _id alone.) This function can't fail. */
bool cqrs_keyset_holds(const cqrs_keyset_query_t *q, const bson_t *doc);

#endif
