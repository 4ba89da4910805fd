/* JSON log lines. Built in a string and written with one write(2) so lines from
 * several threads never interleave. */
#include "cqrs/log.h"
#include "cqrs/json.h"
#include "cqrs/util.h"

#include <bson/bson.h>
#include <stdarg.h>
#include <strings.h>
#include <unistd.h>

static const char *level_names[] = {"debug", "info", "warn", "error"};

bool cqrs_log_level_parse(const char *s, cqrs_log_level_t *out) {
  for (int i = 0; i < 4; i++) {
    if (s && strcasecmp(s, level_names[i]) == 0) {
      *out = (cqrs_log_level_t)i;
      return true;
    }
  }
  return false;
}

void cqrs_log(const cqrs_log_t *log, cqrs_log_level_t level, const char *msg, ...) {
  if (log && level < log->level) return;
  char now[32];
  cqrs_time_now_rfc3339(now);
  bson_string_t *line = bson_string_new("{\"time\":\"");
  bson_string_append(line, now);
  bson_string_append(line, "\",\"level\":\"");
  bson_string_append(line, level_names[level]);
  bson_string_append(line, "\",\"service\":");
  cqrs_json_append_string(line, log && log->service ? log->service : "cqrs");
  bson_string_append(line, ",\"message\":");
  cqrs_json_append_string(line, msg);
  va_list ap;
  va_start(ap, msg);
  for (const char *key; (key = va_arg(ap, const char *)) != NULL;) {
    const char *value = va_arg(ap, const char *);
    bson_string_append_c(line, ',');
    cqrs_json_append_string(line, key);
    bson_string_append_c(line, ':');
    if (value)
      cqrs_json_append_string(line, value);
    else
      bson_string_append(line, "null");
  }
  va_end(ap);
  bson_string_append(line, "}\n");
  ssize_t rc = write(STDERR_FILENO, line->str, line->len);
  (void)rc;
  bson_string_free(line, true);
}
