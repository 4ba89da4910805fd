/* Each event type's JSON Schema, generated from the event contract
 * (cqrs/events.h): one per (type, version) row of cqrs_event_versions, so a new
 * row or a new field shows up here without an edit. admin-svc registers them
 * in the schema registry (subject = the event type, ce_type); command-svc can
 * compile them (cqrs/jsonschema.h) to validate events before append.
 *
 * The shape (draft-07):
 *   {"$schema":"http://json-schema.org/draft-07/schema#","title":"<ce_type>",
 *    "description":"<ce_type> version <n> (aggregate <a>)","type":"object",
 *    "properties":{...},"required":[...],"additionalProperties":false}
 * STRING REQUIRED -> {"type":"string","minLength":1} (decode refuses "");
 * STRING OPTIONAL -> {"type":["string","null"]}; NUMBER -> "number";
 * INTEGER -> "integer"; OBJECT(rec) -> a nested object schema of rec's fields;
 * ARRAY(rec) -> {"type":"array","items":<rec's object schema>}. Every object
 * is closed (additionalProperties false): encode writes only the contract's
 * fields, and a closed writer lets a later version add an optional field
 * under BACKWARD compatibility (an open one would not: anything could already
 * be there). */
#ifndef CQRS_EVENT_SCHEMA_H
#define CQRS_EVENT_SCHEMA_H

#include "cqrs/events.h"
#include "cqrs/jsonschema.h"

#include <stddef.h>

/* The JSON Schema of type (one version of one event type), as compact JSON:
 * a string to bson_free; len may be NULL. Can't fail (libbson aborts when out
 * of memory). */
char *cqrs_event_json_schema(const cqrs_event_type_t *type, size_t *len);

/* Every (type, version) row of the contract grouped by type, in the order of
 * the type's first row, and each type's versions ascending: out gets at most
 * max descriptors (borrowed); returns how many there are (may exceed max). */
size_t cqrs_event_types_by_version(const cqrs_event_type_t **out, size_t max);

/* Every row's schema compiled once, for validating events before append:
 *
 *   cqrs_event_schemas_t *v = cqrs_event_schemas_new(&err);     at start
 *   if (!cqrs_event_schemas_validate(v, type, &data, &err)) ...  per event
 *
 * Immutable once made: any number of threads may validate at once. */
typedef struct cqrs_event_schemas cqrs_event_schemas_t;

/* Compiles the schema of every (type, version) row. NULL with err when one
 * does not compile (a bug in the generator). */
cqrs_event_schemas_t *cqrs_event_schemas_new(cqrs_error_t *err);

/* The process-wide table, compiled on the first call (thread-safe) and kept
 * until exit: what command-svc validates every event with before append.
 * NULL with err only when cqrs_event_schemas_new fails (then every call
 * fails the same way). */
const cqrs_event_schemas_t *cqrs_event_schemas_shared(cqrs_error_t *err);

/* Frees v. NULL is fine. */
void cqrs_event_schemas_destroy(cqrs_event_schemas_t *v);

/* The compiled schema of type (a row of cqrs_event_versions; borrowed from v),
 * or NULL for a descriptor that is not a row. */
const cqrs_jsonschema_t *cqrs_event_schemas_get(const cqrs_event_schemas_t *v, const cqrs_event_type_t *type);

/* Validates event data against type's schema: cqrs_jsonschema_validate's
 * answer (err->field the first failing path), or false with a
 * CQRS_ERR_INVALID err naming the type when it is not a row. */
bool cqrs_event_schemas_validate(const cqrs_event_schemas_t *v, const cqrs_event_type_t *type, const bson_t *data,
                                 cqrs_error_t *err);

#endif
