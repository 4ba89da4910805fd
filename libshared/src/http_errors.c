/* evhttp's own HTML error pages, rewritten to JSON on their way out
 * (http_errors.h). */
#include "http_errors.h"

#include <event2/buffer.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How libevent 2.1's evhttp_send_error lays out its page (http.c ERR_FORMAT). */
#define PAGE_START "\r\n\r\n<HTML><HEAD>\n<TITLE>"
#define PAGE_END "</BODY></HTML>\n"
#define PAGE_MAX 2048 /* its pages are a few hundred bytes */

/* The JSON message for a status evhttp answers by itself. evhttp 2.1 says 400
 * both for a line it cannot parse and for headers past its bound. */
static const char *message_for(int status) {
  switch (status) {
  case 400: return "the request head cannot be parsed, or is larger than 56 KB";
  case 413: return "the request is larger than this server accepts";
  default: return NULL;
  }
}

/* Copies the last n bytes of out (len in all) into dst. evbuffer_peek reads
 * a buffer whose start is frozen too (see output_cb). */
static bool copy_tail(struct evbuffer *out, size_t len, char *dst, size_t n) {
  struct evbuffer_ptr at;
  struct evbuffer_iovec v[8];
  if (evbuffer_ptr_set(out, &at, len - n, EVBUFFER_PTR_SET) != 0) return false;
  int k = evbuffer_peek(out, (ev_ssize_t)n, &at, v, 8);
  size_t got = 0;
  for (int i = 0; i < k && i < 8 && got < n; i++) {
    size_t take = v[i].iov_len < n - got ? v[i].iov_len : n - got;
    memcpy(dst + got, v[i].iov_base, take);
    got += take;
  }
  return got == n;
}

/* Replaces the bytes of out from offset on (a libevent page) by the same
 * status with a JSON body; what comes before (an earlier answer not yet sent)
 * stays. A socket bufferevent keeps the start of its output frozen between
 * writes (libevent 2.1 bufferevent_sock.c), which refuses drains from the
 * front; it is thawed around the rewrite as evhttp itself does for its own
 * drain. */
static void rewrite(struct evbuffer *out, size_t offset, int status, const char *reason) {
  const char *msg = message_for(status);
  char body[256];
  snprintf(body, sizeof body, "{\"error\":\"%s\"}", msg ? msg : reason);
  char probe;
  struct evbuffer_ptr at;
  evbuffer_ptr_set(out, &at, 0, EVBUFFER_PTR_SET);
  bool frozen = evbuffer_copyout_from(out, &at, &probe, 1) != 1;
  if (frozen) evbuffer_unfreeze(out, 1);
  struct evbuffer *before = evbuffer_new();
  if (before) {
    evbuffer_remove_buffer(out, before, offset);
    evbuffer_drain(out, evbuffer_get_length(out));
    evbuffer_add_buffer(out, before);
    evbuffer_free(before);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                        "Connection: close\r\n\r\n%s",
                        status, reason, strlen(body), body);
  } /* else out of memory: the page goes out as it is */
  if (frozen) evbuffer_freeze(out, 1);
}

/* Runs on every change to a connection's output. evhttp writes an answer into
 * it in a few steps, its body last, so a buffer that now ends with a libevent
 * page holds the whole page at its end. Most calls end at the first check. */
static void output_cb(struct evbuffer *out, const struct evbuffer_cb_info *info, void *arg) {
  (void)arg;
  size_t len = evbuffer_get_length(out);
  if (info->n_added == 0 || len < sizeof PAGE_START + sizeof PAGE_END) return;
  char end[sizeof PAGE_END];
  if (!copy_tail(out, len, end, sizeof PAGE_END - 1) || memcmp(end, PAGE_END, sizeof PAGE_END - 1) != 0) return;
  char tail[PAGE_MAX + 1];
  size_t n = len < PAGE_MAX ? len : PAGE_MAX;
  if (!copy_tail(out, len, tail, n)) return;
  tail[n] = '\0';
  const char *page = memmem(tail, n, PAGE_START, sizeof PAGE_START - 1);
  if (!page) return;
  /* Its status line: the last "HTTP/1." before the page (its headers hold none). */
  const char *status_line = NULL;
  for (const char *p = tail; (p = memmem(p, (size_t)(page - p), "HTTP/1.", 7)) != NULL; p++) status_line = p;
  if (!status_line) return;
  int status = 0;
  char reason[64] = "";
  if (sscanf(status_line, "HTTP/1.%*d %3d %63[^\r\n]", &status, reason) != 2 || status < 400 || status > 599) return;
  for (char *c = reason; *c; c++)
    if (*c == '"' || *c == '\\') *c = ' '; /* its phrases have none; the JSON stays valid regardless */
  rewrite(out, len - n + (size_t)(status_line - tail), status, reason);
}

struct bufferevent *http_errors_bev_cb(struct event_base *base, void *arg) {
  (void)arg;
  struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
  if (!bev) return NULL;
  if (!evbuffer_add_cb(bufferevent_get_output(bev), output_cb, NULL)) {
    bufferevent_free(bev);
    return NULL;
  }
  return bev;
}
