/* String hash map with chaining; grows at load factor 1. */
#include "cqrs/map.h"

#include "cqrs/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
  struct entry *next;
  uint64_t hash;
  char *key;
  void *value;
} entry_t;

struct cqrs_map {
  entry_t **slots;
  size_t n_slots;
  size_t size;
  void (*free_value)(void *);
};

static uint64_t hash_str(const char *s) { /* FNV-1a */
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

cqrs_map_t *cqrs_map_new(void (*free_value)(void *)) {
  cqrs_map_t *m = cqrs_xcalloc(1, sizeof *m);
  m->n_slots = 64;
  m->slots = cqrs_xcalloc(m->n_slots, sizeof *m->slots);
  m->free_value = free_value;
  return m;
}

void cqrs_map_destroy(cqrs_map_t *m) {
  if (!m) return;
  for (size_t i = 0; i < m->n_slots; i++) {
    for (entry_t *e = m->slots[i], *next; e; e = next) {
      next = e->next;
      if (m->free_value) m->free_value(e->value);
      free(e->key);
      free(e);
    }
  }
  free(m->slots);
  free(m);
}

static entry_t **find(const cqrs_map_t *m, const char *key, uint64_t h) {
  entry_t **p = &m->slots[h & (m->n_slots - 1)];
  while (*p && ((*p)->hash != h || strcmp((*p)->key, key) != 0)) p = &(*p)->next;
  return p;
}

void *cqrs_map_get(const cqrs_map_t *m, const char *key) {
  entry_t *e = *find(m, key, hash_str(key));
  return e ? e->value : NULL;
}

static void grow(cqrs_map_t *m) {
  size_t n = m->n_slots * 2;
  entry_t **slots = cqrs_xcalloc(n, sizeof *slots);
  for (size_t i = 0; i < m->n_slots; i++) {
    for (entry_t *e = m->slots[i], *next; e; e = next) {
      next = e->next;
      e->next = slots[e->hash & (n - 1)];
      slots[e->hash & (n - 1)] = e;
    }
  }
  free(m->slots);
  m->slots = slots;
  m->n_slots = n;
}

void cqrs_map_put(cqrs_map_t *m, const char *key, void *value) {
  uint64_t h = hash_str(key);
  entry_t **p = find(m, key, h);
  if (*p) {
    if (m->free_value && (*p)->value != value) m->free_value((*p)->value);
    (*p)->value = value;
    return;
  }
  entry_t *e = cqrs_xcalloc(1, sizeof *e);
  e->hash = h;
  e->key = cqrs_xstrdup(key);
  e->value = value;
  *p = e;
  if (++m->size > m->n_slots) grow(m);
}

void *cqrs_map_take(cqrs_map_t *m, const char *key) {
  entry_t **p = find(m, key, hash_str(key));
  entry_t *e = *p;
  if (!e) return NULL;
  *p = e->next;
  void *v = e->value;
  free(e->key);
  free(e);
  m->size--;
  return v;
}

void cqrs_map_delete(cqrs_map_t *m, const char *key) {
  void *v = cqrs_map_take(m, key);
  if (v && m->free_value) m->free_value(v);
}

void cqrs_map_move_all(cqrs_map_t *dst, cqrs_map_t *src) {
  for (size_t i = 0; i < src->n_slots; i++) {
    for (entry_t *e = src->slots[i], *next; e; e = next) {
      next = e->next;
      cqrs_map_put(dst, e->key, e->value);
      free(e->key);
      free(e);
    }
    src->slots[i] = NULL;
  }
  src->size = 0;
}

static bool all_cb(const char *key, void *value, void *ctx) {
  (void)key, (void)value, (void)ctx;
  return true;
}

void cqrs_map_clear(cqrs_map_t *m) { cqrs_map_filter(m, all_cb, NULL); }

size_t cqrs_map_size(const cqrs_map_t *m) { return m->size; }

void cqrs_map_filter(cqrs_map_t *m, bool (*cb)(const char *key, void *value, void *ctx), void *ctx) {
  for (size_t i = 0; i < m->n_slots; i++) {
    entry_t **p = &m->slots[i];
    while (*p) {
      entry_t *e = *p;
      if (cb(e->key, e->value, ctx)) {
        *p = e->next;
        if (m->free_value) m->free_value(e->value);
        free(e->key);
        free(e);
        m->size--;
      } else {
        p = &e->next;
      }
    }
  }
}
