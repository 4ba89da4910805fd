/* What the contract's sources expand (private to libshared/src/events/): a
 * field list of cqrs/events.h becomes its field table, its encode and its
 * decode. The per-field work is in codec.c; everything here is generated
 * from the field list, so the list is the only thing to edit. */
#ifndef CQRS_EVENTS_CONTRACT_H
#define CQRS_EVENTS_CONTRACT_H

#include "cqrs/events.h"

#include <string.h>

/* Longest field path a decode error names ("items[999].quantity"); the
 * error's field member holds 64 bytes. */
#define CQRS_EVENT_PATH_MAX 64

/* path.key (key when path is NULL) in buf, truncated to CQRS_EVENT_PATH_MAX.
 * Returns buf, or key itself when path is NULL. Can't fail. */
const char *cqrs_event_path(char buf[CQRS_EVENT_PATH_MAX], const char *path, const char *key);

/* Per-type field writers: append *v to doc under key. A NULL optional string
 * is left out. Can't fail. */
void cqrs_event_put_string(bson_t *doc, const char *key, bool required, const char *const *v);
void cqrs_event_put_number(bson_t *doc, const char *key, bool required, const double *v);
void cqrs_event_put_integer(bson_t *doc, const char *key, bool required, const int64_t *v);

/* Per-type field readers: read member key of doc (at path, for the error's
 * field name) into *out. False with a CQRS_ERR_INVALID err naming the field
 * when it is mistyped, or absent (or an empty string) while required. */
bool cqrs_event_get_string(const bson_t *doc, const char *key, const char *path, bool required, const char **out,
                           cqrs_error_t *err);
bool cqrs_event_get_number(const bson_t *doc, const char *key, const char *path, bool required, double *out,
                           cqrs_error_t *err);
bool cqrs_event_get_integer(const bson_t *doc, const char *key, const char *path, bool required, int64_t *out,
                            cqrs_error_t *err);

/* Reads the object member key of doc into *out (borrowed); *found tells
 * whether it was there. */
bool cqrs_event_get_object(const bson_t *doc, const char *key, const char *path, bool required, bson_t *out,
                           bool *found, cqrs_error_t *err);

/* Reads the array member key of doc into *out (borrowed) and calls item_cb on
 * each item, which must be an object, with the item's path ("items[3]"). */
bool cqrs_event_get_array(const bson_t *doc, const char *key, const char *path, bool required, bson_t *out,
                          bool (*item_cb)(const bson_t *item, const char *path, cqrs_error_t *err),
                          cqrs_error_t *err);

#define CQRS_EVENT_PRESENT_REQUIRED true
#define CQRS_EVENT_PRESENT_OPTIONAL false

/* The field table row. */
#define CQRS_EVENT_KIND_STRING CQRS_FIELD_STRING, NULL
#define CQRS_EVENT_KIND_NUMBER CQRS_FIELD_NUMBER, NULL
#define CQRS_EVENT_KIND_INTEGER CQRS_FIELD_INTEGER, NULL
#define CQRS_EVENT_KIND_OBJECT(rec) CQRS_FIELD_OBJECT, &cqrs_##rec##_record
#define CQRS_EVENT_KIND_ARRAY(rec) CQRS_FIELD_ARRAY, &cqrs_##rec##_record
#define CQRS_EVENT_FIELD_ROW_(member, key, type, presence)                                                     \
  {key, CQRS_EVENT_KIND_##type, CQRS_EVENT_PRESENT_##presence},

/* The writer and reader of a field: a function name, followed by its
 * arguments in CQRS_EVENT_PUT_ROW_ / CQRS_EVENT_GET_ROW_. */
#define CQRS_EVENT_PUT_STRING cqrs_event_put_string
#define CQRS_EVENT_PUT_NUMBER cqrs_event_put_number
#define CQRS_EVENT_PUT_INTEGER cqrs_event_put_integer
#define CQRS_EVENT_PUT_OBJECT(rec) rec##_put_object_
#define CQRS_EVENT_PUT_ARRAY(rec) rec##_put_array_
#define CQRS_EVENT_GET_STRING cqrs_event_get_string
#define CQRS_EVENT_GET_NUMBER cqrs_event_get_number
#define CQRS_EVENT_GET_INTEGER cqrs_event_get_integer
#define CQRS_EVENT_GET_OBJECT(rec) rec##_get_object_
#define CQRS_EVENT_GET_ARRAY(rec) rec##_get_array_

#define CQRS_EVENT_PUT_ROW_(member, key, type, presence)                                                       \
  CQRS_EVENT_PUT_##type(doc, key, CQRS_EVENT_PRESENT_##presence, &e->member);
#define CQRS_EVENT_GET_ROW_(member, key, type, presence)                                                       \
  if (!CQRS_EVENT_GET_##type(doc, key, path, CQRS_EVENT_PRESENT_##presence, &out->member, err)) return false;

/* The field table, encode and decode of a record. */
#define CQRS_EVENT_RECORD_BASE_(rec, FIELDS)                                                                   \
  static const cqrs_event_field_t rec##_fields_[] = {FIELDS(CQRS_EVENT_FIELD_ROW_)};                          \
  const cqrs_event_record_t cqrs_##rec##_record = {rec##_fields_, sizeof rec##_fields_ / sizeof rec##_fields_[0]}; \
  void cqrs_##rec##_encode(const cqrs_##rec##_t *e, bson_t *doc) { FIELDS(CQRS_EVENT_PUT_ROW_) }              \
  static bool rec##_decode_at_(const bson_t *doc, const char *path, cqrs_##rec##_t *out, cqrs_error_t *err) {  \
    memset(out, 0, sizeof *out);                                                                               \
    FIELDS(CQRS_EVENT_GET_ROW_)                                                                                \
    return true;                                                                                               \
  }                                                                                                            \
  bool cqrs_##rec##_decode(const bson_t *doc, cqrs_##rec##_t *out, cqrs_error_t *err) {                        \
    return rec##_decode_at_(doc, NULL, out, err);                                                              \
  }

