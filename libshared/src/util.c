/* Clocks, RFC 3339 time and UUIDs. */
#include "cqrs/util.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

void cqrs_time_now_rfc3339(char out[32]) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char base[24];
  strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, 32, "%.19s.%03dZ", base, (int)(ts.tv_nsec / 1000000) % 1000);
}

int64_t cqrs_time_monotonic_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cqrs_uuid_random(char out[CQRS_UUID_LEN]) {
  uuid_t u;
  uuid_generate_random(u);
  uuid_unparse_lower(u, out);
}

void cqrs_uuid_from_name(const char *name, char out[CQRS_UUID_LEN]) {
  /* The project's namespace; changing it would change every derived id. */
  static const char *ns_text = "6f1c2c8e-3d1a-5b7e-9a43-2c9f4b7d8e01";
  uuid_t ns, u;
  uuid_parse(ns_text, ns);
  uuid_generate_sha1(u, ns, name, strlen(name));
  uuid_unparse_lower(u, out);
}
