/* Keyset pages over FerretDB's tables in PostgreSQL (see cqrs/ferretdb_keyset.h). */
#include "cqrs/alloc.h"
#include "cqrs/ferretdb_keyset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool plain_name(const char *s) {
  if (!*s || strlen(s) >= CQRS_KEYSET_KEY_MAX) return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_')) return false;
  return true;
}

static bool plain_keys(const char *const *keys, size_t n) {
  if (n < 2 || n > CQRS_KEYSET_KEYS_MAX) return false;
  for (size_t i = 0; i < n; i++)
    if (!plain_name(keys[i])) return false;
  return true;
}

/* A string member's value, or NULL when it is not a string PostgreSQL's text
 * can hold (no NUL inside). */
static const char *text_of(const bson_iter_t *it) {
  if (!BSON_ITER_HOLDS_UTF8(it)) return NULL;
  uint32_t len;
  const char *s = bson_iter_utf8(it, &len);
  return strlen(s) == len ? s : NULL;
}

/* {$gte|$gt: lower, $lt|$lte: upper}, each at most once, strings only. */
static bool match_range(bson_iter_t *range, cqrs_keyset_query_t *q) {
  bson_iter_t op;
  if (!bson_iter_recurse(range, &op)) return false;
  while (bson_iter_next(&op)) {
    const char *k = bson_iter_key(&op), *v = text_of(&op);
    bool lower = strcmp(k, "$gte") == 0 || strcmp(k, "$gt") == 0;
    bool upper = strcmp(k, "$lt") == 0 || strcmp(k, "$lte") == 0;
    if (!v || (!lower && !upper) || (lower && q->lower) || (upper && q->upper)) return false;
    if (lower) {
      q->lower = v;
      q->lower_open = strcmp(k, "$gt") == 0;
    } else {
      q->upper = v;
      q->upper_closed = strcmp(k, "$lte") == 0;
    }
  }
  return q->lower || q->upper;
}

bool cqrs_keyset_match(const char *const *keys, size_t n, const bson_t *filter, const char *sort_field,
                       cqrs_keyset_query_t *q) {
  memset(q, 0, sizeof *q);
  if (!plain_keys(keys, n) || strcmp(keys[n - 1], "_id") != 0 || strcmp(keys[n - 2], sort_field) != 0) return false;
  for (size_t i = 0; i < n; i++) snprintf(q->keys[i], sizeof q->keys[i], "%s", keys[i]);
  q->n_keys = n;
  bson_iter_t it;
  if (!bson_iter_init(&it, filter)) return false;
  while (bson_iter_next(&it)) {
    const char *k = bson_iter_key(&it);
    if (BSON_ITER_HOLDS_DOCUMENT(&it) && strcmp(k, sort_field) == 0 && !q->lower && !q->upper) {
      if (!match_range(&it, q)) return false;
      continue;
    }
    size_t i = 0;
    while (i < n - 2 && strcmp(keys[i], k) != 0) i++;
    const char *v = text_of(&it);
    if (i == n - 2 || !v || q->equal[i]) return false;
    q->equal[i] = v;
  }
  for (size_t i = 0; i < n - 2; i++)
    if (!q->equal[i]) return false;
  return true;
}

/* "name" with " doubled: a PostgreSQL identifier. */
static void append_ident(bson_string_t *s, const char *name) {
  bson_string_append_c(s, '"');
  for (; *name; name++) {
    if (*name == '"') bson_string_append_c(s, '"');
    bson_string_append_c(s, *name);
  }
  bson_string_append_c(s, '"');
}

/* A key as the index holds it and the statement compares it: the document's
 * member as text, bytewise. key is a plain name (no quoting needed). The
 * same text in the index and the statement, so the planner matches them. */
static void append_key(bson_string_t *s, const char *key) {
  bson_string_append_printf(s, "((_jsonb->>'%s') COLLATE \"C\")", key);
}

static void append_table(bson_string_t *s, const char *schema, const char *table) {
  append_ident(s, schema);
  bson_string_append_c(s, '.');
  append_ident(s, table);
}

