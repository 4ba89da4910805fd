/* The verification keys: a JWKS from AUTH_JWKS_FILE or AUTH_JWKS_URL, parsed
 * into an immutable key set that verifying threads share by reference. A new
 * set replaces the old one under a write lock; readers hold the lock only to
 * take a reference. A background thread re-reads the source every
 * AUTH_JWKS_REFRESH_S, and a token with an unknown kid asks for a re-read at
 * once (file: when its mtime, size or inode changed, checked at most once a
 * second; URL: at most one fetch per 10 s), so a rotated key is accepted
 * without a restart while a flood of made-up kids costs nothing. */
#include "internal.h"

#include "cqrs/alloc.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MISS_FILE_MS 1000
#define MISS_URL_MS 10000
#define FETCH_CONNECT_MS 3000
#define FETCH_TOTAL_MS 5000
#define JWKS_MAX_BYTES (1 << 20)
#define RSA_MIN_BITS 2048

struct auth_keyset {
  int refs; /* atomic */
  size_t n;
  auth_key_t keys[];
};

struct auth_jwks {
  const cqrs_log_t *log;
  char *file, *url;
  int refresh_s;

  pthread_rwlock_t lock; /* current, gen */
  auth_keyset_t *current;
  uint64_t gen;

  pthread_mutex_t load_mu; /* one load at a time; guards the fields below it */
  struct stat seen;        /* the file as last read */
  unsigned char body_sha[32];
  int64_t file_checked_ms;

  pthread_mutex_t mu; /* the refresh thread's state */
  pthread_cond_t cond;
  bool stop, want_fetch, fetching;
  uint64_t fetches; /* completed */
  int64_t miss_fetch_ms;
  pthread_t thread;
  bool started;
};

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Key sets -------------------------------------------------------------- */

void auth_keyset_release(auth_keyset_t *ks) {
  if (!ks || __atomic_sub_fetch(&ks->refs, 1, __ATOMIC_ACQ_REL) > 0) return;
  for (size_t i = 0; i < ks->n; i++) {
    free(ks->keys[i].kid);
    cjose_jwk_release(ks->keys[i].jwk);
  }
  free(ks);
}

const auth_key_t *auth_keyset_find(const auth_keyset_t *ks, const char *kid) {
  if (!kid) return ks->n == 1 ? &ks->keys[0] : NULL;
  for (size_t i = 0; i < ks->n; i++)
    if (ks->keys[i].kid && strcmp(ks->keys[i].kid, kid) == 0) return &ks->keys[i];
  return NULL;
}

/* Why a JWK is not used, or NULL with *alg set when it is. Only signature
 * keys of the two asymmetric algorithms qualify: an "oct" key in a JWKS is
 * never used (HS256 keys come only from AUTH_HS256_SECRET). */
/* Why JWK k cannot go to cjose: a member cjose base64url-decodes that is not
 * unpadded base64url of a possible length (cjose 0.6.2 assert()s on some,
 * aborting the service: found by tests/fuzz/fuzz_jwks); NULL when it can. */
static const char *undecodable(json_t *k) {
  static const char *const encoded[] = {"n", "e", "d", "p", "q", "dp", "dq", "qi", "x", "y", "k"};
  for (size_t i = 0; i < sizeof encoded / sizeof *encoded; i++) {
    json_t *v = json_object_get(k, encoded[i]);
    if (json_is_string(v) && !auth_b64url_ok(json_string_value(v), json_string_length(v)))
      return "a member is not unpadded base64url";
  }
  return NULL;
}

static const char *unusable(json_t *k, const cjose_jwk_t *jwk, const char **alg) {
  const char *use = json_string_value(json_object_get(k, "use"));
  const char *want = json_string_value(json_object_get(k, "alg"));
  if (use && strcmp(use, "sig") != 0) return "not a signature key";
  switch (cjose_jwk_get_kty(jwk, NULL)) {
  case CJOSE_JWK_KTY_RSA:
    if (cjose_jwk_get_keysize(jwk, NULL) < RSA_MIN_BITS) return "RSA key shorter than 2048 bits";
    *alg = "RS256";
    break;
  case CJOSE_JWK_KTY_EC:
    if (cjose_jwk_EC_get_curve(jwk, NULL) != CJOSE_JWK_EC_P_256) return "EC key not on P-256";
    *alg = "ES256";
    break;
  default: return "key type not allowed";
  }
  if (want && strcmp(want, *alg) != 0) return "alg not allowed";
  return NULL;
}

