/* Whether one JSON Schema reads what another wrote, and the Confluent
 * compatibility levels on top (cqrs/jsonschema.h).
 *
 * reads(R, W) holds when every document W validates, R validates too. The
 * rules, walked property by property (the ones Confluent's JSON Schema
 * checker names, for our subset):
 *   - a type W allows and R does not (integer -> number widens; the reverse
 *     narrows);
 *   - a property R requires that W does not (W's data may lack it);
 *   - a property W declares that R does not allow (R closed:
 *     additionalProperties false), or allows with a narrower schema;
 *   - a property R declares that W's open content may hold with any value
 *     (Confluent: "property added to open content model"); from a closed W
 *     it is fine, W never wrote it;
 *   - R closing additionalProperties that W leaves open;
 *   - narrower items, enum, minLength, maxLength, or a format W lacks. */
#include "node.h"

#include "cqrs/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
  cqrs_compat_level_t level;
  const char *name;
} levels[] = {
    {CQRS_COMPAT_NONE, "NONE"},
    {CQRS_COMPAT_BACKWARD, "BACKWARD"},
    {CQRS_COMPAT_BACKWARD_TRANSITIVE, "BACKWARD_TRANSITIVE"},
    {CQRS_COMPAT_FORWARD, "FORWARD"},
    {CQRS_COMPAT_FORWARD_TRANSITIVE, "FORWARD_TRANSITIVE"},
    {CQRS_COMPAT_FULL, "FULL"},
    {CQRS_COMPAT_FULL_TRANSITIVE, "FULL_TRANSITIVE"},
};

const char *cqrs_compat_level_name(cqrs_compat_level_t level) {
  for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
    if (levels[i].level == level) return levels[i].name;
  return "NONE";
}

bool cqrs_compat_level_parse(const char *s, cqrs_compat_level_t *out) {
  for (size_t i = 0; s && i < sizeof levels / sizeof levels[0]; i++) {
    if (strcmp(levels[i].name, s) == 0) {
      *out = levels[i].level;
      return true;
    }
  }
  return false;
}

void cqrs_compat_messages_cleanup(cqrs_compat_messages_t *m) {
  if (!m) return;
  for (size_t i = 0; i < m->n; i++) free(m->items[i]);
  free(m->items);
  memset(m, 0, sizeof *m);
}

typedef struct {
  const char *rule, *reader, *writer;
  cqrs_compat_messages_t *msgs;
  bool ok;
} ctx_t;

