/* The schema registry in memory (cqrs/schemas.h): subjects and their
 * versions, ids, levels; records applied first-wins. One rwlock: the reader
 * thread writes, request threads read. */
#include "cqrs/alloc.h"
#include "cqrs/schemas.h"

#include "cqrs/json.h"
#include "cqrs/map.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  int version;
  int32_t id;
  char *schema; /* canonical text */
  cqrs_jsonschema_t *compiled;
} version_t;

typedef struct {
  char name[CQRS_SUBJECT_MAX + 1];
  version_t *versions; /* versions[i].version == i + 1 */
  size_t n;
  bool has_level;
  cqrs_compat_level_t level;
} subject_t;

struct cqrs_schemas {
  pthread_rwlock_t lock;
  cqrs_map_t *subjects; /* name -> subject_t */
  cqrs_map_t *ids;      /* decimal id -> canonical text, borrowed from a version */
  cqrs_compat_level_t global;
};

static void subject_free(void *p) {
  subject_t *sub = p;
  for (size_t i = 0; i < sub->n; i++) {
    free(sub->versions[i].schema);
    cqrs_jsonschema_destroy(sub->versions[i].compiled);
  }
  free(sub->versions);
  free(sub);
}

cqrs_schemas_t *cqrs_schemas_new(void) {
  cqrs_schemas_t *s = cqrs_xcalloc(1, sizeof *s);
  pthread_rwlock_init(&s->lock, NULL);
  s->subjects = cqrs_map_new(subject_free);
  s->ids = cqrs_map_new(NULL);
  s->global = CQRS_SCHEMAS_DEFAULT_LEVEL;
  return s;
}

void cqrs_schemas_destroy(cqrs_schemas_t *s) {
  if (!s) return;
  cqrs_map_destroy(s->ids);
  cqrs_map_destroy(s->subjects);
  pthread_rwlock_destroy(&s->lock);
  free(s);
}

static void id_key(int32_t id, char out[16]) { snprintf(out, 16, "%d", (int)id); }

/* The record key copied into out (NUL-terminated); false when too long. */
static bool key_copy(const char *key, size_t len, char *out, size_t size) {
  if (!key || len >= size || memchr(key, '\0', len)) return false;
  memcpy(out, key, len);
  out[len] = '\0';
  return true;
}

static bool invalid(cqrs_error_t *err, const char *what) {
  cqrs_error_set(err, CQRS_ERR_INVALID, NULL, "schemas record: %s", what);
  return false;
}

/* @locks s->lock for writing */
static bool apply_config(cqrs_schemas_t *s, const char *subject, const char *value, size_t value_len, bool *applied,
                         cqrs_error_t *err) {
  cqrs_compat_level_t level = CQRS_SCHEMAS_DEFAULT_LEVEL;
  if (value) {
    bson_t *doc = cqrs_json_parse(value, value_len, err);
    const char *name = NULL;
    bool ok = doc && cqrs_json_get_string(doc, "compatibilityLevel", NULL, true, 0, &name, err) &&
              cqrs_compat_level_parse(name, &level);
    if (doc) bson_destroy(doc);
    if (!ok) return invalid(err, "a config record without a known compatibilityLevel");
  }
  pthread_rwlock_wrlock(&s->lock);
  if (!subject) {
    s->global = level;
  } else {
    subject_t *sub = cqrs_map_get(s->subjects, subject);
    if (!sub && value) {
      sub = cqrs_xcalloc(1, sizeof *sub);
      snprintf(sub->name, sizeof sub->name, "%s", subject);
      cqrs_map_put(s->subjects, subject, sub);
    }
    if (sub) {
      sub->has_level = value != NULL;
      sub->level = level;
    }
  }
  pthread_rwlock_unlock(&s->lock);
  if (applied) *applied = true;
  return true;
}

/* The subject's version holding canonical, or NULL. */
static const version_t *version_of(const subject_t *sub, const char *canonical) {
  for (size_t i = 0; sub && i < sub->n; i++)
    if (strcmp(sub->versions[i].schema, canonical) == 0) return &sub->versions[i];
  return NULL;
}

