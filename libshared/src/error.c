/* Error values: setting them and mapping them to HTTP statuses. */
#include "cqrs/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void cqrs_error_set(cqrs_error_t *err, cqrs_error_code_t code, const char *field,
                    const char *fmt, ...) {
  if (!err) return;
  memset(err, 0, sizeof *err);
  err->code = code;
  err->retriable = code == CQRS_ERR_UNAVAILABLE || code == CQRS_ERR_RATE_LIMITED;
  if (field) snprintf(err->field, sizeof err->field, "%s", field);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
}

void cqrs_error_clear(cqrs_error_t *err) {
  if (err) memset(err, 0, sizeof *err);
}

int cqrs_error_http_status(cqrs_error_code_t code) {
  switch (code) {
  case CQRS_ERR_NONE: return 200;
  case CQRS_ERR_INVALID: return 400;
  case CQRS_ERR_NOT_FOUND: return 404;
  case CQRS_ERR_CONFLICT: return 409;
  case CQRS_ERR_TOO_LARGE: return 413;
  case CQRS_ERR_REFUSED: return 422;
  case CQRS_ERR_UNAVAILABLE: return 503;
  case CQRS_ERR_UNAUTHENTICATED: return 401;
  case CQRS_ERR_FORBIDDEN: return 403;
  case CQRS_ERR_RATE_LIMITED: return 429;
  default: return 500;
  }
}