/* Records one broken rule: "<rule>: <field> <what>". */
__attribute__((format(printf, 3, 4))) static void broken(ctx_t *c, const char *path, const char *fmt, ...) {
  c->ok = false;
  if (!c->msgs) return;
  char what[400], field[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (path[0])
    snprintf(field, sizeof field, "field '%s'", path);
  else
    snprintf(field, sizeof field, "the document");
  size_t len = strlen(c->rule) + strlen(field) + strlen(what) + 4;
  char *msg = cqrs_xmalloc(len);
  snprintf(msg, len, "%s: %s %s", c->rule, field, what);
  if (c->msgs->n == c->msgs->cap) {
    size_t cap = c->msgs->cap ? c->msgs->cap * 2 : 8;
    char **grown = cqrs_xrealloc(c->msgs->items, cap * sizeof *grown);
    c->msgs->items = grown;
    c->msgs->cap = cap;
  }
  c->msgs->items[c->msgs->n++] = msg;
}

/* True when n accepts every value. */
static bool is_any(const js_node_t *n) {
  return !n || (!n->never && n->types == JS_ANY && n->n_props == 0 && !n->closed && !n->additional && !n->items &&
                !n->enum_values && n->min_length == 0 && n->max_length < 0 &&
                (n->format == JS_FORMAT_NONE || n->format == JS_FORMAT_OTHER));
}

/* The types of wt that rt does not take (integers fit in number). */
static unsigned types_missing(unsigned rt, unsigned wt) {
  unsigned missing = wt & ~rt;
  if ((missing & JS_INTEGER) && (rt & JS_NUMBER)) missing &= ~JS_INTEGER;
  return missing;
}

static void join(char *out, size_t size, const char *path, const char *key) {
  /* A path longer than out is cut: it only names the place in a message. */
  if (snprintf(out, size, "%s%s%s", path, path[0] ? "." : "", key) >= (int)size) out[size - 1] = '\0';
}

static void reads(ctx_t *c, const js_node_t *r, const js_node_t *w, const char *path, int depth);

static void reads_enum(ctx_t *c, const js_node_t *r, const js_node_t *w, const char *path) {
  if (!r->enum_values) return;
  if (!w->enum_values) {
    broken(c, path, "is limited to an enum by %s but not by %s", c->reader, c->writer);
    return;
  }
  bson_iter_t wi, ri;
  if (!bson_iter_init(&wi, w->enum_values)) return;
  while (bson_iter_next(&wi)) {
    bool found = false;
    if (bson_iter_init(&ri, r->enum_values))
      while (!found && bson_iter_next(&ri)) found = js_value_equal(bson_iter_value(&ri), bson_iter_value(&wi));
    if (!found) {
      broken(c, path, "has a value in the enum of %s that the enum of %s lacks", c->writer, c->reader);
      return;
    }
  }
}

static void reads_string(ctx_t *c, const js_node_t *r, const js_node_t *w, const char *path) {
  if (r->min_length > w->min_length)
    broken(c, path, "must be at least %lld characters in %s but %s allows %lld", (long long)r->min_length,
           c->reader, c->writer, (long long)w->min_length);
  if (r->max_length >= 0 && (w->max_length < 0 || w->max_length > r->max_length))
    broken(c, path, "must be at most %lld characters in %s but %s allows more", (long long)r->max_length, c->reader,
           c->writer);
  if (r->format_name && r->format != JS_FORMAT_OTHER &&
      (!w->format_name || strcmp(r->format_name, w->format_name) != 0))
    broken(c, path, "has format '%s' in %s but not in %s", r->format_name, c->reader, c->writer);
}

static void reads_object(ctx_t *c, const js_node_t *r, const js_node_t *w, const char *path, int depth) {
  char sub[512];
  for (size_t i = 0; i < r->n_props; i++) {
    const js_prop_t *rp = &r->props[i], *wp = js_prop_find(w, rp->name);
    join(sub, sizeof sub, path, rp->name);
    if (rp->required && !(wp && wp->required)) {
      if (wp && wp->schema)
        broken(c, sub, "is required by %s but optional in %s", c->reader, c->writer);
      else
        broken(c, sub, "is required by %s but absent from %s", c->reader, c->writer);
    }
    if (!rp->schema || (wp && wp->schema)) continue;
    /* A property only the reader declares: what may the writer have put there? */
    if (w->closed) continue;
    if (w->additional)
      reads(c, rp->schema, w->additional, sub, depth + 1);
    else if (!is_any(rp->schema))
      broken(c, sub, "is new in %s, but %s is open (additionalProperties not false) and may hold any value there",
             c->reader, c->writer);
  }
  for (size_t i = 0; i < w->n_props; i++) {
    const js_prop_t *wp = &w->props[i], *rp = js_prop_find(r, wp->name);
    if (!wp->schema) continue;
    join(sub, sizeof sub, path, wp->name);
    if (rp && rp->schema)
      reads(c, rp->schema, wp->schema, sub, depth + 1);
    else if (r->closed)
      broken(c, sub, "is written by %s but not allowed by %s (additionalProperties false)", c->writer, c->reader);
    else if (r->additional)
      reads(c, r->additional, wp->schema, sub, depth + 1);
  }
  /* Whatever else the writer may hold beyond its declared properties. */
  if (w->closed) return;
  if (r->closed)
    broken(c, path, "allows no other fields in %s (additionalProperties false) but %s does", c->reader, c->writer);
  else if (r->additional && !is_any(r->additional)) {
    if (w->additional)
      reads(c, r->additional, w->additional, path, depth + 1);
    else
      broken(c, path, "restricts its other fields in %s (additionalProperties) but %s leaves them open", c->reader,
             c->writer);
  }
}

static void reads(ctx_t *c, const js_node_t *r, const js_node_t *w, const char *path, int depth) {
  if (w->never || depth > 128) return; /* the writer wrote nothing here; depth: compile bounds it already */
  if (r->never) {
    broken(c, path, "is not allowed by %s but %s allows it", c->reader, c->writer);
    return;
  }
  unsigned missing = types_missing(r->types, w->types);
  if (missing) {
    char rt[96], wt[96];
    js_types_describe(missing, wt, sizeof wt);
    js_types_describe(r->types, rt, sizeof rt);
    broken(c, path, "may be %s in %s but is %s in %s", wt, c->writer, rt, c->reader);
  }
  reads_enum(c, r, w, path);
  unsigned both = r->types & w->types;
  if (both & JS_STRING) reads_string(c, r, w, path);
  if (both & JS_OBJECT) reads_object(c, r, w, path, depth);
  if ((both & JS_ARRAY) && r->items && !is_any(r->items)) {
    char sub[512];
    snprintf(sub, sizeof sub, "%s[]", path);
    if (w->items)
      reads(c, r->items, w->items, sub, depth + 1);
    else
      broken(c, sub, "are restricted by %s but may be any value in %s", c->reader, c->writer);
  }
}

bool cqrs_compat_reads(const cqrs_jsonschema_t *reader, const cqrs_jsonschema_t *writer, const char *rule,
                       const char *reader_name, const char *writer_name, cqrs_compat_messages_t *msgs) {
  ctx_t c = {.rule = rule, .reader = reader_name, .writer = writer_name, .msgs = msgs, .ok = true};
  reads(&c, reader->root, writer->root, "", 0);
  return c.ok;
}

bool cqrs_compat_check(cqrs_compat_level_t level, const cqrs_jsonschema_t *candidate,
                       const cqrs_compat_version_t *prev, size_t n, cqrs_compat_messages_t *msgs) {
  bool backward = level == CQRS_COMPAT_BACKWARD || level == CQRS_COMPAT_BACKWARD_TRANSITIVE ||
                  level == CQRS_COMPAT_FULL || level == CQRS_COMPAT_FULL_TRANSITIVE;
  bool forward = level == CQRS_COMPAT_FORWARD || level == CQRS_COMPAT_FORWARD_TRANSITIVE ||
                 level == CQRS_COMPAT_FULL || level == CQRS_COMPAT_FULL_TRANSITIVE;
  bool transitive = level == CQRS_COMPAT_BACKWARD_TRANSITIVE || level == CQRS_COMPAT_FORWARD_TRANSITIVE ||
                    level == CQRS_COMPAT_FULL_TRANSITIVE;
  const char *rule = cqrs_compat_level_name(level);
  bool ok = true;
  /* Latest first, so the messages about the latest version come first. */
  for (size_t k = n; k-- > 0 && (transitive || k == n - 1);) {
    char name[32];
    snprintf(name, sizeof name, "version %d", prev[k].version);
    if (backward) ok = cqrs_compat_reads(candidate, prev[k].schema, rule, "the new schema", name, msgs) && ok;
    if (forward) ok = cqrs_compat_reads(prev[k].schema, candidate, rule, name, "the new schema", msgs) && ok;
  }
  return ok;
}
