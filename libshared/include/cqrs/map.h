/* A string-keyed hash map of borrowed pointers. Not thread-safe: the owner
 * locks. Keys are copied; values are the caller's. */
#ifndef CQRS_MAP_H
#define CQRS_MAP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct cqrs_map cqrs_map_t;

/* A new empty map. Free with cqrs_map_destroy (NULL is fine); free_value (may
 * be NULL) is called on each value still in the map when it is destroyed,
 * replaced or removed with cqrs_map_delete. */
cqrs_map_t *cqrs_map_new(void (*free_value)(void *));
void cqrs_map_destroy(cqrs_map_t *m);

/* The value for key, or NULL. */
void *cqrs_map_get(const cqrs_map_t *m, const char *key);

/* Sets key to value (freeing a replaced value). Can't fail (aborts on OOM). */
void cqrs_map_put(cqrs_map_t *m, const char *key, void *value);

/* Removes key and returns its value without freeing it (NULL when absent). */
void *cqrs_map_take(cqrs_map_t *m, const char *key);

/* Removes key, freeing its value. */
void cqrs_map_delete(cqrs_map_t *m, const char *key);

/* Moves every entry of src into dst (freeing values dst replaces); src ends
 * empty. Both maps must free values the same way. */
void cqrs_map_move_all(cqrs_map_t *dst, cqrs_map_t *src);

/* Removes every entry, freeing the values. */
void cqrs_map_clear(cqrs_map_t *m);

size_t cqrs_map_size(const cqrs_map_t *m);

/* Calls cb on every entry; when cb returns true the entry is removed (its
 * value freed). */
void cqrs_map_filter(cqrs_map_t *m, bool (*cb)(const char *key, void *value, void *ctx), void *ctx);

#endif
