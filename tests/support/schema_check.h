/* A small JSON Schema checker for the e2e tests: does a JSON answer match the
 * schema an OpenAPI document gives for it? It knows what our documents use to
 * shape an answer: $ref (local), type (one or a list), const, enum, required,
 * properties, additionalProperties (false or a schema), items, allOf, anyOf,
 * oneOf (exactly one). Formats, patterns, lengths and bounds are not checked:
 * the contract tests (schemathesis) check those. */
#ifndef CQRS_SCHEMA_CHECK_H
#define CQRS_SCHEMA_CHECK_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>

/* True when json matches schema (a sub-document of root, the whole OpenAPI
 * document, against which "#/..." references resolve). Otherwise false with
 * where and why the first mismatch is ("$.items[0]: missing required
 * \"suspensionReason\"") in why. json that does not parse is a mismatch. */
bool tk_schema_check(const bson_t *root, const bson_t *schema, const char *json, char *why, size_t why_size);

/* The schema of operation (path, method, status) of an OpenAPI document, for
 * application/json, into *out (borrowed from root). False when it documents
 * none. */
bool tk_schema_of_response(const bson_t *root, const char *path, const char *method, int status, bson_t *out);

#endif
