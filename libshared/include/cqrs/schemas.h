/* The schema registry's records and every process's view of them: JSON
 * Schemas registered per subject (an event type) in versions 1, 2, ...,
 * each with a global id, and the compatibility level per subject and global.
 *
 * Storage: the compacted topic TOPIC_PREFIX + "schemas" (one partition),
 * read from the beginning by a cqrs_schemas_reader_t (cqrs/follow.h) into a
 * cqrs_schemas_t. admin-svc writes it (admin-svc/schema_writer.h).
 *
 * Records (key -> value, JSON):
 *   "schema/<subject>/<version>/<id>" -> {"subject","version","id",
 *        "schemaType":"JSON","schema":"<the schema, canonical JSON text>"}
 *   "config/<subject>" -> {"compatibilityLevel":"FULL"}  (tombstone: unset)
 *   "config"           -> the global level, same shape
 * The id is in the key so that two records for the same (subject, version)
 * with different schemas (two replicas racing, below) keep distinct keys:
 * compaction keeps the last record of a key, and would otherwise let a losing
 * record replace the winner.
 *
 * Versions, first wins: a schema record is applied only when its version is
 * the subject's next one (latest + 1) and its schema is not yet one of the
 * subject's versions; anything else (a version already taken, by another
 * schema or by the same one written twice) is ignored. With one partition
 * every reader sees the records in the same order, so every replica agrees
 * on which record won, and a writer learns whether it won by reading its own
 * record back. That is how two concurrent registrations of one subject never
 * both become the same version, with any number of admin-svc replicas and no
 * lock between them.
 *
 * Ids: the first 31 bits of the SHA-256 of the schema's canonical text
 * (cqrs_schema_canonical), 0 read as 1. The same schema has the same id in
 * every subject, every replica, after every restart, and even after the
 * topic is lost and the schemas registered again; a log-order counter would
 * change when compaction removes a duplicate record. Two different schemas
 * with the same id (odds about n^2/2^32) are refused: the later one's record
 * is ignored and its registration fails, naming the collision. */
#ifndef CQRS_SCHEMAS_H
#define CQRS_SCHEMAS_H

#include "cqrs/config.h"
#include "cqrs/error.h"
#include "cqrs/jsonschema.h"
#include "cqrs/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CQRS_TOPIC_SCHEMAS "schemas"
#define CQRS_SUBJECT_MAX 200 /* bytes of a subject name */
#define CQRS_SCHEMAS_DEFAULT_LEVEL CQRS_COMPAT_BACKWARD_TRANSITIVE
#define CQRS_SCHEMA_TYPE_JSON "JSON"

/* True when s can name a subject: 1 to CQRS_SUBJECT_MAX bytes, printable
 * ASCII without '/' (it is part of record keys and URL paths). */
bool cqrs_schema_subject_valid(const char *s);

/* The canonical text of a JSON Schema: parsed (a JSON object without
 * duplicate keys), compiled (cqrs/jsonschema.h), and written back compactly
 * with its members in their order, so whitespace does not make a schema
 * new. A string to bson_free, and *compiled (cqrs_jsonschema_destroy) when
 * compiled is not NULL. NULL with a CQRS_ERR_INVALID err otherwise. */
char *cqrs_schema_canonical(const char *json, size_t len, cqrs_jsonschema_t **compiled, cqrs_error_t *err);

/* The id of a canonical schema text (see above): 1 .. 2^31-1. */
int32_t cqrs_schema_id(const char *canonical);

/* Record keys and values, strings to free(). Out of memory aborts (cqrs/alloc.h).
 * subject NULL: the global config record. */
char *cqrs_schemas_version_key(const char *subject, int version, int32_t id);
char *cqrs_schemas_version_json(const char *subject, int version, int32_t id, const char *canonical, size_t *len);
char *cqrs_schemas_config_key(const char *subject);
char *cqrs_schemas_config_json(cqrs_compat_level_t level, size_t *len);

/* The registry ---------------------------------------------------------- */

/* Thread-safe: one writer (the reader thread), any number of readers. */
typedef struct cqrs_schemas cqrs_schemas_t;

