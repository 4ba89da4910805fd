/* The benchmark drivers' loopback HTTP client and /metrics reader (bench_http.h). */
#include "bench_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static bool conn_open(bh_conn_t *c) {
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  if (c->fd < 0) return false;
  struct timeval tv = {c->timeout_ms / 1000, (c->timeout_ms % 1000) * 1000};
  setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(c->fd, (struct sockaddr *)&a, sizeof a) == 0) return true;
  close(c->fd);
  c->fd = -1;
  return false;
}

void bh_close(bh_conn_t *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
}

/* One request on c (connecting when needed); the response read by its
 * Content-Length, or to the end when it has none. *nothing: the connection
 * failed, not timed out, before a byte of the answer (a kept-alive connection
 * the server closed meanwhile: worth one retry). */
static bool conn_once(bh_conn_t *c, const char *req, size_t n, bh_resp_t *r, bool *nothing) {
  *nothing = true;
  if (c->fd < 0 && !conn_open(c)) return false;
  if (send(c->fd, req, n, MSG_NOSIGNAL) != (ssize_t)n) return false;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  if (!buf) return false;
  char *hdr_end = NULL;
  long want = -1;
  bool close_after = false;
  for (;;) {
    if (hdr_end && want >= 0 && len >= (size_t)(hdr_end + 4 - buf) + (size_t)want) break;
    if (cap - len < 1024) {
      size_t off = hdr_end ? (size_t)(hdr_end - buf) : 0;
      char *grown = realloc(buf, cap *= 2);
      if (!grown) {
        free(buf);
        bh_close(c);
        return false;
      }
      buf = grown;
      if (hdr_end) hdr_end = buf + off;
    }
    ssize_t got = recv(c->fd, buf + len, cap - len - 1, 0);
    if (got <= 0) {
      if (hdr_end && want < 0 && got == 0) break; /* body to the end */
      if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) *nothing = false; /* timed out: no retry */
      free(buf);
      bh_close(c);
      return false;
    }
    *nothing = false;
    len += (size_t)got;
    buf[len] = 0;
    if (!hdr_end && (hdr_end = strstr(buf, "\r\n\r\n")) != NULL) {
      *hdr_end = 0;
      for (char *h = strstr(buf, "\r\n"); h; h = strstr(h + 2, "\r\n")) {
        if (strncasecmp(h + 2, "Content-Length:", 15) == 0) want = atol(h + 17);
        if (strncasecmp(h + 2, "X-Stale:", 8) == 0) r->stale = strncasecmp(h + 10, " true", 5) == 0;
        if (strncasecmp(h + 2, "Connection: close", 17) == 0) close_after = true;
      }
      *hdr_end = '\r';
    }
  }
  if (len < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || !hdr_end) {
    free(buf);
    bh_close(c);
    return false;
  }
  r->status = atoi(buf + 9);
  size_t body = (size_t)(hdr_end + 4 - buf);
  memmove(buf, buf + body, len - body);
  buf[len - body] = 0;
  r->body = buf;
  if (close_after || want < 0) bh_close(c);
  return true;
}

bool bh_request(bh_conn_t *c, const char *method, const char *path, const char *body, bh_resp_t *r) {
  memset(r, 0, sizeof *r);
  char req[4096];
  const char *extra = c->extra ? c->extra : "";
  int n;
  if (body) n = snprintf(req, sizeof req,
                         "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%sContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\n\r\n%s",
                         method, path, c->port, extra, strlen(body), body);
  else n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n", method, path, c->port, extra);
  if (n < 0 || (size_t)n >= sizeof req) return false;
  bool reused = c->fd >= 0, nothing;
  if (conn_once(c, req, (size_t)n, r, &nothing)) return true;
  bh_close(c);
  /* a kept-alive connection the server had closed: once more on a new one */
  return reused && nothing && conn_once(c, req, (size_t)n, r, &nothing);
}

bool bh_once(int port, const char *method, const char *path, const char *body, int timeout_ms, bh_resp_t *r) {
  bh_conn_t c = {.port = port, .fd = -1, .timeout_ms = timeout_ms};
  bool ok = bh_request(&c, method, path, body, r);
  bh_close(&c);
  return ok;
}

char *bh_metrics(int port) {
  bh_resp_t r;
  if (!bh_once(port, "GET", "/metrics", NULL, 2000, &r)) return NULL;
  if (r.status != 200) {
    free(r.body);
    return NULL;
  }
  return r.body;
}

double bh_metric_sum(const char *text, const char *name, const char *label) {
  double sum = 0;
  size_t nl = strlen(name);
  for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
    if (*l == '#' || strncmp(l, name, nl) != 0 || (l[nl] != '{' && l[nl] != ' ')) continue;
    const char *eol = strchr(l, '\n');
    size_t len = eol ? (size_t)(eol - l) : strlen(l);
    char line[512];
    snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), l);
    if (label && !strstr(line, label)) continue;
    const char *sp = strrchr(line, ' ');
    if (sp) sum += strtod(sp + 1, NULL);
  }
  return sum;
}

void bh_histogram_read(const char *text, const char *name, const char *label, bh_histogram_t *h) {
  char series[160];
  snprintf(series, sizeof series, "%s_bucket{", name);
  size_t ns = strlen(series);
  h->n = 0;
  for (const char *l = text; l && *l && h->n < BH_BUCKETS_MAX; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
    if (strncmp(l, series, ns) != 0) continue;
    const char *eol = strchr(l, '\n');
    char line[512];
    size_t len = eol ? (size_t)(eol - l) : strlen(l);
    snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), l);
    const char *le = strstr(line, "le=\""), *sp = strrchr(line, ' ');
    if ((label && !strstr(line, label)) || !le || !sp) continue;
    h->le[h->n] = strncmp(le + 4, "+Inf", 4) == 0 ? INFINITY : strtod(le + 4, NULL);
    h->count[h->n++] = strtod(sp + 1, NULL);
  }
}

double bh_histogram_quantile_ms(const bh_histogram_t *before, const bh_histogram_t *after, double q) {
  size_t n = after->n;
  if (n == 0 || (before->n && before->n != n)) return -1;
  double total = after->count[n - 1] - (before->n ? before->count[n - 1] : 0);
  if (total <= 0) return -1;
  double rank = q * total, below = 0, lower = 0;
  for (size_t i = 0; i < n; i++) {
    double cum = after->count[i] - (before->n ? before->count[i] : 0);
    if (cum >= rank) {
      if (isinf(after->le[i])) return lower * 1000.0; /* past the last bound: the bound */
      double in = cum - below;
      return (lower + (after->le[i] - lower) * (in > 0 ? (rank - below) / in : 1)) * 1000.0;
    }
    below = cum;
    lower = after->le[i];
  }
  return lower * 1000.0;
}
