/* Clocks, RFC 3339 time and UUIDs (cqrs/util.h). The UUIDv5 values are
 * computed independently (Python: uuid.uuid5(UUID(namespace), name)), not by
 * the code under test. */
#include "cqrs/util.h"
#include "unit.h"

#include <ctype.h>
#include <regex.h>
#include <stdlib.h>
#include <time.h>

static bool matches(const char *pattern, const char *s) {
  regex_t re;
  cr_assert_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
  bool ok = regexec(&re, s, 0, NULL, 0) == 0;
  regfree(&re);
  return ok;
}

#define UUID_V4 "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
#define UUID_V5 "^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"

Test(util, now_is_rfc3339_utc_with_milliseconds_and_is_now) {
  char now[32];
  time_t before = time(NULL);
  cqrs_time_now_rfc3339(now);
  time_t after = time(NULL);
  cr_expect(matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$", now), "%s", now);
  struct tm tm = {0};
  cr_assert_not_null(strptime(now, "%Y-%m-%dT%H:%M:%S", &tm), "%s", now);
  time_t t = timegm(&tm);
  cr_expect(t >= before && t <= after, "%s is not the current UTC time", now);
}

Test(util, the_monotonic_clock_never_goes_back) {
  int64_t prev = cqrs_time_monotonic_ms();
  cr_expect_gt(prev, 0);
  for (int i = 0; i < 10000; i++) {
    int64_t t = cqrs_time_monotonic_ms();
    cr_assert_geq(t, prev);
    prev = t;
  }
}

Test(util, random_uuids_are_lower_case_version_4_and_distinct) {
  enum { N = 1000 };
  static char ids[N][CQRS_UUID_LEN];
  for (int i = 0; i < N; i++) {
    cqrs_uuid_random(ids[i]);
    cr_assert(matches(UUID_V4, ids[i]), "%s", ids[i]);
  }
  qsort(ids, N, CQRS_UUID_LEN, (int (*)(const void *, const void *))strcmp);
  for (int i = 1; i < N; i++) cr_assert_str_neq(ids[i - 1], ids[i]);
}

Test(util, a_name_based_uuid_is_the_uuid5_of_the_name_in_the_projects_namespace) {
  /* namespace 6f1c2c8e-3d1a-5b7e-9a43-2c9f4b7d8e01; expected values from Python's uuid.uuid5 */
  char id[CQRS_UUID_LEN];
  cqrs_uuid_from_name("cmd-001", id);
  cr_expect_str_eq(id, "186ab565-4b80-5994-915f-20cdf13fe36e");
  cqrs_uuid_from_name("", id);
  cr_expect_str_eq(id, "2eac6c41-2e75-5423-b681-e1092e23e6f9");
  cqrs_uuid_from_name("\xc3\xa9-\xe2\x98\x83", id); /* "é-☃": the UTF-8 bytes are the name */
  cr_expect_str_eq(id, "e6758b2f-a72a-5364-ab7f-f67d8c4cb24a");
  cr_expect(matches(UUID_V5, id), "%s", id);
}

Test(util, the_same_name_gives_the_same_uuid_and_another_name_another) {
  char a[CQRS_UUID_LEN], b[CQRS_UUID_LEN], c[CQRS_UUID_LEN];
  cqrs_uuid_from_name("retry-me", a);
  cqrs_uuid_from_name("retry-me", b);
  cqrs_uuid_from_name("retry-me ", c);
  cr_expect_str_eq(a, b);
  cr_expect_str_neq(a, c);
}

Test(util, rfc3339_parses_and_formats_back) {
  int64_t ms;
  cr_assert(cqrs_time_parse_rfc3339("2026-12-02T03:00:00.123Z", &ms));
  char out[32];
  cqrs_time_format_rfc3339(ms, out);
  cr_assert_str_eq(out, "2026-12-02T03:00:00.123Z");
  int64_t same;
  cr_assert(cqrs_time_parse_rfc3339("2026-12-02T04:30:00.123+01:30", &same));
  cr_assert_eq(same, ms, "an offset is applied");
  cr_assert(cqrs_time_parse_rfc3339("2026-12-02T03:00:00Z", &same));
  cr_assert_eq(same, ms - 123, "the fraction is optional");
  cr_assert(cqrs_time_parse_rfc3339("2026-12-02T03:00:00.5Z", &same));
  cr_assert_eq(same, ms - 123 + 500, ".5 is 500 ms");
  const char *bad[] = {"", "tomorrow", "2026-12-02", "2026-12-02T03:00:00", "2026-12-02T03:00:00.Z",
                       "2026-12-02T03:00:00Zjunk", "2026-12-02T03:00:00+1:00"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    cr_assert_not(cqrs_time_parse_rfc3339(bad[i], &same), "accepted \"%s\"", bad[i]);
  cr_assert_not(cqrs_time_parse_rfc3339(NULL, &same));
}
