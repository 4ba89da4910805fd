/* Tenants: what a tenant id may be, and the names derived from it. Pure.
 *
 * A tenant id is 1 to CQRS_TENANT_MAX characters of [a-z0-9-], starting with
 * a letter or digit. Neither '/' nor '_' can occur in one, and that is what
 * makes the derived names unambiguous:
 *   - the aggregate key "<tenant>/<aggregateId>" keys commands, events and
 *     aggregate-state, so the same aggregate id in two tenants is two
 *     aggregates (and two compacted state records);
 *   - the read-model database "<MONGO_DB>_<tenant>" holds one tenant's
 *     documents, so no tenant's database name is another's with a suffix;
 *   - a tenant's own command topic "<prefix>tenant.<tenant>.commands" (the
 *     second tier of Kafka ingress): '.' cannot occur in one, so a prefixed
 *     broker ACL on "<prefix>tenant.<tenant>." never covers another tenant's. */
#ifndef CQRS_TENANT_H
#define CQRS_TENANT_H

#include "cqrs/error.h"

#include <stdbool.h>
#include <stddef.h>

#define CQRS_TENANT_MAX 31 /* characters; "<MONGO_DB>_<tenant>" stays within 63 */

/* The tenant of every request when AUTH=off, and of events written before
 * tenancy existed (no ce_tenant header). */
#define CQRS_TENANT_DEFAULT "default"

/* The separator of an aggregate key. */
#define CQRS_TENANT_KEY_SEP '/'

/* True when t is a valid tenant id; otherwise false with err (CQRS_ERR_INVALID,
 * field "tenantId") saying what is wrong. err may be NULL. */
bool cqrs_tenant_valid(const char *t, cqrs_error_t *err);

/* "<mongo_db>_<tenant>", to free(). Can't fail (out of memory aborts: cqrs/alloc.h). */
char *cqrs_tenant_db(const char *mongo_db, const char *tenant);

/* "<tenant>/<aggregate_id>", to free(). Can't fail (out of memory aborts). */
char *cqrs_tenant_key(const char *tenant, const char *aggregate_id);

/* "<prefix>tenant.<tenant>.commands": the tenant's own command topic, to
 * free(). Can't fail (out of memory aborts). */
char *cqrs_tenant_topic(const char *prefix, const char *tenant);

/* When topic is a tenant's own command topic under prefix (a valid tenant id
 * between "<prefix>tenant." and ".commands"), copies the tenant into tenant
 * and returns true; otherwise false. */
bool cqrs_tenant_topic_split(const char *prefix, const char *topic, char tenant[CQRS_TENANT_MAX + 1]);

/* Splits an aggregate key: copies the tenant into tenant (NUL-terminated) and
 * points *aggregate_id into key. False when key has no valid tenant before
 * its first '/' or nothing after it. */
bool cqrs_tenant_key_split(const char *key, size_t len, char tenant[CQRS_TENANT_MAX + 1],
                           const char **aggregate_id);

#endif