auth_keyset_t *auth_keyset_parse(const char *text, size_t len, const cqrs_log_t *log, cqrs_error_t *err) {
  json_error_t jerr;
  json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
  json_t *keys = json_object_get(doc, "keys");
  if (!json_is_array(keys)) {
    cqrs_error_set(err, CQRS_ERR_INVALID, NULL, "not a JWKS (an object with a \"keys\" array)");
    json_decref(doc);
    return NULL;
  }
  auth_keyset_t *ks = cqrs_xcalloc(1, sizeof *ks + json_array_size(keys) * sizeof(auth_key_t));
  ks->refs = 1;
  size_t i;
  json_t *k;
  json_array_foreach(keys, i, k) {
    const char *kid = json_string_value(json_object_get(k, "kid")), *alg = NULL, *why = NULL;
    cjose_jwk_t *jwk = NULL;
    if (!json_is_object(k)) why = "not a JWK";
    else if (!(why = undecodable(k)) && !(jwk = cjose_jwk_import_json((cjose_header_t *)k, NULL))) why = "not a JWK";
    if (!why && !(why = unusable(k, jwk, &alg)) && kid && auth_keyset_find(ks, kid)) why = "kid appears twice";
    if (why) {
      cqrs_log_warn(log, "JWKS key skipped", "kid", kid, "reason", why, NULL);
      cjose_jwk_release(jwk);
      continue;
    }
    ks->keys[ks->n].kid = kid ? cqrs_xstrdup(kid) : NULL;
    ks->keys[ks->n].alg = alg;
    ks->keys[ks->n].jwk = jwk;
    ks->n++;
  }
  json_decref(doc);
  return ks;
}

/* Installs ks as the current set (taking its reference). */
static void install(auth_jwks_t *j, auth_keyset_t *ks) {
  pthread_rwlock_wrlock(&j->lock);
  auth_keyset_t *old = j->current;
  j->current = ks;
  j->gen++;
  pthread_rwlock_unlock(&j->lock);
  auth_keyset_release(old);
}

auth_keyset_t *auth_jwks_acquire(auth_jwks_t *j, uint64_t *gen) {
  pthread_rwlock_rdlock(&j->lock);
  auth_keyset_t *ks = j->current;
  __atomic_add_fetch(&ks->refs, 1, __ATOMIC_RELAXED);
  if (gen) *gen = j->gen;
  pthread_rwlock_unlock(&j->lock);
  return ks;
}

uint64_t auth_jwks_generation(auth_jwks_t *j) {
  pthread_rwlock_rdlock(&j->lock);
  uint64_t g = j->gen;
  pthread_rwlock_unlock(&j->lock);
  return g;
}

/* Loading --------------------------------------------------------------- */

/* Parses body and installs it unless it is what is in place already. With
 * load_mu held. False with err when the body is not a JWKS with a usable key
 * (the current set then stays). */
static bool load_body(auth_jwks_t *j, const char *body, size_t len, bool *changed, cqrs_error_t *err) {
  unsigned char sha[32];
  *changed = false;
  if (auth_sha256(body, len, sha) && memcmp(sha, j->body_sha, 32) == 0 && j->current->n > 0) return true;
  auth_keyset_t *ks = auth_keyset_parse(body, len, j->log, err);
  if (!ks) return false;
  if (ks->n == 0) {
    auth_keyset_release(ks);
    cqrs_error_set(err, CQRS_ERR_INVALID, NULL, "the JWKS has no usable key (RS256 or ES256)");
    return false;
  }
  memcpy(j->body_sha, sha, 32);
  cqrs_log_info(j->log, "JWKS loaded", "source", j->file ? "file" : "url", NULL);
  install(j, ks);
  *changed = true;
  return true;
}

