/* Allocation that cannot fail: the one out-of-memory policy of the tree.
 *
 * Policy: running out of memory is not an error a caller handles; the
 * process writes one line to stderr and aborts (as redis' zmalloc and libuv's
 * uv__malloc users do, and as libbson's bson_malloc already does for every
 * bson_t and JSON string). Why: a service that cannot allocate cannot answer,
 * log or commit reliably either, and every unchecked malloc was a NULL
 * dereference waiting; the orchestrator restarts an aborted process, and
 * Kafka offsets are committed only after the store acknowledged, so nothing
 * is lost. Input from the network must still never make us allocate without
 * a bound (limits are checked before the allocation, as the HTTP server does
 * with BODY_MAX).
 *
 * Every function here returns memory to free() (never bson_free); a size of
 * 0 is allocated as 1 byte so the result is never NULL. These functions
 * can't fail: they abort. */
#ifndef CQRS_ALLOC_H
#define CQRS_ALLOC_H

#include <stddef.h>

void *cqrs_xmalloc(size_t size);
/* Zeroed; aborts as well when n * size overflows. */
void *cqrs_xcalloc(size_t n, size_t size);
/* p may be NULL (then as cqrs_xmalloc). */
void *cqrs_xrealloc(void *p, size_t size);
char *cqrs_xstrdup(const char *s);
/* At most n bytes of s, NUL-terminated. */
char *cqrs_xstrndup(const char *s, size_t n);
/* n zeroed elements of size bytes aligned to align (a power of two, a
 * multiple of sizeof(void *)): for arrays of structs that embed a bson_t,
 * which libbson declares 128-byte aligned while malloc promises 16. */
void *cqrs_xcalloc_aligned(size_t n, size_t size, size_t align);

#endif
