/* Single-document reads: the decision and the answer, shared by reads that
 * answer at once and reads that waited. */
#include "single_read.h"

#include "cqrs/json.h"

#include <string.h>

int64_t cqrs_single_read_version(const bson_t *doc) {
  bson_iter_t it;
  return doc && bson_iter_init_find(&it, doc, "version") && BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_int64(&it) : 0;
}

cqrs_read_outcome_t cqrs_single_read_decide(const bson_t *doc, int64_t min_version, bool time_left) {
  if (doc && cqrs_single_read_version(doc) >= min_version) return CQRS_READ_FRESH;
  if (min_version == 0) return CQRS_READ_ABSENT; /* no wait asked: absent is final */
  if (time_left) return CQRS_READ_WAIT;
  return doc ? CQRS_READ_STALE : CQRS_READ_ABSENT;
}

/* How each final outcome answers. */
static const struct {
  int status;
  bool with_doc;          /* the body is the document */
  bool stale_if_asked;    /* X-Stale: true when minVersion > 0 */
  const char *error;      /* the error message; NULL: the read's not_found */
} ANSWERS[] = {
    [CQRS_READ_FRESH] = {200, true, false, NULL},
    [CQRS_READ_STALE] = {200, true, true, NULL},
    [CQRS_READ_ABSENT] = {404, false, true, NULL},
    [CQRS_READ_NO_STORE] = {503, false, false, "the read store did not answer"},
    [CQRS_READ_STOPPING] = {503, false, false, "the service is stopping"},
};

char *cqrs_single_read_json(const bson_t *doc, size_t *len) {
  bson_t out;
  bson_init(&out);
  bson_copy_to_excluding_noinit(doc, &out, "_id", NULL);
  char *json = cqrs_json_write(&out, len);
  bson_destroy(&out);
  return json;
}

void cqrs_single_read_answer(const cqrs_single_read_t *read, cqrs_read_outcome_t o, const bson_t *doc,
                             int64_t min_version, cqrs_read_answer_t *out) {
  BSON_ASSERT(o != CQRS_READ_WAIT && (size_t)o < sizeof ANSWERS / sizeof ANSWERS[0]);
  memset(out, 0, sizeof *out);
  out->status = ANSWERS[o].status;
  out->stale = ANSWERS[o].stale_if_asked && min_version > 0;
  if (ANSWERS[o].with_doc) {
    BSON_ASSERT(doc);
    out->body = cqrs_single_read_json(doc, &out->len);
    return;
  }
  bson_string_t *s = bson_string_new("{\"error\":");
  cqrs_json_append_string(s, ANSWERS[o].error ? ANSWERS[o].error : read->not_found);
  bson_string_append_c(s, '}');
  out->len = s->len;
  out->body = bson_string_free(s, false);
}

void cqrs_read_answer_cleanup(cqrs_read_answer_t *a) {
  if (!a) return;
  bson_free(a->body);
  memset(a, 0, sizeof *a);
}

void cqrs_single_read_append_sort(const cqrs_single_read_t *read, bson_t *opts) {
  if (!read->sort || !read->sort[0]) return;
  bson_t sort;
  BSON_APPEND_DOCUMENT_BEGIN(opts, "sort", &sort);
  for (const char *const *k = read->sort; *k; k++) BSON_APPEND_INT32(&sort, *k, 1);
  bson_append_document_end(opts, &sort);
}

void cqrs_single_read_query(const cqrs_single_read_t *read, const char *value, bson_t *filter, bson_t *opts) {
  bson_init(filter);
  bson_init(opts);
  bson_append_utf8(filter, read->field, -1, value, -1);
  BSON_APPEND_INT64(opts, "limit", 1);
  /* The server closes the cursor at once: FerretDB deadlocks when an open
   * cursor meets a collection being created (seen during rebuilds). */
  BSON_APPEND_BOOL(opts, "singleBatch", true);
  cqrs_single_read_append_sort(read, opts);
}
