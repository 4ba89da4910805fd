/* cqrs_json_parse's fast path (json_fast.h): one pass over the text,
 * appending straight into the document. Why: restoring a million aggregates
 * spent about 70% of its time in libbson's JSON reader (jsonsl, its unescape
 * copy of every string, a UTF-8 check) and in the duplicate-key sort after
 * it (BENCHMARKS.md). Whatever this reader is not sure to read exactly as
 * libbson would, it leaves to libbson (returns NULL). */
#include "json_fast.h"

#include "cqrs/alloc.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32 /* deeper: libbson's (whose limit and error are the contract) */
#define MAX_KEYS 64  /* keys per object looked at pairwise for duplicates; more: libbson */

typedef struct {
  const char *p, *end;
  char *scratch; /* a string value with escapes, unescaped */
  size_t cap;
  int depth;
} reader_t;

static void skip_ws(reader_t *r) {
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t')) r->p++;
}

/* True when s[0..n) is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, at most U+10FFFF) without NUL. */
static bool utf8_ok(const unsigned char *s, size_t n) {
  for (size_t i = 0; i < n;) {
    unsigned char c = s[i];
    if (c < 0x80) {
      if (c == 0) return false;
      i++;
      continue;
    }
    size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    if (len == 0 || c > 0xf4 || i + len > n) return false;
    for (size_t k = 1; k < len; k++)
      if ((s[i + k] & 0xc0) != 0x80) return false;
    if (c == 0xe0 && s[i + 1] < 0xa0) return false; /* overlong */
    if (c == 0xed && s[i + 1] >= 0xa0) return false; /* surrogate */
    if (c == 0xf0 && s[i + 1] < 0x90) return false; /* overlong */
    if (c == 0xf4 && s[i + 1] >= 0x90) return false; /* past U+10FFFF */
    i += len;
  }
  return true;
}

