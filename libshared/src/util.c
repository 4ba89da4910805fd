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

int64_t cqrs_time_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool cqrs_time_parse_rfc3339(const char *s, int64_t *ms) {
  struct tm tm = {0};
  const char *p = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
  if (!p || strlen(s) < 19) return false;
  int64_t frac = 0;
  if (*p == '.') {
    int digits = 0;
    for (p++; *p >= '0' && *p <= '9'; p++, digits++)
      if (digits < 3) frac = frac * 10 + (*p - '0');
    if (digits == 0) return false;
    for (; digits < 3; digits++) frac *= 10;
  }
  int64_t offset_s = 0;
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if ((*p == '+' || *p == '-') && p[1] && p[2] && p[3] == ':' && p[4] && p[5]) {
    int sign = *p == '-' ? -1 : 1, hh, mm;
    if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2 || hh > 23 || mm > 59) return false;
    offset_s = sign * (hh * 3600 + mm * 60);
    p += 6;
  } else {
    return false;
  }
  if (*p) return false;
  *ms = ((int64_t)timegm(&tm) - offset_s) * 1000 + frac;
  return true;
}

void cqrs_time_format_rfc3339(int64_t ms, char out[32]) {
  time_t sec = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  int frac = (int)(ms - (int64_t)sec * 1000);
  struct tm tm;
  gmtime_r(&sec, &tm);
  char base[24];
  strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, 32, "%.19s.%03dZ", base, frac);
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
