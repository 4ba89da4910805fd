/* The cache of verified JWTs, keyed by the SHA-256 of the token: a repeated
 * token costs a hash and a lookup instead of a signature check. Set-associative
 * (4 ways a set), so a lookup touches one set under one of a few striped locks;
 * a full set evicts its oldest entry. An entry lives until its token's exp plus
 * leeway and only for the key set it was verified with (a key dropped from the
 * JWKS stops its cached tokens too). */
#include "internal.h"

#include "cqrs/alloc.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define WAYS 4
#define STRIPES 16

typedef struct {
  unsigned char digest[32];
  bool used;
  int64_t valid_until;
  uint64_t gen;
  uint64_t stamp; /* insertion order, for eviction */
  cqrs_principal_t who;
} entry_t;

struct auth_cache {
  size_t sets;
  entry_t *entries;
  uint64_t stamp;
  pthread_mutex_t locks[STRIPES];
};

auth_cache_t *auth_cache_new(size_t capacity) {
  auth_cache_t *c = cqrs_xcalloc(1, sizeof *c);
  c->sets = capacity / WAYS ? capacity / WAYS : 1;
  c->entries = cqrs_xcalloc(c->sets * WAYS, sizeof *c->entries);
  for (size_t i = 0; i < STRIPES; i++) pthread_mutex_init(&c->locks[i], NULL);
  return c;
}

void auth_cache_destroy(auth_cache_t *c) {
  if (!c) return;
  for (size_t i = 0; i < STRIPES; i++) pthread_mutex_destroy(&c->locks[i]);
  OPENSSL_cleanse(c->entries, c->sets * WAYS * sizeof *c->entries);
  free(c->entries);
  free(c);
}

static size_t set_of(const auth_cache_t *c, const unsigned char digest[32]) {
  uint64_t h;
  memcpy(&h, digest, sizeof h); /* a SHA-256 is already uniform */
  return (size_t)(h % c->sets);
}

bool auth_cache_get(auth_cache_t *c, const unsigned char digest[32], int64_t now, uint64_t gen,
                    cqrs_principal_t *who) {
  size_t s = set_of(c, digest);
  entry_t *set = c->entries + s * WAYS;
  bool hit = false;
  pthread_mutex_lock(&c->locks[s % STRIPES]);
  for (size_t i = 0; i < WAYS && !hit; i++) {
    if (!set[i].used || CRYPTO_memcmp(set[i].digest, digest, 32) != 0) continue;
    if (set[i].gen == gen && now < set[i].valid_until) {
      *who = set[i].who;
      hit = true;
    } else {
      set[i].used = false; /* expired, or verified with a key set that is gone */
    }
  }
  pthread_mutex_unlock(&c->locks[s % STRIPES]);
  return hit;
}

void auth_cache_put(auth_cache_t *c, const unsigned char digest[32], int64_t valid_until, uint64_t gen,
                    const cqrs_principal_t *who) {
  size_t s = set_of(c, digest);
  entry_t *set = c->entries + s * WAYS, *victim = NULL;
  pthread_mutex_lock(&c->locks[s % STRIPES]);
  for (size_t i = 0; i < WAYS; i++) {
    if (set[i].used && CRYPTO_memcmp(set[i].digest, digest, 32) == 0) {
      victim = &set[i];
      break;
    }
    if (!set[i].used) {
      if (!victim || victim->used) victim = &set[i];
    } else if (!victim || (victim->used && set[i].stamp < victim->stamp)) {
      victim = &set[i];
    }
  }
  memcpy(victim->digest, digest, 32);
  victim->used = true;
  victim->valid_until = valid_until;
  victim->gen = gen;
  victim->stamp = __atomic_add_fetch(&c->stamp, 1, __ATOMIC_RELAXED);
  victim->who = *who;
  pthread_mutex_unlock(&c->locks[s % STRIPES]);
}
