/* Scope names <-> bits (cqrs/auth.h). Pure; one table. */
#include "cqrs/auth.h"

#include <string.h>

static const struct {
  unsigned bit;
  const char *name;
} scopes[] = {
    {CQRS_SCOPE_COMMANDS_WRITE, "commands:write"},
    {CQRS_SCOPE_QUERIES_READ, "queries:read"},
    {CQRS_SCOPE_ADMIN, "admin"},
    {CQRS_SCOPE_PLATFORM, "platform:admin"},
};

unsigned cqrs_scopes_parse(const char *s) {
  unsigned bits = 0;
  if (!s) return 0;
  while (*s) {
    s += strspn(s, " ");
    size_t n = strcspn(s, " ");
    for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++)
      if (n && strlen(scopes[i].name) == n && memcmp(scopes[i].name, s, n) == 0) bits |= scopes[i].bit;
    s += n;
  }
  return bits;
}

const char *cqrs_scope_name(unsigned bit) {
  for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++)
    if (scopes[i].bit == bit) return scopes[i].name;
  return NULL;
}
