/* cqrs_json_parse's fast path (libshared/src/json_fast.h) against libbson's
 * reader: whatever the fast path takes, it reads to the very bytes libbson
 * gives; whatever it is not sure of, it leaves to libbson. */
#include "json_fast.h"
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fast and libbson agree on text (or the fast path declines); returns
 * whether the fast path took it. */
static bool same_as_libbson(const char *text) {
  size_t len = strlen(text);
  bson_t *fast = cqrs_json_fast_parse(text, len);
  if (!fast) return false;
  bson_error_t berr;
  bson_t *ref = bson_new_from_json((const uint8_t *)text, (ssize_t)len, &berr);
  cr_assert_not_null(ref, "the fast path took what libbson refuses (%s): %s", berr.message, text);
  cr_assert(fast->len == ref->len && memcmp(bson_get_data(fast), bson_get_data(ref), fast->len) == 0,
            "the fast path reads it differently: %s", text);
  bson_destroy(fast);
  bson_destroy(ref);
  return true;
}

Test(json_fast, reads_plain_json_exactly_as_libbson) {
  static const char *const taken[] = {
      "{}",
      " \t\r\n{ } \n",
      "{\"a\":1}",
      "{\"tenant\":\"default\",\"aggregateId\":\"4b1c\",\"aggregateType\":\"user\",\"version\":1,\"state\":{\"userId\":"
      "\"4b1c\",\"email\":\"u@example.com\",\"name\":\"Seed User\",\"createdAt\":\"2026-11-22T00:00:00.000Z\"},"
      "\"recent\":[{\"commandId\":\"c1\",\"result\":\"{\\\"status\\\":201}\"}]}",
      "{\"i\":[0,1,-1,2147483647,-2147483648,2147483648,-2147483649,9223372036854775807,-9223372036854775808]}",
      "{\"d\":[0.5,-0.5,1e3,1E-3,2.5e+10,-0.0,0.0,1.7976931348623157e308,123456789.123456789]}",
      "{\"b\":true,\"f\":false,\"n\":null}",
      "{\"s\":\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"}",
      "{\"u\":\"\\u0041\\u00e9\\u20ac\\ud83d\\ude00 caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}",
      "{\"nested\":{\"a\":{\"b\":{\"c\":[[],[{}],[1,[2,[3]]]]}}},\"empty\":\"\"}",
      "{\"a\":1,\"b\":{\"a\":2},\"c\":[{\"a\":3},{\"a\":4}]}",
      "{\"key.with.dots\":1,\"\":2}",
  };
  for (size_t i = 0; i < sizeof taken / sizeof *taken; i++)
    cr_expect(same_as_libbson(taken[i]), "the fast path declined plain JSON: %s", taken[i]);
}

Test(json_fast, leaves_to_libbson_what_it_is_not_sure_of) {
  static const char *const declined[] = {
      "",
      "[1,2]",
      "{\"a\":1} x",
      "{\"a\":1,\"a\":2}",              /* json.c names the duplicate */
      "{\"o\":{\"k\":1,\"k\":2}}",
      "{\"d\":{\"$date\":\"2026-01-01T00:00:00Z\"}}", /* extended JSON */
      "{\"$oid\":\"x\"}",
      "{\"big\":9223372036854775808}",  /* json.c widens it */
      "{\"big\":-9223372036854775809}",
      "{\"z\":-0}",
      "{\"h\":1e400}",
      "{\"tiny\":5e-324}",            /* strtod: ERANGE */
      "{\"x\":01}",
      "{\"x\":1.}",
      "{\"x\":.5}",
      "{\"x\":+1}",
      "{\"x\":NaN}",
      "{\"s\":\"\\u0000\"}",
      "{\"s\":\"\\ud800\"}",
      "{\"s\":\"\\udc00\"}",
      "{\"s\":\"\\x41\"}",
      "{\"s\":\"bad \xff utf8\"}",
      "{\"s\":\"overlong \xc0\xaf\"}",
      "{\"s\":\"raw\ncontrol\"}",
      "{\"esc\\u0061ped key\":1}",
      "{\"a\":1,}",
      "{\"a\":[1,]}",
      "{\"a\" 1}",
      "{\"a\":tru}",
      "{\"a\":nul}",
      "{\"a\":\"unterminated}",
      "{\"a\":1",
  };
  for (size_t i = 0; i < sizeof declined / sizeof *declined; i++) {
    bson_t *doc = cqrs_json_fast_parse(declined[i], strlen(declined[i]));
    cr_expect_null(doc, "the fast path took: %s", declined[i]);
    if (doc) bson_destroy(doc);
  }
}

