/* The paths under /v1/admin/tenants/ that admin-svc's tenant and key routes
 * serve ("{t}", "{t}/keys", "{t}/keys/{keyId}"), split into their parts.
 * Pure: the text comes from the network, so anything else is a 0 (the gate
 * then answers 404), never an abort. */
#ifndef ADMIN_PATH_H
#define ADMIN_PATH_H

#include "cqrs/control.h"
#include "cqrs/tenant.h"

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

#endif
