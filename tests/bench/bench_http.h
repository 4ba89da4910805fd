/* A minimal keep-alive HTTP/1.1 client for loopback benchmark drivers
 * (read_bench, soak), and a reader of Prometheus /metrics text. Blocking,
 * one connection per bh_conn_t, one thread per connection. Not a library
 * for the services: no TLS, no chunked bodies, answers read by their
 * Content-Length (or to the end of the connection). */
#ifndef BENCH_HTTP_H
#define BENCH_HTTP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
  int status;
  char *body; /* NUL-terminated, free with free; may be NULL */
  bool stale; /* the answer said X-Stale: true */
} bh_resp_t;

typedef struct {
  int port;          /* on 127.0.0.1 */
  int fd;            /* -1: not connected (set it so before the first request) */
  int timeout_ms;    /* per receive */
  const char *extra; /* more header lines, each ending "\r\n" (e.g. an Authorization header); may be NULL; borrowed */
} bh_conn_t;

/* One request on c, connecting when needed; body (JSON) may be NULL. True
 * with *r filled when an answer came; false when none did (connection
 * refused or dropped, a timeout). A kept-alive connection the server had
 * closed is retried once on a new one. */
bool bh_request(bh_conn_t *c, const char *method, const char *path, const char *body, bh_resp_t *r);

/* Closes c's connection, if any. */
void bh_close(bh_conn_t *c);

/* One request on its own connection. */
bool bh_once(int port, const char *method, const char *path, const char *body, int timeout_ms, bh_resp_t *r);

/* GET /metrics of port: the text (free with free), or NULL when it did not
 * answer 200 within 2 s. */
char *bh_metrics(int port);

/* The sum of the samples of metric name in Prometheus text whose labels
 * contain label (NULL: all of them); 0 when there is none. */
double bh_metric_sum(const char *text, const char *name, const char *label);

/* A histogram's cumulative buckets as one /metrics text has them. */
#define BH_BUCKETS_MAX 32
typedef struct {
  size_t n;
  double le[BH_BUCKETS_MAX];    /* upper bounds in seconds, ascending; the last +Inf */
  double count[BH_BUCKETS_MAX]; /* cumulative */
} bh_histogram_t;

/* The buckets of histogram name (its "<name>_bucket" samples whose labels
 * contain label) in text; n is 0 when there are none. */
void bh_histogram_read(const char *text, const char *name, const char *label, bh_histogram_t *h);

/* The q-quantile (0..1) in ms of what was observed between before and after
 * (two reads of one histogram), interpolated within its bucket as
 * Prometheus's histogram_quantile does; -1 when nothing was observed. */
double bh_histogram_quantile_ms(const bh_histogram_t *before, const bh_histogram_t *after, double q);

#endif