char *cqrs_keyset_index_sql(const char *name, const char *schema, const char *table, const char *const *keys,
                            size_t n) {
  if (!plain_keys(keys, n)) return NULL;
  bson_string_t *s = bson_string_new("CREATE INDEX IF NOT EXISTS ");
  append_ident(s, name);
  bson_string_append(s, " ON ");
  append_table(s, schema, table);
  bson_string_append(s, " (");
  for (size_t i = 0; i < n; i++) {
    if (i) bson_string_append(s, ", ");
    append_key(s, keys[i]);
  }
  bson_string_append_c(s, ')');
  char *sql = cqrs_xstrdup(s->str);
  bson_string_free(s, true);
  return sql;
}

/* Appends " AND <key> <op> $<n>" and the parameter. */
static void condition(bson_string_t *s, const char *key, const char *op, const char *value, const char **params,
                      int *n) {
  bson_string_append(s, *n ? " AND " : " WHERE ");
  append_key(s, key);
  params[*n] = value;
  bson_string_append_printf(s, " %s $%d", op, ++*n);
}

char *cqrs_keyset_select_sql(const char *schema, const char *table, const cqrs_keyset_query_t *q,
                             const char **params, int *n_params) {
  const char *sort = q->keys[q->n_keys - 2], *id = q->keys[q->n_keys - 1];
  bson_string_t *s = bson_string_new(NULL);
  bson_string_append_printf(s, "SELECT _jsonb->>'%s', _jsonb->>'%s' FROM ", id, sort);
  append_table(s, schema, table);
  int n = 0;
  for (size_t i = 0; i + 2 < q->n_keys; i++) condition(s, q->keys[i], "=", q->equal[i], params, &n);
  if (q->lower) condition(s, sort, q->lower_open ? ">" : ">=", q->lower, params, &n);
  if (q->upper) condition(s, sort, q->upper_closed ? "<=" : "<", q->upper, params, &n);
  if (q->after_value && q->after_id) {
    /* (sort, _id) beyond the cursor's: a row comparison the index serves as
     * one range, so a deep page costs what the first does. */
    bson_string_append(s, n ? " AND (" : " WHERE (");
    append_key(s, sort);
    bson_string_append(s, ", ");
    append_key(s, id);
    params[n] = q->after_value;
    params[n + 1] = q->after_id;
    bson_string_append_printf(s, ") %s ($%d, $%d)", q->descending ? "<" : ">", n + 1, n + 2);
    n += 2;
  }
  /* every key, equalities included: the index's order, read forwards or backwards */
  bson_string_append(s, " ORDER BY ");
  for (size_t i = 0; i < q->n_keys; i++) {
    if (i) bson_string_append(s, ", ");
    append_key(s, q->keys[i]);
    if (q->descending) bson_string_append(s, " DESC");
  }
  bson_string_append_printf(s, " LIMIT %lld", (long long)q->limit);
  *n_params = n;
  char *sql = cqrs_xstrdup(s->str);
  bson_string_free(s, true);
  return sql;
}

/* a against b bytewise, a shorter prefix first: memcmp, then length (what
 * COLLATE "C" and MongoDB's string order do). */
static int compare_text(const char *a, size_t an, const char *b) {
  size_t bn = strlen(b);
  int c = memcmp(a, b, an < bn ? an : bn);
  return c ? c : (an > bn) - (an < bn);
}

bool cqrs_keyset_holds(const cqrs_keyset_query_t *q, const bson_t *doc) {
  bson_iter_t it;
  for (size_t i = 0; i + 2 < q->n_keys; i++) {
    uint32_t len;
    if (!bson_iter_init_find(&it, doc, q->keys[i]) || !BSON_ITER_HOLDS_UTF8(&it)) return false;
    const char *v = bson_iter_utf8(&it, &len);
    if (compare_text(v, len, q->equal[i]) != 0) return false;
  }
  if (!q->lower && !q->upper) return true;
  uint32_t len;
  if (!bson_iter_init_find(&it, doc, q->keys[q->n_keys - 2]) || !BSON_ITER_HOLDS_UTF8(&it)) return false;
  const char *v = bson_iter_utf8(&it, &len);
  if (q->lower) {
    int c = compare_text(v, len, q->lower);
    if (c < 0 || (c == 0 && q->lower_open)) return false;
  }
  if (q->upper) {
    int c = compare_text(v, len, q->upper);
    if (c > 0 || (c == 0 && !q->upper_closed)) return false;
  }
  return true;
}
