/* Small helpers every module needs: clocks, RFC 3339 time, UUIDs. */
#ifndef CQRS_UTIL_H
#define CQRS_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#define CQRS_UUID_LEN 37 /* 36 characters and the NUL */

/* Writes the current UTC time as RFC 3339 with milliseconds
 * ("2026-11-22T05:51:37.123Z") into out, which holds at least 32 bytes. */
void cqrs_time_now_rfc3339(char out[32]);

/* Parses RFC 3339 ("2026-11-22T05:51:37.123Z", fraction optional, "Z" or
 * "+hh:mm") into milliseconds since the epoch. False when s is not that. */
bool cqrs_time_parse_rfc3339(const char *s, int64_t *ms);

/* Writes ms since the epoch as RFC 3339 UTC with milliseconds into out (32
 * bytes), as cqrs_time_now_rfc3339 does. Can't fail. */
void cqrs_time_format_rfc3339(int64_t ms, char out[32]);

/* Wall-clock milliseconds since the epoch. Can't fail. */
int64_t cqrs_time_now_ms(void);

/* Milliseconds of CLOCK_MONOTONIC, for deadlines and durations. */
int64_t cqrs_time_monotonic_ms(void);

/* A random (version 4) UUID in lower-case text form. */
void cqrs_uuid_random(char out[CQRS_UUID_LEN]);

/* A name-based (version 5, SHA-1) UUID of name within the project's fixed
 * namespace: the same name always gives the same UUID. Used to derive the
 * aggregateId of a create command from its commandId, so a retried create lands
 * on the same aggregate. */
void cqrs_uuid_from_name(const char *name, char out[CQRS_UUID_LEN]);

#endif
