/* Query parameters, whichever way they came (a GET's query string or the
 * members of a POST /v1/query body), and the readers every route shares. Pure:
 * errors are CQRS_ERR_INVALID values naming the parameter, for a 400. */
#ifndef CQRS_PARAMS_H
#define CQRS_PARAMS_H

#include "cqrs/error.h"

#include <bson/bson.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CQRS_PARAMS_LIMIT_DEFAULT 50
#define CQRS_PARAMS_LIMIT_MAX 500
#define CQRS_PARAMS_WAIT_MS_MAX 10000
/* The member of a POST /v1/query body that names the query (API.md), a
 * string of at most CQRS_PARAMS_QUERY_TYPE_MAX characters. */
#define CQRS_PARAMS_QUERY_TYPE "queryType"
#define CQRS_PARAMS_QUERY_TYPE_MAX 64

typedef struct cqrs_params cqrs_params_t;

/* A new, empty set. Free with cqrs_params_destroy. This function can't fail
 * (allocation failure aborts, as everywhere in libbson). */
cqrs_params_t *cqrs_params_new(void);

/* Frees p and the copies it holds. NULL is fine. */
void cqrs_params_destroy(cqrs_params_t *p);

/* Adds name=value (both copied). False with err naming name when name is
 * already there: a parameter given twice is refused, not guessed at. */
bool cqrs_params_add(cqrs_params_t *p, const char *name, const char *value, cqrs_error_t *err);

/* The value of name, borrowed from p; NULL when absent. */
const char *cqrs_params_get(const cqrs_params_t *p, const char *name);

/* Reads name into *out (borrowed from p; NULL when absent and not required).
 * Absent or empty while required, not valid UTF-8, or longer than max_len
 * characters (0: no limit) is an error naming name. */
bool cqrs_params_string(const cqrs_params_t *p, const char *name, bool required, size_t max_len,
                        const char **out, cqrs_error_t *err);

/* Reads "limit": CQRS_PARAMS_LIMIT_DEFAULT when absent, else a decimal integer
 * in 1..CQRS_PARAMS_LIMIT_MAX; anything else is an error naming "limit". */
bool cqrs_params_limit(const cqrs_params_t *p, int *out, cqrs_error_t *err);

/* Reads "cursor" (NULL when absent); an empty or overlong one is an error
 * naming "cursor". Its content is checked by cqrs_cursor_decode. */
bool cqrs_params_cursor(const cqrs_params_t *p, const char **out, cqrs_error_t *err);

/* Which of two alternative parameters is given: *out = a or b. Neither is an
 * error naming a; both is an error naming b. */
bool cqrs_params_one_of(const cqrs_params_t *p, const char *a, const char *b, const char **out,
                        cqrs_error_t *err);

/* Reads name (required) and checks it is one of allowed (NULL-terminated);
 * otherwise an error naming name that lists the allowed values. */
bool cqrs_params_enum(const cqrs_params_t *p, const char *name, const char *const *allowed,
                      const char **out, cqrs_error_t *err);

/* Reads an optional RFC 3339 time name ("2026-03-01T10:00:00Z", any offset,
 * any fraction) into out as the events' own form, UTC with milliseconds
 * ("2026-03-01T10:00:00.000Z"), so it compares with their times as text.
 * Absent: true, *raw NULL and out "". Otherwise *raw is the text as given.
 * Not such a time (or before 1970, or after 9999) is an error naming name. */
bool cqrs_params_time(const cqrs_params_t *p, const char *name, const char **raw, char out[32], cqrs_error_t *err);

/* ms since the epoch (>= 0) as "YYYY-MM-DDTHH:MM:SS.mmmZ". Can't fail. */
void cqrs_params_format_time(int64_t ms, char out[32]);

/* Reads an optional decimal integer name in [min, max] into *out. Absent:
 * true, *raw NULL, *out 0. Anything else is an error naming name. */
bool cqrs_params_int(const cqrs_params_t *p, const char *name, int64_t min, int64_t max, const char **raw,
                     int64_t *out, cqrs_error_t *err);

/* Reads read-your-writes' pair (API.md): "minVersion", a decimal integer in
 * [0, INT64_MAX], into *min_version and "waitMs", one in
 * [0, CQRS_PARAMS_WAIT_MS_MAX], into *wait_ms; each 0 when absent. p may be
 * NULL (no parameters). Anything else is an error naming the first bad one
 * ("<name> must be an integer in [0, <max>]", as cqrs_params_int says it). */
bool cqrs_params_wait(const cqrs_params_t *p, int64_t *min_version, int64_t *wait_ms, cqrs_error_t *err);

/* The members of a POST /v1/query body (as cqrs_json_parse gave it;
 * borrowed) as parameters of the query it names, added to p (the caller's,
 * normally empty), so the same readers take them as a GET's query string:
 * a string member as it is, an integer (int32 or int64: a JSON limit,
 * minVersion, ...) in decimal, null as absent. The first "queryType" member
 * is skipped (the caller has read it: query names it, for messages). False
 * with a CQRS_ERR_INVALID err naming the first member that is none of
 * those: a second "queryType", a member not in allowed (the query's
 * parameters, NULL-terminated), a string holding a NUL, any other type (a
 * fraction, a boolean, an array, an object), or one p already has; p then
 * holds the members before it and is the caller's to destroy either way.
 * Values are copied; nothing is truncated (the readers bound lengths). This
 * function can't fail otherwise. */
bool cqrs_params_body(const bson_t *body, const char *query, const char *const *allowed, cqrs_params_t *p,
                      cqrs_error_t *err);

#endif