static int hex4(const char *p) {
  int v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

/* The string at r->p (its opening quote) into *s, *n: borrowed from the
 * text when it has no escape, else from r->scratch (valid until the next
 * string); escaped only when escapes_ok. False when it is not one this
 * reader takes. */
static bool read_string(reader_t *r, bool escapes_ok, const char **s, size_t *n) {
  const char *start = ++r->p;
  bool escaped = false;
  unsigned char seen = 0; /* every byte or'ed: ASCII text needs no UTF-8 check */
  while (r->p < r->end && *r->p != '"') {
    unsigned char c = (unsigned char)*r->p;
    seen |= c;
    if (c < 0x20) return false;
    if (c == '\\') {
      escaped = true;
      if (++r->p >= r->end) return false;
    }
    r->p++;
  }
  if (r->p >= r->end) return false;
  size_t raw = (size_t)(r->p - start);
  r->p++; /* the closing quote */
  if (!escaped) {
    *s = start;
    *n = raw;
    return seen < 0x80 || utf8_ok((const unsigned char *)start, raw);
  }
  if (!escapes_ok) return false;
  if (raw + 1 > r->cap) {
    r->cap = raw + 64;
    free(r->scratch);
    r->scratch = cqrs_xmalloc(r->cap);
  }
  char *o = r->scratch;
  for (const char *q = start, *e = start + raw; q < e;) {
    if (*q != '\\') {
      *o++ = *q++;
      continue;
    }
    q++;
    switch (*q++) {
    case '"': *o++ = '"'; break;
    case '\\': *o++ = '\\'; break;
    case '/': *o++ = '/'; break;
    case 'b': *o++ = '\b'; break;
    case 'f': *o++ = '\f'; break;
    case 'n': *o++ = '\n'; break;
    case 'r': *o++ = '\r'; break;
    case 't': *o++ = '\t'; break;
    case 'u': {
      if (e - q < 4) return false;
      long cp = hex4(q);
      q += 4;
      if (cp <= 0 || (cp >= 0xdc00 && cp <= 0xdfff)) return false; /* \u0000, a lone low surrogate */
      if (cp >= 0xd800 && cp <= 0xdbff) { /* a pair, or libbson's business */
        if (e - q < 6 || q[0] != '\\' || q[1] != 'u') return false;
        int lo = hex4(q + 2);
        if (lo < 0xdc00 || lo > 0xdfff) return false;
        q += 6;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
      }
      /* the UTF-8 is never longer than the escape it replaces */
      if (cp < 0x80) {
        *o++ = (char)cp;
      } else if (cp < 0x800) {
        *o++ = (char)(0xc0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3f));
      } else if (cp < 0x10000) {
        *o++ = (char)(0xe0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
      } else {
        *o++ = (char)(0xf0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
      }
      break;
    }
    default:
      return false;
    }
  }
  *s = r->scratch;
  *n = (size_t)(o - r->scratch);
  return utf8_ok((const unsigned char *)*s, *n);
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* The number at r->p, appended under key as libbson would: int32 when an
 * integer fits, else int64; double with a fraction or an exponent. */
static bool read_number(reader_t *r, bson_t *doc, const char *key, int klen) {
  const char *start = r->p;
  bool neg = *r->p == '-';
  if (neg) r->p++;
  if (r->p >= r->end || !is_digit(*r->p)) return false;
  if (*r->p == '0') {
    r->p++;
    if (r->p < r->end && is_digit(*r->p)) return false; /* a leading zero */
  } else {
    while (r->p < r->end && is_digit(*r->p)) r->p++;
  }
  bool integer = true;
  if (r->p < r->end && *r->p == '.') {
    integer = false;
    r->p++;
    if (r->p >= r->end || !is_digit(*r->p)) return false;
    while (r->p < r->end && is_digit(*r->p)) r->p++;
  }
  if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
    integer = false;
    r->p++;
    if (r->p < r->end && (*r->p == '+' || *r->p == '-')) r->p++;
    if (r->p >= r->end || !is_digit(*r->p)) return false;
    while (r->p < r->end && is_digit(*r->p)) r->p++;
  }
  if (integer) {
    uint64_t v = 0;
    for (const char *d = start + neg; d < r->p; d++) {
      unsigned digit = (unsigned)(*d - '0');
      if (v > (UINT64_MAX - digit) / 10) return false;
      v = v * 10 + digit;
    }
    if (neg && v == 0) return false; /* "-0": libbson's business */
    if (!neg && v > INT64_MAX) return false;
    if (neg && v > (uint64_t)INT64_MAX + 1) return false;
    if (v <= INT32_MAX || (neg && v <= (uint64_t)INT32_MAX + 1))
      return bson_append_int32(doc, key, klen, neg ? (int32_t)(0 - v) : (int32_t)v);
    return bson_append_int64(doc, key, klen, neg ? (int64_t)(0 - v) : (int64_t)v);
  }
  char lit[64];
  size_t n = (size_t)(r->p - start);
  if (n >= sizeof lit) return false;
  memcpy(lit, start, n);
  lit[n] = '\0';
  errno = 0;
  char *stop;
  double d = strtod(lit, &stop);
  if (errno || stop != lit + n || !isfinite(d)) return false;
  return bson_append_double(doc, key, klen, d);
}

static bool read_value(reader_t *r, bson_t *doc, const char *key, int klen);

/* The object at r->p (its '{') into doc. */
static bool read_object(reader_t *r, bson_t *doc) {
  const char *keys[MAX_KEYS];
  size_t lens[MAX_KEYS], nkeys = 0;
  r->p++;
  skip_ws(r);
  if (r->p < r->end && *r->p == '}') {
    r->p++;
    return true;
  }
  for (;;) {
    skip_ws(r);
    const char *k;
    size_t kn;
    /* an escaped key would live in scratch, which its value may reuse */
    if (r->p >= r->end || *r->p != '"' || !read_string(r, false, &k, &kn)) return false;
    if ((kn > 0 && k[0] == '$') || nkeys == MAX_KEYS) return false; /* extended JSON; many keys */
    for (size_t i = 0; i < nkeys; i++)
      if (lens[i] == kn && memcmp(keys[i], k, kn) == 0) return false; /* libbson's path names it */
    keys[nkeys] = k;
    lens[nkeys++] = kn;
    skip_ws(r);
    if (r->p >= r->end || *r->p != ':') return false;
    r->p++;
    skip_ws(r);
    if (!read_value(r, doc, k, (int)kn)) return false;
    skip_ws(r);
    if (r->p >= r->end) return false;
    if (*r->p == '}') {
      r->p++;
      return true;
    }
    if (*r->p++ != ',') return false;
  }
}

/* The array at r->p (its '[') into doc. */
static bool read_array(reader_t *r, bson_t *doc) {
  r->p++;
  skip_ws(r);
  if (r->p < r->end && *r->p == ']') {
    r->p++;
    return true;
  }
  for (uint32_t i = 0;; i++) {
    char buf[16];
    const char *key;
    size_t kn = bson_uint32_to_string(i, &key, buf, sizeof buf);
    skip_ws(r);
    if (!read_value(r, doc, key, (int)kn)) return false;
    skip_ws(r);
    if (r->p >= r->end) return false;
    if (*r->p == ']') {
      r->p++;
      return true;
    }
    if (*r->p++ != ',') return false;
  }
}

static bool literal(reader_t *r, const char *word, size_t n) {
  if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0) return false;
  r->p += n;
  return true;
}

static bool read_value(reader_t *r, bson_t *doc, const char *key, int klen) {
  if (r->p >= r->end) return false;
  switch (*r->p) {
  case '{':
  case '[': {
    if (++r->depth > MAX_DEPTH) return false;
    bson_t child;
    bool object = *r->p == '{';
    if (!(object ? bson_append_document_begin(doc, key, klen, &child) : bson_append_array_begin(doc, key, klen, &child)))
      return false;
    bool ok = object ? read_object(r, &child) : read_array(r, &child);
    /* ended either way: the parent stays consistent for bson_destroy */
    ok = (object ? bson_append_document_end(doc, &child) : bson_append_array_end(doc, &child)) && ok;
    r->depth--;
    return ok;
  }
  case '"': {
    const char *s;
    size_t n;
    return read_string(r, true, &s, &n) && bson_append_utf8(doc, key, klen, s, (int)n);
  }
  case 't':
    return literal(r, "true", 4) && bson_append_bool(doc, key, klen, true);
  case 'f':
    return literal(r, "false", 5) && bson_append_bool(doc, key, klen, false);
  case 'n':
    return literal(r, "null", 4) && bson_append_null(doc, key, klen);
  default:
    return read_number(r, doc, key, klen);
  }
}

bson_t *cqrs_json_fast_parse(const char *buf, size_t len) {
  if (len > INT32_MAX) return NULL;
  reader_t r = {.p = buf, .end = buf + len};
  skip_ws(&r);
  if (r.p >= r.end || *r.p != '{') return NULL;
  /* a document is rarely longer than its JSON: one allocation, usually */
  bson_t *doc = bson_sized_new(len);
  bool ok = read_object(&r, doc);
  skip_ws(&r);
  free(r.scratch);
  if (ok && r.p == r.end) return doc;
  bson_destroy(doc);
  return NULL;
}
