/* Opaque list cursors: where the previous page stopped, as base64url of a small
 * JSON {"l": list, "f": sort field, "v": sort value, "i": _id}. Pure. */
#ifndef CQRS_CURSOR_H
#define CQRS_CURSOR_H

#include "cqrs/error.h"

#include <bson/bson.h>

/* Longest cursor text that cqrs_cursor_decode accepts, in characters. */
#define CQRS_CURSOR_MAX_LEN 1024

/* Encodes the position after the item with sort value value and _id id in the
 * list named list, sorted on sort_field. Returns a NUL-terminated base64url
 * string (no padding) to bson_free, or NULL when value or id is of a type a
 * cursor cannot carry (only strings, numbers, booleans, dates, ObjectIds and
 * null) or the cursor would be longer than CQRS_CURSOR_MAX_LEN. */
char *cqrs_cursor_encode(const char *list, const char *sort_field, const bson_value_t *value,
                         const bson_value_t *id);

/* Decodes text made by cqrs_cursor_encode for the same list and sort_field into
 * *value and *id (to bson_value_destroy; left zeroed on failure). False with a
 * CQRS_ERR_INVALID err naming "cursor" when text is not such a cursor: bad
 * base64url, not the JSON shape, a value of another type, or a cursor of
 * another list or sort field. Clients can forge a cursor; it only ever narrows
 * the list's own filter, and the scalar-only rule keeps a forged value from
 * becoming a query operator. */
bool cqrs_cursor_decode(const char *text, const char *list, const char *sort_field,
                        bson_value_t *value, bson_value_t *id, cqrs_error_t *err);

#endif
