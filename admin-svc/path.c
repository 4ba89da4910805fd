/* Splitting admin-svc's paths into their parts (path.h): a path under
 * /v1/admin/tenants/ into tenant and key, one under /v1/schemas/ into its
 * segments. */
#include "path.h"

#include <string.h>

int admin_path_split(const char *tail, admin_path_t *path) {
  memset(path, 0, sizeof *path);
  const char *slash = strchr(tail, '/');
  size_t n = slash ? (size_t)(slash - tail) : strlen(tail);
  if (n == 0 || n > CQRS_TENANT_MAX) return 0;
  memcpy(path->tenant, tail, n);
  if (!cqrs_tenant_valid(path->tenant, NULL)) return 0;
  if (!slash) return 1;
  if (strcmp(slash, "/keys") == 0) return 2;
  if (strncmp(slash, "/keys/", 6) != 0) return 0;
  const char *k = slash + 6;
  if (strlen(k) != CQRS_KEY_ID_LEN || strspn(k, "0123456789abcdef") != CQRS_KEY_ID_LEN) return 0;
  memcpy(path->key_id, k, CQRS_KEY_ID_LEN);
  return 3;
}

bool admin_schema_path_split(const char *tail, admin_schema_path_t *path) {
  memset(path, 0, sizeof *path);
  size_t len = strlen(tail);
  if (len == 0 || len > ADMIN_SCHEMA_PATH_MAX) return false;
  memcpy(path->buf, tail, len + 1);
  for (char *s = path->buf;;) {
    char *slash = strchr(s, '/');
    if (path->n == ADMIN_SCHEMA_PATH_SEGMENTS || slash == s || !*s) {
      memset(path, 0, sizeof *path);
      return false;
    }
    path->seg[path->n++] = s;
    if (!slash) return true;
    *slash = '\0';
    s = slash + 1;
  }
}
