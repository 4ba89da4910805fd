/* cqrs_json_parse's fast path (json.c): a direct JSON-to-BSON reader for the
 * plain JSON our services write and read most (objects, arrays, strings,
 * numbers, true, false, null), several times faster than libbson's reader,
 * which it hands everything else to. Internal to libshared. */
#ifndef CQRS_JSON_FAST_H
#define CQRS_JSON_FAST_H

#include <bson/bson.h>

/* buf[0..len) as a new document (bson_destroy), exactly as libbson's
 * bson_new_from_json reads it (the same types: int32 when an integer fits,
 * else int64; double for a fraction or an exponent), when it is one JSON
 * object, alone but for whitespace, whose objects have no key twice. NULL when
 * the text is anything else or anything this reader does not take on itself
 * (a key starting with '$', an integer beyond int64, a number strtod cannot
 * hold, "-0", \u0000, invalid UTF-8, deep nesting, an object of many keys,
 * invalid JSON): the caller then parses with libbson, which gives its result
 * or its error. This function can't fail otherwise. */
bson_t *cqrs_json_fast_parse(const char *buf, size_t len);

#endif
