/* JSON Schema and the schema registry's compatibility check
 * (cqrs/jsonschema.h, cqrs_schema_canonical in cqrs/schemas.h): what a
 * client sends to POST /v1/schemas/subjects/{s}/versions and to the
 * compatibility route, and what command-svc validates events with.
 *
 * Input: three lines: a writer schema, a reader schema, a document (each
 * JSON; a missing line is empty). Properties:
 *   - a refusal is CQRS_ERR_INVALID; canonical text is a fixed point (the
 *     canonical text of canonical text is itself, with the same id);
 *   - every schema reads itself (reflexivity of cqrs_compat_reads);
 *   - soundness: when the reader reads the writer, every document the
 *     writer validates the reader validates too;
 *   - a failed check says why (at least one message), a passed one says
 *     nothing; a failed validation names a path that its message repeats. */
#include "fuzz.h"

#include "cqrs/json.h"
#include "cqrs/jsonschema.h"
#include "cqrs/schemas.h"

static cqrs_jsonschema_t *compile(const char *text, size_t len) {
  cqrs_error_t err = {0};
  cqrs_jsonschema_t *compiled = NULL;
  char *canonical = cqrs_schema_canonical(text, len, &compiled, &err);
  if (!canonical) {
    FUZZ_CHECK(err.code == CQRS_ERR_INVALID, "a refusal of code %d", (int)err.code);
    return NULL;
  }
  cqrs_jsonschema_t *again = NULL;
  char *twice = cqrs_schema_canonical(canonical, strlen(canonical), &again, &err);
  FUZZ_CHECK(twice && strcmp(twice, canonical) == 0, "canonical text is not a fixed point: %s", canonical);
  FUZZ_CHECK(cqrs_schema_id(twice) == cqrs_schema_id(canonical), "ids differ");
  cqrs_jsonschema_destroy(again);
  bson_free(twice);
  bson_free(canonical);
  cqrs_compat_messages_t m = {0};
  FUZZ_CHECK(cqrs_compat_reads(compiled, compiled, "SELF", "it", "it", &m), "a schema does not read itself: %s",
             m.n ? m.items[0] : "");
  FUZZ_CHECK(m.n == 0, "a passed check with messages");
  return compiled;
}

static bool validates(const cqrs_jsonschema_t *s, const bson_t *doc) {
  cqrs_error_t err = {0};
  if (cqrs_jsonschema_validate(s, doc, &err)) return true;
  FUZZ_CHECK(err.code == CQRS_ERR_INVALID, "a validation failure of code %d", (int)err.code);
  FUZZ_CHECK(err.message[0], "a validation failure without a message");
  FUZZ_CHECK(!err.field[0] || strncmp(err.message, err.field, strlen(err.field)) == 0 || strlen(err.field) >= 63,
             "the message %s does not start with the path %s", err.message, err.field);
  return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = fuzz_text(data, size), *end = text + size, *rest = text;
  size_t wlen = 0, rlen = 0, dlen = 0;
  char *w = fuzz_next(&rest, end, '\n', &wlen), *r = fuzz_next(&rest, end, '\n', &rlen);
  char *d = fuzz_next(&rest, end, '\n', &dlen);
  cqrs_jsonschema_t *writer = w ? compile(w, wlen) : NULL, *reader = r ? compile(r, rlen) : NULL;
  bson_t *doc = d ? cqrs_json_parse(d, dlen, NULL) : NULL;
  if (writer && reader) {
    cqrs_compat_messages_t m = {0};
    bool reads = cqrs_compat_reads(reader, writer, "RULE", "the reader", "the writer", &m);
    FUZZ_CHECK(reads == (m.n == 0), "%s with %zu messages", reads ? "compatible" : "incompatible", m.n);
    if (reads && doc) FUZZ_CHECK(!validates(writer, doc) || validates(reader, doc), "unsound: the reader reads "
                                                                                     "the writer but refuses a "
                                                                                     "document the writer takes");
    cqrs_compat_messages_cleanup(&m);
  } else if (doc) {
    if (writer) validates(writer, doc);
    if (reader) validates(reader, doc);
  }
  if (doc) bson_destroy(doc);
  cqrs_jsonschema_destroy(writer);
  cqrs_jsonschema_destroy(reader);
  free(text);
  return 0;
}
