/* The paths admin-svc's routes split before they choose a handler: those
 * under /v1/admin/tenants/ that the tenant and key routes serve ("{t}",
 * "{t}/keys", "{t}/keys/{keyId}"), and those under /v1/schemas/ that the
 * schema registry's routes serve (up to ADMIN_SCHEMA_PATH_SEGMENTS segments,
 * routes/schemas.c). Pure: the text comes from the network, so anything else
 * is a "no path" (the routes then answer 404), never an abort. */
#ifndef ADMIN_PATH_H
#define ADMIN_PATH_H

#include "cqrs/control.h"
#include "cqrs/tenant.h"

#include <stdbool.h>
#include <stddef.h>

/* The parts of a path under /v1/admin/tenants/, in caller storage. */
typedef struct {
  char tenant[CQRS_TENANT_MAX + 1];
  char key_id[CQRS_KEY_ID_LEN + 1]; /* "" unless the path names a key */
} admin_path_t;

/* Splits tail (the path after "/v1/admin/tenants/", NUL-terminated,
 * borrowed) into *path, which it zeroes first: 1 for "{t}", 2 for
 * "{t}/keys", 3 for "{t}/keys/{keyId}", with t a valid tenant id
 * (cqrs_tenant_valid) and keyId CQRS_KEY_ID_LEN lowercase hex characters.
 * 0 for anything else (path then holds nothing to act on). This function
 * can't fail. */
int admin_path_split(const char *tail, admin_path_t *path);

/* Room for the segments of a path under /v1/schemas/ (the registry's longest
 * route, "subjects/{s}/versions/{v}/schema", has 5) and for its text. */
#define ADMIN_SCHEMA_PATH_SEGMENTS 6
#define ADMIN_SCHEMA_PATH_MAX 511

/* A path under /v1/schemas/ split at '/', in caller storage: seg[0..n) point
 * into buf, so the struct must not be copied (the copy's seg[] would still
 * point into the original). */
typedef struct {
  const char *seg[ADMIN_SCHEMA_PATH_SEGMENTS];
  size_t n;
  char buf[ADMIN_SCHEMA_PATH_MAX + 1];
} admin_schema_path_t;

/* Splits tail (the path after "/v1/schemas/", NUL-terminated, borrowed) at
 * each '/' into *path: true with n in 1..ADMIN_SCHEMA_PATH_SEGMENTS segments,
 * each non-empty and without '/', in order, so that joined with '/' they are
 * tail again. False, with *path zeroed (n 0: nothing to act on), when tail is
 * empty, longer than ADMIN_SCHEMA_PATH_MAX bytes, has more than
 * ADMIN_SCHEMA_PATH_SEGMENTS segments, or an empty one (a leading, trailing or
 * doubled '/'). What a segment means (a subject, a version, an id) is the
 * routes' to check. This function can't fail. */
bool admin_schema_path_split(const char *tail, admin_schema_path_t *path);

#endif
