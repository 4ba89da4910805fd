/* Each event type's JSON Schema, generated from the event contract
 * (cqrs/events.h): one per (type, version) row of cqrs_event_types, so a new
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

#include <stddef.h>

/* The JSON Schema of type (one version of one event type), as compact JSON:
 * a string to bson_free; len may be NULL. Can't fail (libbson aborts when out
 * of memory). */
char *cqrs_event_json_schema(const cqrs_event_type_t *type, size_t *len);

/* The descriptor of event type name at version, or NULL. */
const cqrs_event_type_t *cqrs_event_type_find_version(const char *name, int version);

/* Every (type, version) row of the contract grouped by type, in the order of
 * the type's first row, and each type's versions ascending: out gets at most
 * max descriptors (borrowed); returns how many there are (may exceed max). */
size_t cqrs_event_types_by_version(const cqrs_event_type_t **out, size_t max);

#endif
