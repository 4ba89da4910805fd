/* Error values shared by every module: a code that maps to an HTTP status, the
 * offending field (for 400s), and a human message. */
#ifndef CQRS_ERROR_H
#define CQRS_ERROR_H

#include <stdbool.h>
#include <stdint.h>

typedef enum {
  CQRS_ERR_NONE = 0,
  CQRS_ERR_INVALID,     /* bad input: 400 */
  CQRS_ERR_NOT_FOUND,   /* 404 */
  CQRS_ERR_CONFLICT,    /* stale expectedVersion: 409 */
  CQRS_ERR_TOO_LARGE,   /* 413 */
  CQRS_ERR_REFUSED,     /* a business rule said no: 422 */
  CQRS_ERR_UNAVAILABLE, /* a dependency did not answer in time: 503, retriable */
  CQRS_ERR_INTERNAL,    /* a bug or an unexpected store answer: 500 */
  CQRS_ERR_UNAUTHENTICATED, /* no credential, or one that does not verify: 401 */
  CQRS_ERR_FORBIDDEN,   /* a verified credential without the scope or tenant needed: 403 */
  CQRS_ERR_RATE_LIMITED, /* the tenant's rate limit: 429, retriable */
  CQRS_ERR_FATAL        /* the process must exit (fenced producer, ...) */
} cqrs_error_code_t;

typedef struct {
  cqrs_error_code_t code;
  bool retriable;
  int64_t current_version; /* set with CQRS_ERR_CONFLICT */
  int64_t retry_after_ms;  /* set with CQRS_ERR_RATE_LIMITED: when a token comes (0: unknown) */
  char field[64];          /* set with CQRS_ERR_INVALID when a field is to blame */
  char message[256];
} cqrs_error_t;

/* Fills err (which may be NULL) and clears the other members. field may be NULL.
 * This function can't fail; long messages are truncated. */
void cqrs_error_set(cqrs_error_t *err, cqrs_error_code_t code, const char *field,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Resets err to "no error". err may be NULL. */
void cqrs_error_clear(cqrs_error_t *err);

/* The HTTP status that answers a client for this code (500 for unknown codes). */
int cqrs_error_http_status(cqrs_error_code_t code);

#endif