/* A record nested in events: its base, how it is written and read as an
 * OBJECT or an ARRAY field (a record is usually one of the two, hence unused),
 * and cqrs_<rec>_append. */
#define CQRS_EVENT_RECORD_DEFINE(rec, FIELDS)                                                                  \
  CQRS_EVENT_RECORD_BASE_(rec, FIELDS)                                                                         \
  __attribute__((unused)) static void rec##_put_object_(bson_t *doc, const char *key, bool required,          \
                                                        const cqrs_##rec##_t *v) {                             \
    (void)required;                                                                                            \
    bson_t sub;                                                                                                \
    bson_append_document_begin(doc, key, -1, &sub);                                                            \
    cqrs_##rec##_encode(v, &sub);                                                                              \
    bson_append_document_end(doc, &sub);                                                                       \
  }                                                                                                            \
  __attribute__((unused)) static bool rec##_get_object_(const bson_t *doc, const char *key, const char *path,  \
                                                        bool required, cqrs_##rec##_t *out, cqrs_error_t *err) { \
    bson_t sub;                                                                                                \
    bool found;                                                                                                \
    char at[CQRS_EVENT_PATH_MAX];                                                                              \
    memset(out, 0, sizeof *out); /* an absent optional object reads as all absent */                           \
    return cqrs_event_get_object(doc, key, path, required, &sub, &found, err) &&                               \
           (!found || rec##_decode_at_(&sub, cqrs_event_path(at, path, key), out, err));                       \
  }                                                                                                            \
  __attribute__((unused)) static void rec##_put_array_(bson_t *doc, const char *key, bool required,           \
                                                       const bson_t *v) {                                      \
    (void)required;                                                                                            \
    bson_append_array(doc, key, -1, v);                                                                        \
  }                                                                                                            \
  __attribute__((unused)) static bool rec##_check_item_(const bson_t *item, const char *path, cqrs_error_t *err) { \
    cqrs_##rec##_t scratch;                                                                                    \
    return rec##_decode_at_(item, path, &scratch, err);                                                        \
  }                                                                                                            \
  __attribute__((unused)) static bool rec##_get_array_(const bson_t *doc, const char *key, const char *path,   \
                                                       bool required, bson_t *out, cqrs_error_t *err) {        \
    return cqrs_event_get_array(doc, key, path, required, out, rec##_check_item_, err);                        \
  }                                                                                                            \
  void cqrs_##rec##_append(bson_t *array, uint32_t i, const cqrs_##rec##_t *e) {                               \
    char buf[16];                                                                                              \
    const char *k;                                                                                             \
    bson_t item;                                                                                               \
    bson_uint32_to_string(i, &k, buf, sizeof buf);                                                             \
    bson_append_document_begin(array, k, -1, &item);                                                           \
    cqrs_##rec##_encode(e, &item);                                                                             \
    bson_append_document_end(array, &item);                                                                    \
  }

/* An event type: its record and its descriptor. Expanded over an aggregate's
 * list: CQRS_USER_EVENTS(CQRS_EVENT_DEFINE). */
#define CQRS_EVENT_DEFINE(aggregate, ev, type_name, version, FIELDS)                                           \
  CQRS_EVENT_RECORD_BASE_(ev, FIELDS)                                                                          \
  static void ev##_encode_any_(const cqrs_event_data_t *e, bson_t *data) { cqrs_##ev##_encode(&e->ev, data); } \
  static bool ev##_decode_any_(const bson_t *data, cqrs_event_data_t *out, cqrs_error_t *err) {                \
    return cqrs_##ev##_decode(data, &out->ev, err);                                                            \
  }                                                                                                            \
  const cqrs_event_type_t cqrs_##ev##_event = {type_name, aggregate, version, &cqrs_##ev##_record,             \
                                               ev##_encode_any_, ev##_decode_any_};

#endif
