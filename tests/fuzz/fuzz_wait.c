/* Read-your-writes' parameters of every single read (query-svc/params.h
 * cqrs_params_wait: minVersion and waitMs), read as the routes read them
 * (routes/common.c) from the parameters the request brought.
 *
 * Input: a query string "name=value&name=value" (no percent-decoding: evhttp
 * does that first), at most 16 pairs. Properties, against a reader of its own
 * (optional white space and sign, then decimal digits only, as strtoll reads
 * a whole value): what is taken is each value as written (0 when absent),
 * within [0, INT64_MAX] and [0, CQRS_PARAMS_WAIT_MS_MAX]; what is refused is
 * refused naming the first bad one of the two, in a message that names it. */
#include "fuzz.h"

#include "params.h"

#include <ctype.h>
#include <stdint.h>

#define MAX_PAIRS 16

/* value as a decimal integer in [0, max] into *out. */
static bool decimal(const char *value, int64_t max, int64_t *out) {
  const char *s = value;
  while (isspace((unsigned char)*s)) s++;
  bool negative = *s == '-';
  if (*s == '+' || *s == '-') s++;
  if (!*s) return false;
  uint64_t magnitude = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return false;
    unsigned d = (unsigned)(*s - '0');
    if (magnitude > (UINT64_MAX - d) / 10) return false; /* beyond anything in range */
    magnitude = magnitude * 10 + d;
  }
  if (negative && magnitude) return false;
  if (magnitude > (uint64_t)max) return false;
  *out = (int64_t)magnitude;
  return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = fuzz_text(data, size), *end = text + size, *rest = text, *pair;
  cqrs_params_t *p = cqrs_params_new();
  for (int n = 0; n < MAX_PAIRS && (pair = fuzz_next(&rest, end, '&', NULL)); n++) {
    char *eq = strchr(pair, '=');
    if (eq) *eq = '\0';
    if (!*pair) continue;
    cqrs_params_add(p, pair, eq ? eq + 1 : "", NULL); /* a name given twice keeps its first value */
  }
  static const struct {
    const char *name;
    int64_t max;
  } PAIR[] = {{"minVersion", INT64_MAX}, {"waitMs", CQRS_PARAMS_WAIT_MS_MAX}};
  int64_t want[2] = {0, 0};
  int first_bad = -1;
  for (int i = 0; i < 2 && first_bad < 0; i++) {
    const char *v = cqrs_params_get(p, PAIR[i].name);
    if (v && !decimal(v, PAIR[i].max, &want[i])) first_bad = i;
  }

  int64_t got[2] = {-1, -1};
  cqrs_error_t err = {0};
  bool ok = cqrs_params_wait(p, &got[0], &got[1], &err);
  if (first_bad < 0) {
    FUZZ_CHECK(ok, "refused: %s (%s)", err.message, err.field);
    for (int i = 0; i < 2; i++)
      FUZZ_CHECK(got[i] == want[i], "%s read as %lld, written %lld", PAIR[i].name, (long long)got[i],
                 (long long)want[i]);
  } else {
    const char *name = PAIR[first_bad].name;
    FUZZ_CHECK(!ok, "%s=%s taken as %lld", name, cqrs_params_get(p, name), (long long)got[first_bad]);
    FUZZ_CHECK(err.code == CQRS_ERR_INVALID && strcmp(err.field, name) == 0, "%s refused as %d (%s)", name,
               (int)err.code, err.field);
    FUZZ_CHECK(strstr(err.message, name) != NULL, "the message does not name %s: %s", name, err.message);
  }

  /* No parameters at all (a route without a query): nothing to wait for. */
  got[0] = got[1] = -1;
  FUZZ_CHECK(cqrs_params_wait(NULL, &got[0], &got[1], NULL) && got[0] == 0 && got[1] == 0, "no parameters");
  cqrs_params_destroy(p);
  free(text);
  return 0;
}