static bool apply_schema(cqrs_schemas_t *s, const char *value, size_t value_len, bool *applied, cqrs_error_t *err) {
  if (!value) return true; /* a schema is never deleted; a tombstone changes nothing */
  bson_t *doc = cqrs_json_parse(value, value_len, err);
  const char *subject = NULL, *text = NULL, *type = NULL;
  int64_t version = 0, id = 0;
  bool present;
  bool ok = doc && cqrs_json_get_string(doc, "subject", NULL, true, CQRS_SUBJECT_MAX, &subject, err) &&
            cqrs_json_get_string(doc, "schema", NULL, true, 0, &text, err) &&
            cqrs_json_get_string(doc, "schemaType", NULL, true, 0, &type, err) &&
            cqrs_json_get_int64(doc, "version", NULL, true, &version, &present, err) &&
            cqrs_json_get_int64(doc, "id", NULL, true, &id, &present, err);
  cqrs_jsonschema_t *compiled = NULL;
  char *canonical = NULL;
  if (ok && (!cqrs_schema_subject_valid(subject) || strcmp(type, CQRS_SCHEMA_TYPE_JSON) != 0 || version < 1 ||
             version > 1000000))
    ok = invalid(err, "a schema record with a bad subject, schemaType or version");
  if (ok && !(canonical = cqrs_schema_canonical(text, strlen(text), &compiled, err))) ok = false;
  if (ok && (strcmp(canonical, text) != 0 || cqrs_schema_id(canonical) != id))
    ok = invalid(err, "a schema record whose schema is not canonical or whose id is not its own");
  if (!ok) {
    if (doc) bson_destroy(doc);
    bson_free(canonical);
    cqrs_jsonschema_destroy(compiled);
    return false;
  }
  char idk[16];
  id_key((int32_t)id, idk);
  pthread_rwlock_wrlock(&s->lock);
  subject_t *sub = cqrs_map_get(s->subjects, subject);
  const char *holder = cqrs_map_get(s->ids, idk);
  bool wins = (size_t)version == (sub ? sub->n : 0) + 1 && !version_of(sub, canonical) &&
              (!holder || strcmp(holder, canonical) == 0);
  if (wins && !sub && (sub = cqrs_xcalloc(1, sizeof *sub))) {
    snprintf(sub->name, sizeof sub->name, "%s", subject);
    cqrs_map_put(s->subjects, subject, sub);
  }
  version_t *grown = wins && sub ? cqrs_xrealloc(sub->versions, (sub->n + 1) * sizeof *grown) : NULL;
  if (grown) {
    sub->versions = grown;
    version_t *v = &sub->versions[sub->n++];
    v->version = (int)version;
    v->id = (int32_t)id;
    v->schema = cqrs_xstrdup(canonical);
    v->compiled = compiled;
    compiled = NULL;
    if (!holder) cqrs_map_put(s->ids, idk, v->schema);
  }
  pthread_rwlock_unlock(&s->lock);
  if (applied) *applied = grown != NULL;
  bson_destroy(doc);
  bson_free(canonical);
  cqrs_jsonschema_destroy(compiled);
  return true;
}

bool cqrs_schemas_apply(cqrs_schemas_t *s, const char *key, size_t key_len, const char *value, size_t value_len,
                        bool *applied, cqrs_error_t *err) {
  char k[CQRS_SUBJECT_MAX + 64];
  if (applied) *applied = false;
  if (!key_copy(key, key_len, k, sizeof k)) return invalid(err, "a key that is not a schemas key");
  if (strcmp(k, "config") == 0) return apply_config(s, NULL, value, value_len, applied, err);
  if (strncmp(k, "config/", 7) == 0) {
    if (!cqrs_schema_subject_valid(k + 7)) return invalid(err, "a config key with a bad subject");
    return apply_config(s, k + 7, value, value_len, applied, err);
  }
  if (strncmp(k, "schema/", 7) == 0) return apply_schema(s, value, value_len, applied, err);
  return invalid(err, "a key that is not a schemas key");
}

void cqrs_schema_version_cleanup(cqrs_schema_version_t *v) {
  if (!v) return;
  free(v->schema);
  v->schema = NULL;
}

typedef struct {
  char **names;
  size_t n;
} collect_t;

