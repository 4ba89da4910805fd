/* Single-document reads: what one is (one equality on one field of a read
 * model, the first document in a sort order) and how its answer is decided
 * and written, for a read answered at once and for one that waited alike
 * (API.md: read-your-writes). Pure: no I/O, no clock. */
#ifndef CQRS_SINGLE_READ_H
#define CQRS_SINGLE_READ_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

/* A single read, declared once per route as a static const: everything that
 * keeps a pointer to one (waiters) borrows it for the life of the process. */
typedef struct {
  const char *read_model;   /* e.g. "user_profiles" */
  const char *field;        /* the equality's field: "_id", "email" */
  const char *const *sort;  /* ascending sort keys, NULL-terminated; NULL when field is unique */
  const char *not_found;    /* the 404 message */
} cqrs_single_read_t;

typedef enum {
  CQRS_READ_FRESH,    /* 200 with the document */
  CQRS_READ_WAIT,     /* not fresh yet and there is time left: wait */
  CQRS_READ_STALE,    /* 200 with the older document and X-Stale: true */
  CQRS_READ_ABSENT,   /* 404 not_found; X-Stale: true when minVersion was asked */
  CQRS_READ_NO_STORE, /* 503: the store did not answer */
  CQRS_READ_STOPPING, /* 503: the service stopped before the wait ended */
} cqrs_read_outcome_t;

/* The answer to send: status, whether X-Stale: true goes with it, and the JSON
 * body (owned, bson_free; cqrs_read_answer_cleanup). */
typedef struct {
  int status;
  bool stale;
  char *body;
  size_t len;
} cqrs_read_answer_t;

/* What to answer for doc (NULL: absent), given minVersion (0: no wait asked)
 * and whether there is time left to wait. Never NO_STORE or STOPPING: those
 * come from the caller. This function can't fail. */
cqrs_read_outcome_t cqrs_single_read_decide(const bson_t *doc, int64_t min_version, bool time_left);

/* The answer for outcome o (not WAIT) of read, with doc for FRESH and STALE.
 * The document is written as JSON without _id (cqrs_single_read_json). This
 * function can't fail. */
void cqrs_single_read_answer(const cqrs_single_read_t *read, cqrs_read_outcome_t o, const bson_t *doc,
                             int64_t min_version, cqrs_read_answer_t *out);

void cqrs_read_answer_cleanup(cqrs_read_answer_t *a);

/* doc as JSON without its _id: the one writer of every single read's 200.
 * Returns a string to bson_free; len may be NULL. */
char *cqrs_single_read_json(const bson_t *doc, size_t *len);

/* doc's version member (any number type); 0 when absent or NULL. */
int64_t cqrs_single_read_version(const bson_t *doc);

/* Appends read's sort to opts as "sort" (nothing when it has none). */
void cqrs_single_read_append_sort(const cqrs_single_read_t *read, bson_t *opts);

/* The find that answers read for value: filter {field: value}; options
 * limit 1, singleBatch and read's sort. Initialises filter and opts. */
void cqrs_single_read_query(const cqrs_single_read_t *read, const char *value, bson_t *filter, bson_t *opts);

#endif
