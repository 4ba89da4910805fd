/* admin-svc's paths under /v1/schemas/ (admin-svc/path.h
 * admin_schema_path_split), as the schema registry's routes split every
 * request's path before they match it against their table
 * (routes/schemas.c).
 *
 * Input: the path after the prefix, NUL-terminated in a buffer of its exact
 * size plus the NUL (a read past the NUL is an ASan report). Properties,
 * against a reader of its own (count the '/'s, look for an empty segment):
 * split is exactly 1..ADMIN_SCHEMA_PATH_SEGMENTS non-empty segments within
 * ADMIN_SCHEMA_PATH_MAX bytes; a split path's segments are non-empty, hold no
 * '/', lie in the path's own buffer and rebuild to the input exactly (what
 * the routes index seg[] by and audit seg[1] as); a refused one holds no
 * segment. And the input's first segment, repeated 1 to
 * ADMIN_SCHEMA_PATH_SEGMENTS times, splits into those copies, once more is
 * refused. */
#include "fuzz.h"

#include "path.h"

/* Which split tail must have: its segments' count, or 0 for none. */
static size_t segments_of(const char *tail) {
  size_t len = strlen(tail), n = 1;
  if (len == 0 || len > ADMIN_SCHEMA_PATH_MAX) return 0;
  for (size_t i = 0; i < len; i++) {
    if (tail[i] != '/') continue;
    if (i == 0 || i == len - 1 || tail[i + 1] == '/') return 0; /* an empty segment */
    n++;
  }
  return n <= ADMIN_SCHEMA_PATH_SEGMENTS ? n : 0;
}

static void check_split(const char *tail) {
  admin_schema_path_t path;
  size_t want = segments_of(tail);
  bool ok = admin_schema_path_split(tail, &path);
  FUZZ_CHECK(ok == (want > 0), "\"%.80s\" (%zu bytes) split: %d, expected %zu segments", tail, strlen(tail), ok,
             want);
  if (!ok) {
    FUZZ_CHECK(path.n == 0, "\"%.80s\" refused with %zu segments", tail, path.n);
    return;
  }
  FUZZ_CHECK(path.n == want, "\"%.80s\": %zu segments, not %zu", tail, path.n, want);
  char again[ADMIN_SCHEMA_PATH_MAX + 1] = "";
  size_t at = 0;
  for (size_t i = 0; i < path.n; i++) {
    const char *s = path.seg[i];
    FUZZ_CHECK(s && s >= path.buf && s < path.buf + sizeof path.buf, "\"%.80s\": segment %zu outside the path", tail,
               i);
    size_t n = strlen(s);
    FUZZ_CHECK(n > 0 && !strchr(s, '/'), "\"%.80s\": segment %zu is \"%.80s\"", tail, i, s);
    FUZZ_CHECK(at + (i > 0) + n <= ADMIN_SCHEMA_PATH_MAX, "\"%.80s\": segments longer than the path", tail);
    if (i) again[at++] = '/';
    memcpy(again + at, s, n);
    at += n;
  }
  again[at] = '\0';
  FUZZ_CHECK(strcmp(again, tail) == 0, "\"%.80s\" split into what rebuilds as \"%.80s\"", tail, again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *tail = fuzz_text(data, size);
  check_split(tail);

  /* Completeness: the first segment, repeated. */
  size_t n = strcspn(tail, "/");
  if (n >= 1 && n <= ADMIN_SCHEMA_PATH_MAX) {
    char built[(ADMIN_SCHEMA_PATH_SEGMENTS + 1) * (ADMIN_SCHEMA_PATH_MAX + 1)];
    size_t at = 0;
    for (size_t k = 1; k <= ADMIN_SCHEMA_PATH_SEGMENTS + 1; k++) {
      if (k > 1) built[at++] = '/';
      memcpy(built + at, tail, n);
      at += n;
      built[at] = '\0';
      bool fits = at <= ADMIN_SCHEMA_PATH_MAX && k <= ADMIN_SCHEMA_PATH_SEGMENTS;
      admin_schema_path_t path;
      bool ok = admin_schema_path_split(built, &path);
      FUZZ_CHECK(ok == fits, "%zu copies of \"%.*s\" (%zu bytes) split: %d", k, (int)(n < 80 ? n : 80), tail, at,
                 ok);
      for (size_t i = 0; ok && i < k; i++)
        FUZZ_CHECK(path.n == k && strlen(path.seg[i]) == n && memcmp(path.seg[i], tail, n) == 0,
                   "%zu copies: segment %zu is \"%.80s\"", k, i, path.seg[i]);
      if (at > ADMIN_SCHEMA_PATH_MAX) break;
    }
  }
  free(tail);
  return 0;
}
