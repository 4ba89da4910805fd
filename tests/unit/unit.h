/* Helpers shared by the unit tests: read members of a JSON text or a BSON
 * document in one call, failing the test when the shape is wrong. */
#ifndef CQRS_UNIT_H
#define CQRS_UNIT_H

#include <bson/bson.h>
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Parses json (which must be a JSON object) into a new document. */
static inline bson_t *u_parse(const char *json) {
  cr_assert_not_null(json, "JSON text is NULL");
  bson_error_t berr;
  bson_t *doc = bson_new_from_json((const uint8_t *)json, -1, &berr);
  cr_assert_not_null(doc, "not JSON (%s): %s", berr.message, json);
  return doc;
}

/* True when doc has dotted path (e.g. "$set.name"). */
static inline bool u_has(const bson_t *doc, const char *path) {
  bson_iter_t it, child;
  return bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &child);
}

/* The string at path; fails the test when absent or not a string. Borrowed. */
static inline const char *u_str(const bson_t *doc, const char *path) {
  bson_iter_t it, child;
  cr_assert(bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &child),
            "%s is absent", path);
  cr_assert(BSON_ITER_HOLDS_UTF8(&child), "%s is not a string", path);
  return bson_iter_utf8(&child, NULL);
}

/* The integer at path; fails the test when absent or not an integer. */
static inline int64_t u_i64(const bson_t *doc, const char *path) {
  bson_iter_t it, child;
  cr_assert(bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &child),
            "%s is absent", path);
  cr_assert(BSON_ITER_HOLDS_INT32(&child) || BSON_ITER_HOLDS_INT64(&child),
            "%s is not an integer", path);
  return bson_iter_as_int64(&child);
}

/* True when path is present and null. */
static inline bool u_is_null(const bson_t *doc, const char *path) {
  bson_iter_t it, child;
  return bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &child) &&
         BSON_ITER_HOLDS_NULL(&child);
}

/* Number of top-level members of doc. */
static inline uint32_t u_count(const bson_t *doc) { return bson_count_keys(doc); }

/* ---- stderr capture: log lines are write(2)s to fd 2 ---- */

static FILE *u_captured;
static int u_saved_stderr = -1;

/* Sends what is written to stderr from now on to a temporary file. */
static inline void u_capture_start(void) {
  u_captured = tmpfile();
  cr_assert_not_null(u_captured);
  fflush(stderr);
  u_saved_stderr = dup(STDERR_FILENO);
  dup2(fileno(u_captured), STDERR_FILENO);
}

/* Everything written to stderr since u_capture_start; caller frees. */
static inline char *u_capture_end(void) {
  fflush(stderr);
  dup2(u_saved_stderr, STDERR_FILENO);
  close(u_saved_stderr);
  long n = ftell(u_captured);
  char *text = calloc(1, (size_t)n + 1);
  rewind(u_captured);
  size_t got = fread(text, 1, (size_t)n, u_captured);
  text[got] = '\0';
  fclose(u_captured);
  return text;
}

#endif
