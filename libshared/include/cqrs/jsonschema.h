/* JSON Schema, the subset the event contract and the schema registry need:
 * compile a schema once into a tree, then validate many documents against it
 * (e.g. every event before it is appended), and check whether one schema can
 * read what another wrote (the registry's compatibility levels).
 *
 * Keywords understood: type (a name or an array of names: "null", "boolean",
 * "object", "array", "number", "integer", "string"), properties, required,
 * additionalProperties (true, false or a schema), items (one schema), enum,
 * minLength, maxLength, format ("date-time" and "email" are checked; other
 * formats are annotations). The boolean schemas true and false are understood
 * too. Annotations ($schema, $id, title, description, default, examples,
 * $comment) and unknown keywords are ignored, as JSON Schema says. Keywords
 * that would change what validates but are not implemented ($ref, allOf,
 * anyOf, oneOf, not, if/then/else, patternProperties, ...) make compile fail,
 * rather than validate less than the schema says.
 *
 * Pure: no I/O, no globals. A compiled schema is immutable, so any number of
 * threads may validate against it at once. */
#ifndef CQRS_JSONSCHEMA_H
#define CQRS_JSONSCHEMA_H

#include "cqrs/error.h"

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct cqrs_jsonschema cqrs_jsonschema_t;

/* Compiles the JSON text of a schema (an object, or true/false). A new schema
 * to free with cqrs_jsonschema_destroy, or NULL with a CQRS_ERR_INVALID err
 * whose message names the keyword and its JSON path ("properties.items.type:
 * unknown type 'text'"). */
cqrs_jsonschema_t *cqrs_jsonschema_compile(const char *json, size_t len, cqrs_error_t *err);

/* As cqrs_jsonschema_compile, from a parsed schema document (not kept). */
cqrs_jsonschema_t *cqrs_jsonschema_compile_bson(const bson_t *schema, cqrs_error_t *err);

/* Frees s. NULL is fine. */
void cqrs_jsonschema_destroy(cqrs_jsonschema_t *s);

/* Validates doc (a JSON object as libbson holds it: integers as int32/int64,
 * other numbers as double) against s. True when it validates; false with a
 * CQRS_ERR_INVALID err otherwise, err->field the JSON path of the first
 * failing value ("items[1].quantity"; "" for the document itself) and
 * err->message saying why ("items[1].quantity: must be integer, not
 * string"). Stops at the first failure; allocates nothing. Any thread. */
bool cqrs_jsonschema_validate(const cqrs_jsonschema_t *s, const bson_t *doc, cqrs_error_t *err);

/* Compatibility ------------------------------------------------------------ */

/* The Confluent compatibility levels. BACKWARD: the new schema reads data
 * written with the latest version; FORWARD: the latest version reads data
 * written with the new schema; FULL: both. The _TRANSITIVE forms check
 * against every previous version instead of the latest only. */
typedef enum {
  CQRS_COMPAT_NONE = 0,
  CQRS_COMPAT_BACKWARD,
  CQRS_COMPAT_BACKWARD_TRANSITIVE,
  CQRS_COMPAT_FORWARD,
  CQRS_COMPAT_FORWARD_TRANSITIVE,
  CQRS_COMPAT_FULL,
  CQRS_COMPAT_FULL_TRANSITIVE
} cqrs_compat_level_t;

/* The level's Confluent name ("BACKWARD_TRANSITIVE"). */
const char *cqrs_compat_level_name(cqrs_compat_level_t level);

/* The level named s (case-sensitive, as Confluent spells it). False when s
 * names none. */
bool cqrs_compat_level_parse(const char *s, cqrs_compat_level_t *out);

/* Why a check failed: messages, each a malloc'd string, owned by the list. */
typedef struct {
  char **items;
  size_t n;
  size_t cap;
} cqrs_compat_messages_t;

/* Frees every message and empties the list (it can be reused). */
void cqrs_compat_messages_cleanup(cqrs_compat_messages_t *m);

/* One previous version of a subject, oldest first in the arrays below. */
typedef struct {
  const cqrs_jsonschema_t *schema; /* borrowed */
  int version;
} cqrs_compat_version_t;

/* Checks candidate against the previous versions of its subject (prev[0] the
 * oldest, prev[n-1] the latest; n may be 0) under level. True when
 * compatible. Otherwise false, and msgs (may be NULL) gets one message per
 * rule, field and version broken, each naming them:
 *   "BACKWARD_TRANSITIVE: field 'currency' is required by the new schema but
 *    absent from version 1"
 * Pure; any thread. */
bool cqrs_compat_check(cqrs_compat_level_t level, const cqrs_jsonschema_t *candidate,
                       const cqrs_compat_version_t *prev, size_t n, cqrs_compat_messages_t *msgs);

/* Checks that reader reads every document writer validates (one direction of
 * cqrs_compat_check). Messages get prefix "<rule>: " and name the reader and
 * writer as reader_name and writer_name ("the new schema", "version 1").
 * True when compatible. */
bool cqrs_compat_reads(const cqrs_jsonschema_t *reader, const cqrs_jsonschema_t *writer, const char *rule,
                       const char *reader_name, const char *writer_name, cqrs_compat_messages_t *msgs);

#endif