Test(json_fast, declines_deep_nesting_and_many_keys) {
  char deep[256] = "{\"a\":";
  for (int i = 0; i < 40; i++) strcat(deep, "[");
  for (int i = 0; i < 40; i++) strcat(deep, "]");
  strcat(deep, "}");
  cr_expect_null(cqrs_json_fast_parse(deep, strlen(deep)));
  char wide[2048] = "{";
  for (int i = 0; i < 70; i++) snprintf(wide + strlen(wide), sizeof wide - strlen(wide), "%s\"k%d\":%d", i ? "," : "", i, i);
  strcat(wide, "}");
  cr_expect_null(cqrs_json_fast_parse(wide, strlen(wide)));
}

/* ---- generated documents ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static unsigned next_rand(unsigned n) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (unsigned)(rng % n);
}

static void gen_string(char **o) {
  static const char *const pieces[] = {"a", "Z", " ", "\\\"", "\\\\", "\\n", "\\t", "\\u00e9", "\\u20ac",
                                       "\\ud83d\\ude00", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\\/", "7"};
  *(*o)++ = '"';
  for (unsigned n = next_rand(8); n > 0; n--) {
    const char *p = pieces[next_rand(sizeof pieces / sizeof *pieces)];
    size_t l = strlen(p);
    memcpy(*o, p, l);
    *o += l;
  }
  *(*o)++ = '"';
}

static void gen_value(char **o, int depth) {
  static const char *const scalars[] = {"0", "-1", "42", "2147483647", "2147483648", "-2147483649",
                                        "9223372036854775807", "1.5", "-2.25e-3", "1e10", "true", "false", "null"};
  unsigned kind = depth > 4 ? next_rand(2) : next_rand(4);
  if (kind == 0) {
    const char *s = scalars[next_rand(sizeof scalars / sizeof *scalars)];
    size_t l = strlen(s);
    memcpy(*o, s, l);
    *o += l;
  } else if (kind == 1) {
    gen_string(o);
  } else if (kind == 2) {
    *(*o)++ = '[';
    for (unsigned i = 0, n = next_rand(4); i < n; i++) {
      if (i) *(*o)++ = ',';
      gen_value(o, depth + 1);
    }
    *(*o)++ = ']';
  } else {
    *(*o)++ = '{';
    for (unsigned i = 0, n = next_rand(5); i < n; i++) {
      if (i) *(*o)++ = ',';
      *o += sprintf(*o, "%s\"k%u\" : ", next_rand(3) ? "" : " ", i); /* distinct keys */
      gen_value(o, depth + 1);
    }
    *(*o)++ = '}';
  }
}

Test(json_fast, generated_documents_read_as_libbson_reads_them) {
  static char text[1 << 16];
  size_t taken = 0;
  for (int i = 0; i < 3000; i++) {
    char *o = text;
    *o++ = '{';
    *o = '\0';
    o += sprintf(o, "\"root\":");
    gen_value(&o, 0);
    *o++ = '}';
    *o = '\0';
    taken += same_as_libbson(text);
  }
  cr_expect_eq(taken, 3000, "the fast path declined %zu generated plain documents", 3000 - taken);
}