/* Re-reads the file when force or when it is not the file last read. With load_mu held. */
static bool load_file(auth_jwks_t *j, bool force, bool *changed, cqrs_error_t *err) {
  *changed = false;
  struct stat st;
  if (stat(j->file, &st) != 0) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "AUTH_JWKS_FILE", "cannot read AUTH_JWKS_FILE: %s", strerror(errno));
    return false;
  }
  if (!force && st.st_ino == j->seen.st_ino && st.st_dev == j->seen.st_dev && st.st_size == j->seen.st_size &&
      st.st_mtim.tv_sec == j->seen.st_mtim.tv_sec && st.st_mtim.tv_nsec == j->seen.st_mtim.tv_nsec)
    return true;
  FILE *f = fopen(j->file, "re");
  char *buf = NULL;
  size_t len = 0;
  bool ok = false;
  if (f && st.st_size <= JWKS_MAX_BYTES) {
    buf = cqrs_xmalloc((size_t)st.st_size + 1);
    len = fread(buf, 1, (size_t)st.st_size + 1, f);
    ok = len <= (size_t)st.st_size;
  }
  if (f) fclose(f);
  if (!ok) cqrs_error_set(err, CQRS_ERR_INVALID, "AUTH_JWKS_FILE", "cannot read AUTH_JWKS_FILE (or it is over 1 MiB)");
  else if ((ok = load_body(j, buf, len, changed, err))) j->seen = st;
  free(buf);
  return ok;
}

typedef struct {
  char *buf;
  size_t len;
} body_t;

static size_t on_data(char *p, size_t size, size_t n, void *ctx) {
  body_t *b = ctx;
  size_t add = size * n;
  if (b->len + add > JWKS_MAX_BYTES) return 0; /* aborts the transfer */
  char *grown = cqrs_xrealloc(b->buf, b->len + add + 1);
  memcpy(grown + b->len, p, add);
  b->buf = grown;
  b->len += add;
  return add;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

/* Fetches the URL and installs what it serves. With load_mu held. */
static bool load_url(auth_jwks_t *j, bool *changed, cqrs_error_t *err) {
  *changed = false;
  pthread_once(&curl_once, curl_init);
  CURL *h = curl_easy_init();
  body_t b = {0};
  long status = 0;
  bool ok = false;
  if (!h) {
    cqrs_error_set(err, CQRS_ERR_INTERNAL, NULL, "cannot make a libcurl handle");
    return false;
  }
  curl_easy_setopt(h, CURLOPT_URL, j->url);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* we are on a thread */
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)FETCH_CONNECT_MS);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)FETCH_TOTAL_MS);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "cqrs-auth");
  CURLcode rc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  if (rc != CURLE_OK)
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, "AUTH_JWKS_URL", "cannot fetch AUTH_JWKS_URL: %s", curl_easy_strerror(rc));
  else if (status != 200)
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, "AUTH_JWKS_URL", "AUTH_JWKS_URL answered %ld", status);
  else
    ok = load_body(j, b.buf ? b.buf : "", b.len, changed, err);
  free(b.buf);
  curl_easy_cleanup(h);
  return ok;
}

/* One refresh (the timer's or a kid miss's): the file when it changed, the URL always. */
static bool refresh(auth_jwks_t *j, bool *changed) {
  cqrs_error_t err;
  pthread_mutex_lock(&j->load_mu);
  bool ok = j->file ? load_file(j, false, changed, &err) : load_url(j, changed, &err);
  if (j->file) j->file_checked_ms = mono_ms();
  pthread_mutex_unlock(&j->load_mu);
  if (!ok) cqrs_log_warn(j->log, "JWKS refresh failed; keeping the keys in place", "reason", err.message, NULL);
  return ok;
}

/* The refresh thread ---------------------------------------------------- */