static bool collect(const char *key, void *value, void *ctx) {
  collect_t *c = ctx;
  const subject_t *sub = value;
  if (sub->n) c->names[c->n++] = cqrs_xstrdup(key); /* a subject with only a config is not listed */
  return false;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

char **cqrs_schemas_subjects(cqrs_schemas_t *s, size_t *n) {
  pthread_rwlock_rdlock(&s->lock);
  size_t size = cqrs_map_size(s->subjects);
  collect_t c = {.names = size ? cqrs_xcalloc(size, sizeof(char *)) : NULL};
  /* cqrs_map_filter never changes the map when cb returns false, so a read lock is enough */
  if (c.names) cqrs_map_filter(s->subjects, collect, &c);
  pthread_rwlock_unlock(&s->lock);
  if (c.n) qsort(c.names, c.n, sizeof *c.names, by_name);
  if (!c.n) {
    free(c.names);
    c.names = NULL;
  }
  *n = c.n;
  return c.names;
}

void cqrs_schemas_strings_free(char **strings, size_t n) {
  for (size_t i = 0; i < n; i++) free(strings[i]);
  free(strings);
}

int cqrs_schemas_latest(cqrs_schemas_t *s, const char *subject) {
  pthread_rwlock_rdlock(&s->lock);
  const subject_t *sub = cqrs_map_get(s->subjects, subject);
  int latest = sub ? (int)sub->n : 0;
  pthread_rwlock_unlock(&s->lock);
  return latest;
}

static void copy_out(const subject_t *sub, const version_t *v, cqrs_schema_version_t *out) {
  snprintf(out->subject, sizeof out->subject, "%s", sub->name);
  out->version = v->version;
  out->id = v->id;
  out->schema = cqrs_xstrdup(v->schema);
}

bool cqrs_schemas_get(cqrs_schemas_t *s, const char *subject, int version, cqrs_schema_version_t *out) {
  pthread_rwlock_rdlock(&s->lock);
  const subject_t *sub = cqrs_map_get(s->subjects, subject);
  if (sub && version == 0) version = (int)sub->n;
  bool found = sub && version >= 1 && (size_t)version <= sub->n;
  if (found) copy_out(sub, &sub->versions[version - 1], out);
  pthread_rwlock_unlock(&s->lock);
  return found;
}

bool cqrs_schemas_find(cqrs_schemas_t *s, const char *subject, const char *canonical, cqrs_schema_version_t *out) {
  pthread_rwlock_rdlock(&s->lock);
  const subject_t *sub = cqrs_map_get(s->subjects, subject);
  const version_t *v = version_of(sub, canonical);
  if (v) copy_out(sub, v, out);
  pthread_rwlock_unlock(&s->lock);
  return v != NULL;
}

bool cqrs_schemas_by_id(cqrs_schemas_t *s, int32_t id, char **schema) {
  char idk[16];
  id_key(id, idk);
  pthread_rwlock_rdlock(&s->lock);
  const char *text = cqrs_map_get(s->ids, idk);
  if (text) *schema = cqrs_xstrdup(text);
  pthread_rwlock_unlock(&s->lock);
  return text != NULL;
}

bool cqrs_schemas_id_taken(cqrs_schemas_t *s, int32_t id, const char *canonical) {
  char idk[16];
  id_key(id, idk);
  pthread_rwlock_rdlock(&s->lock);
  const char *text = cqrs_map_get(s->ids, idk);
  bool taken = text && strcmp(text, canonical) != 0;
  pthread_rwlock_unlock(&s->lock);
  return taken;
}

bool cqrs_schemas_level(cqrs_schemas_t *s, const char *subject, cqrs_compat_level_t *out) {
  pthread_rwlock_rdlock(&s->lock);
  bool has = true;
  if (!subject) {
    *out = s->global;
  } else {
    const subject_t *sub = cqrs_map_get(s->subjects, subject);
    has = sub && sub->has_level;
    if (has) *out = sub->level;
  }
  pthread_rwlock_unlock(&s->lock);
  return has;
}

cqrs_compat_level_t cqrs_schemas_effective_level(cqrs_schemas_t *s, const char *subject) {
  cqrs_compat_level_t level;
  if (!cqrs_schemas_level(s, subject, &level)) cqrs_schemas_level(s, NULL, &level);
  return level;
}

bool cqrs_schemas_check(cqrs_schemas_t *s, const char *subject, const cqrs_jsonschema_t *candidate,
                        cqrs_compat_level_t level, int version, cqrs_compat_messages_t *msgs) {
  pthread_rwlock_rdlock(&s->lock);
  const subject_t *sub = cqrs_map_get(s->subjects, subject);
  size_t n = sub ? sub->n : 0, from = 0;
  if (version >= 1 && (size_t)version <= n) {
    from = (size_t)version - 1;
    n = (size_t)version;
  }
  cqrs_compat_version_t *prev = n > from ? cqrs_xcalloc(n - from, sizeof *prev) : NULL;
  if (n > from && !prev) abort();
  for (size_t i = from; i < n; i++)
    prev[i - from] = (cqrs_compat_version_t){.schema = sub->versions[i].compiled, .version = sub->versions[i].version};
  /* prev borrows the compiled trees: the read lock keeps them alive until the check ends. */
  bool ok = cqrs_compat_check(level, candidate, prev, n - from, msgs);
  pthread_rwlock_unlock(&s->lock);
  free(prev);
  return ok;
}
