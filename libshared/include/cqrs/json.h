/* JSON in and out, on top of libbson (our JSON parser and writer), with typed
 * field readers that name the offending field in their error. */
#ifndef CQRS_JSON_H
#define CQRS_JSON_H

#include "cqrs/error.h"

#include <bson/bson.h>

/* Parses buf as one JSON object. Returns a new document (bson_destroy) or NULL
 * with a CQRS_ERR_INVALID err when buf is not a JSON object, or when an object
 * at any depth has a key twice (err's field: the dotted path of the key, e.g.
 * "payload.email"). Every request body and every event is parsed here. */
bson_t *cqrs_json_parse(const char *buf, size_t len, cqrs_error_t *err);

/* Writes doc as JSON (numbers as plain numbers). Returns a string to bson_free;
 * len may be NULL. */
char *cqrs_json_write(const bson_t *doc, size_t *len);

/* Appends s to out as a quoted, escaped JSON string. */
void cqrs_json_append_string(bson_string_t *out, const char *s);

/* Checks that the UTF-8 text s has at most max_len characters (code points;
 * 0: no limit). False with a CQRS_ERR_INVALID err naming field otherwise. */
bool cqrs_json_check_length(const char *s, size_t max_len, const char *field, cqrs_error_t *err);

/* True when every member of doc is named in known (NULL-terminated); false
 * with a 400 naming the first other member otherwise (a body whose document
 * says additionalProperties: false). */
bool cqrs_json_members_known(const bson_t *doc, const char *const *known, cqrs_error_t *err);

/* Reads the string member key of doc into *out (borrowed from doc, valid while
 * doc lives). An absent or null member gives *out = NULL, which is an error
 * only when required. A member that is not a string, is empty while required,
 * or is longer than max_len characters is an error. field names the member in
 * err (NULL: key). */
bool cqrs_json_get_string(const bson_t *doc, const char *key, const char *field, bool required,
                          size_t max_len, const char **out, cqrs_error_t *err);

/* Reads an integer member (JSON number without fraction) into *out. *present
 * tells whether it was there; absent is an error only when required. */
bool cqrs_json_get_int64(const bson_t *doc, const char *key, const char *field, bool required,
                         int64_t *out, bool *present, cqrs_error_t *err);

/* Reads any JSON number member into *out; absent is an error only when required. */
bool cqrs_json_get_number(const bson_t *doc, const char *key, const char *field, bool required,
                          double *out, bool *present, cqrs_error_t *err);

/* Finds a sub-document member; *out is initialised to borrow from doc. Absent
 * is an error only when required; *present tells. */
bool cqrs_json_get_object(const bson_t *doc, const char *key, const char *field, bool required,
                          bson_t *out, bool *present, cqrs_error_t *err);

/* As cqrs_json_get_object, for an array member. */
bool cqrs_json_get_array(const bson_t *doc, const char *key, const char *field, bool required,
                         bson_t *out, bool *present, cqrs_error_t *err);

#endif
