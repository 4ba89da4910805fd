/* JSON log lines on stderr: one object a line with time, level, service, message
 * and any key/value pairs the caller adds (commandId, aggregateId, ...). */
#ifndef CQRS_LOG_H
#define CQRS_LOG_H

#include <stdbool.h>

typedef enum { CQRS_LOG_DEBUG = 0, CQRS_LOG_INFO, CQRS_LOG_WARN, CQRS_LOG_ERROR } cqrs_log_level_t;

/* Embedded, no allocation: fill it once at start and pass it down by pointer. */
typedef struct {
  const char *service; /* borrowed, must outlive the logger */
  cqrs_log_level_t level;
} cqrs_log_t;

/* Parses "debug", "info", "warn" or "error" (any case). False on anything else. */
bool cqrs_log_level_parse(const char *s, cqrs_log_level_t *out);

/* Writes one line if level >= log->level. The variadic part is key, value string
 * pairs ending with NULL; a NULL value is written as JSON null. Thread-safe: the
 * line goes out in one write(2). This function can't fail (a failed write is
 * dropped). */
void cqrs_log(const cqrs_log_t *log, cqrs_log_level_t level, const char *msg, ...)
    __attribute__((sentinel));

#define cqrs_log_debug(l, ...) cqrs_log((l), CQRS_LOG_DEBUG, __VA_ARGS__)
#define cqrs_log_info(l, ...) cqrs_log((l), CQRS_LOG_INFO, __VA_ARGS__)
#define cqrs_log_warn(l, ...) cqrs_log((l), CQRS_LOG_WARN, __VA_ARGS__)
#define cqrs_log_error(l, ...) cqrs_log((l), CQRS_LOG_ERROR, __VA_ARGS__)

#endif
