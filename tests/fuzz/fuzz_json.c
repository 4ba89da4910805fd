/* cqrs_json_parse's fast path (libshared/src/json_fast.h) against libbson's
 * reader, on any bytes. Input: the JSON text, in a buffer of its exact size.
 * Properties: whatever the fast path takes, libbson takes too and reads to
 * the very same bytes; cqrs_json_parse never takes what libbson refuses. */
#include "fuzz.h"

#include "cqrs/json.h"
#include "json_fast.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = fuzz_exact(data, size);
  bson_t *fast = cqrs_json_fast_parse(text, size);
  if (fast) {
    bson_error_t berr;
    bson_t *ref = bson_new_from_json((const uint8_t *)text, (ssize_t)size, &berr);
    FUZZ_CHECK(ref, "the fast path took what libbson refuses: %s", berr.message);
    FUZZ_CHECK(fast->len == ref->len && memcmp(bson_get_data(fast), bson_get_data(ref), fast->len) == 0,
               "the fast path reads it differently");
    bson_destroy(ref);
    bson_destroy(fast);
  }
  bson_t *doc = cqrs_json_parse(text, size, NULL);
  if (doc) bson_destroy(doc);
  free(text);
  return 0;
}