cqrs_schemas_t *cqrs_schemas_new(void);
void cqrs_schemas_destroy(cqrs_schemas_t *s);

/* Applies one record (value NULL: a tombstone). False with a CQRS_ERR_INVALID
 * err when it does not parse (registry unchanged); true otherwise, *applied
 * (may be NULL) telling whether it changed anything (first wins, above). */
bool cqrs_schemas_apply(cqrs_schemas_t *s, const char *key, size_t key_len, const char *value, size_t value_len,
                        bool *applied, cqrs_error_t *err);

/* One version of a subject, copied out: schema is a string to free(). */
typedef struct {
  char subject[CQRS_SUBJECT_MAX + 1];
  int version;
  int32_t id;
  char *schema;
} cqrs_schema_version_t;

void cqrs_schema_version_cleanup(cqrs_schema_version_t *v);

/* Every subject, sorted: an array of strings, each and the array to free()
 * (cqrs_schemas_strings_free). NULL with *n = 0 when there is none. */
char **cqrs_schemas_subjects(cqrs_schemas_t *s, size_t *n);
void cqrs_schemas_strings_free(char **strings, size_t n);

/* The subject's latest version number; 0 when the subject is unknown. */
int cqrs_schemas_latest(cqrs_schemas_t *s, const char *subject);

/* The subject's version (0: the latest) into *out. False when the subject or
 * the version is unknown (cqrs_schemas_latest tells which). */
bool cqrs_schemas_get(cqrs_schemas_t *s, const char *subject, int version, cqrs_schema_version_t *out);

/* The version of subject whose schema is canonical (exact text) into *out.
 * False when there is none. */
bool cqrs_schemas_find(cqrs_schemas_t *s, const char *subject, const char *canonical, cqrs_schema_version_t *out);

/* The schema with id into *schema (a string to free()). False when none. */
bool cqrs_schemas_by_id(cqrs_schemas_t *s, int32_t id, char **schema);

/* The canonical text holding id, if any, other than canonical itself: true
 * when id is taken by a different schema (an id collision). */
bool cqrs_schemas_id_taken(cqrs_schemas_t *s, int32_t id, const char *canonical);

/* The level configured for subject (NULL: the global one) into *out. False
 * when the subject has none of its own (the global level, which always has
 * one, CQRS_SCHEMAS_DEFAULT_LEVEL until set, then applies). */
bool cqrs_schemas_level(cqrs_schemas_t *s, const char *subject, cqrs_compat_level_t *out);

/* The level that governs subject: its own, else the global one. */
cqrs_compat_level_t cqrs_schemas_effective_level(cqrs_schemas_t *s, const char *subject);

/* Checks candidate against subject's versions under level: version 0 against
 * what level names (every version for a _TRANSITIVE level, the latest
 * otherwise), a version number against that version only. True when
 * compatible (also when the subject has no versions); msgs as in
 * cqrs_compat_check. */
bool cqrs_schemas_check(cqrs_schemas_t *s, const char *subject, const cqrs_jsonschema_t *candidate,
                        cqrs_compat_level_t level, int version, cqrs_compat_messages_t *msgs);

/* The reader ------------------------------------------------------------ */

typedef struct cqrs_schemas_reader cqrs_schemas_reader_t;

/* Follows the schemas topic into s (borrowed; must outlive the reader). NULL
 * with err when the Kafka client cannot be made or the thread cannot start. */
cqrs_schemas_reader_t *cqrs_schemas_reader_start(const cqrs_config_t *cfg, const cqrs_log_t *log, cqrs_schemas_t *s,
                                                 cqrs_error_t *err);

/* True once every record that existed at start is applied (readiness). */
bool cqrs_schemas_reader_caught_up(const cqrs_schemas_reader_t *r);

/* Waits until every record produced before this call is applied; false with
 * CQRS_ERR_UNAVAILABLE after timeout_ms. */
bool cqrs_schemas_reader_sync(cqrs_schemas_reader_t *r, int timeout_ms, cqrs_error_t *err);

/* Stops and frees. NULL is fine. */
void cqrs_schemas_reader_stop(cqrs_schemas_reader_t *r);

#endif
