/* Tenant ids and the names derived from them (cqrs/tenant.h). */
#include "cqrs/alloc.h"
#include "cqrs/tenant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool tenant_char(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (!first && c == '-');
}

bool cqrs_tenant_valid(const char *t, cqrs_error_t *err) {
  if (!t || !*t) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "tenantId", "tenantId must not be empty");
    return false;
  }
  size_t n = strlen(t);
  if (n > CQRS_TENANT_MAX) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "tenantId", "tenantId is longer than %d characters", CQRS_TENANT_MAX);
    return false;
  }
  for (size_t i = 0; i < n; i++)
    if (!tenant_char(t[i], i == 0)) {
      cqrs_error_set(err, CQRS_ERR_INVALID, "tenantId",
                     "tenantId may hold only a-z, 0-9 and '-' (not first); found a bad character at %zu", i);
      return false;
    }
  return true;
}

static char *join(const char *a, char sep, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  char *s = cqrs_xmalloc(la + lb + 2);
  memcpy(s, a, la);
  s[la] = sep;
  memcpy(s + la + 1, b, lb + 1);
  return s;
}

char *cqrs_tenant_db(const char *mongo_db, const char *tenant) { return join(mongo_db, '_', tenant); }

char *cqrs_tenant_key(const char *tenant, const char *aggregate_id) {
  return join(tenant, CQRS_TENANT_KEY_SEP, aggregate_id);
}

bool cqrs_tenant_key_split(const char *key, size_t len, char tenant[CQRS_TENANT_MAX + 1],
                           const char **aggregate_id) {
  const char *sep = memchr(key, CQRS_TENANT_KEY_SEP, len);
  if (!sep || sep == key || (size_t)(sep - key) > CQRS_TENANT_MAX || sep + 1 == key + len) return false;
  memcpy(tenant, key, (size_t)(sep - key));
  tenant[sep - key] = '\0';
  if (!cqrs_tenant_valid(tenant, NULL)) return false;
  *aggregate_id = sep + 1;
  return true;
}

#define TOPIC_HEAD "tenant."
#define TOPIC_TAIL ".commands"

char *cqrs_tenant_topic(const char *prefix, const char *tenant) {
  size_t n = strlen(prefix) + strlen(TOPIC_HEAD) + strlen(tenant) + strlen(TOPIC_TAIL) + 1;
  char *s = cqrs_xmalloc(n);
  snprintf(s, n, "%s" TOPIC_HEAD "%s" TOPIC_TAIL, prefix, tenant);
  return s;
}

bool cqrs_tenant_topic_split(const char *prefix, const char *topic, char tenant[CQRS_TENANT_MAX + 1]) {
  size_t lp = strlen(prefix), lh = strlen(TOPIC_HEAD), lt = strlen(TOPIC_TAIL), n = strlen(topic);
  if (n <= lp + lh + lt || strncmp(topic, prefix, lp) != 0 || strncmp(topic + lp, TOPIC_HEAD, lh) != 0 ||
      strcmp(topic + n - lt, TOPIC_TAIL) != 0)
    return false;
  size_t len = n - lp - lh - lt;
  if (len > CQRS_TENANT_MAX) return false;
  char t[CQRS_TENANT_MAX + 1];
  memcpy(t, topic + lp + lh, len);
  t[len] = '\0';
  if (!cqrs_tenant_valid(t, NULL)) return false;
  memcpy(tenant, t, len + 1);
  return true;
}