static void *refresher(void *arg) {
  auth_jwks_t *j = arg;
  pthread_mutex_lock(&j->mu);
  while (!j->stop) {
    /* without any key yet (the URL did not answer at start), retry sooner */
    int64_t wait_ms = (int64_t)j->refresh_s * 1000;
    auth_keyset_t *ks = auth_jwks_acquire(j, NULL);
    if (ks->n == 0 && wait_ms > MISS_URL_MS) wait_ms = MISS_URL_MS;
    auth_keyset_release(ks);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += wait_ms / 1000;
    until.tv_nsec += (wait_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
    int rc = 0;
    while (!j->stop && !j->want_fetch && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&j->cond, &j->mu, &until);
    if (j->stop) break;
    j->want_fetch = false;
    j->fetching = true;
    pthread_mutex_unlock(&j->mu);
    bool changed;
    refresh(j, &changed);
    pthread_mutex_lock(&j->mu);
    j->fetching = false;
    j->fetches++;
    pthread_cond_broadcast(&j->cond);
  }
  pthread_mutex_unlock(&j->mu);
  return NULL;
}

bool auth_jwks_refresh_on_miss(auth_jwks_t *j) {
  uint64_t before = auth_jwks_generation(j);
  if (j->file) {
    bool changed = false;
    pthread_mutex_lock(&j->load_mu);
    bool due = mono_ms() - j->file_checked_ms >= MISS_FILE_MS;
    pthread_mutex_unlock(&j->load_mu);
    if (due) refresh(j, &changed);
    return auth_jwks_generation(j) != before;
  }
  pthread_mutex_lock(&j->mu);
  int64_t now = mono_ms();
  if (j->miss_fetch_ms && now - j->miss_fetch_ms < MISS_URL_MS) {
    pthread_mutex_unlock(&j->mu);
    return false;
  }
  j->miss_fetch_ms = now;
  /* a fetch under way may have started before the key appeared: wait for the next one */
  uint64_t target = j->fetches + (j->fetching ? 2 : 1);
  j->want_fetch = true;
  pthread_cond_broadcast(&j->cond);
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += FETCH_TOTAL_MS / 1000 + 1; /* bounded: an HTTP loop thread is waiting */
  int rc = 0;
  while (!j->stop && j->fetches < target && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&j->cond, &j->mu, &until);
  pthread_mutex_unlock(&j->mu);
  return auth_jwks_generation(j) != before;
}

/* Life ------------------------------------------------------------------ */

auth_jwks_t *auth_jwks_new(const cqrs_config_t *cfg, const cqrs_log_t *log, cqrs_error_t *err) {
  auth_jwks_t *j = cqrs_xcalloc(1, sizeof *j);
  auth_keyset_t *empty = cqrs_xcalloc(1, sizeof *empty);
  empty->refs = 1;
  j->log = log;
  j->refresh_s = cfg->auth_jwks_refresh_s > 0 ? cfg->auth_jwks_refresh_s : 300;
  j->file = cfg->auth_jwks_file ? cqrs_xstrdup(cfg->auth_jwks_file) : NULL;
  j->url = cfg->auth_jwks_url && !j->file ? cqrs_xstrdup(cfg->auth_jwks_url) : NULL;
  j->current = empty;
  pthread_rwlock_init(&j->lock, NULL);
  pthread_mutex_init(&j->load_mu, NULL);
  pthread_mutex_init(&j->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&j->cond, &ca);
  pthread_condattr_destroy(&ca);
  bool changed;
  if (j->file) {
    pthread_mutex_lock(&j->load_mu);
    bool ok = load_file(j, true, &changed, err);
    j->file_checked_ms = mono_ms();
    pthread_mutex_unlock(&j->load_mu);
    if (!ok) {
      if (err && !err->field[0]) snprintf(err->field, sizeof err->field, "AUTH_JWKS_FILE");
      auth_jwks_destroy(j);
      return NULL;
    }
  } else {
    cqrs_error_t ferr;
    pthread_mutex_lock(&j->load_mu);
    bool ok = load_url(j, &changed, &ferr);
    pthread_mutex_unlock(&j->load_mu);
    if (!ok) /* the identity provider may come up after us: keep trying */
      cqrs_log_warn(log, "JWKS not loaded at start; JWTs are refused until it is", "reason", ferr.message, NULL);
  }
  if (pthread_create(&j->thread, NULL, refresher, j) != 0) {
    cqrs_error_set(err, CQRS_ERR_INTERNAL, NULL, "cannot start the JWKS refresh thread");
    auth_jwks_destroy(j);
    return NULL;
  }
  j->started = true;
  return j;
}

void auth_jwks_destroy(auth_jwks_t *j) {
  if (!j) return;
  if (j->started) {
    pthread_mutex_lock(&j->mu);
    j->stop = true;
    pthread_cond_broadcast(&j->cond);
    pthread_mutex_unlock(&j->mu);
    pthread_join(j->thread, NULL);
  }
  auth_keyset_release(j->current);
  pthread_cond_destroy(&j->cond);
  pthread_mutex_destroy(&j->mu);
  pthread_mutex_destroy(&j->load_mu);
  pthread_rwlock_destroy(&j->lock);
  free(j->file);
  free(j->url);
  free(j);
}
