/* cqrsctl: the HTTP shell around the pure part (cqrsctl.h). Parses the
 * command line, sends one request with libcurl (or polls one for
 * `replay status --watch`), prints the answer and exits with the code the
 * status means. The credential goes only into the Authorization header. */
#include "cqrsctl.h"

#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  int status; /* 0: no answer */
  bson_string_t *body;
  char error[CURL_ERROR_SIZE];
} answer_t;

static size_t collect_cb(char *data, size_t size, size_t n, void *arg) {
  bson_string_t *body = arg;
  char *chunk = bson_strndup(data, size * n);
  bson_string_append(body, chunk);
  bson_free(chunk);
  return size * n;
}

/* Sends req; a is filled (a->body always set: free with bson_string_free). */
static void send_request(CURL *curl, const ctl_request_t *req, answer_t *a) {
  memset(a, 0, sizeof *a);
  a->body = bson_string_new(NULL);
  size_t base = strlen(req->url);
  while (base && req->url[base - 1] == '/') base--;
  char *url = bson_strdup_printf("%.*s%s", (int)base, req->url, req->path);
  struct curl_slist *headers = curl_slist_append(NULL, "Accept: application/json");
  char *auth = NULL;
  if (req->token) {
    auth = bson_strdup_printf("Authorization: Bearer %s", req->token);
    headers = curl_slist_append(headers, auth);
  }
  if (req->body) headers = curl_slist_append(headers, "Content-Type: application/json");
  curl_easy_reset(curl);
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
  if (req->body) curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body);
  else if (strcmp(req->method, "POST") == 0) curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect_cb);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, a->body);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, a->error);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 60000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "cqrsctl");
  if (curl_easy_perform(curl) == CURLE_OK) {
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    a->status = (int)status;
  }
  curl_slist_free_all(headers);
  if (auth) {
    memset(auth, 0, strlen(auth));
    bson_free(auth);
  }
  bson_free(url);
}

/* Prints a's answer the way req asks (the answer on stdout, an error line on
 * stderr); returns the exit code. */
static int print_answer(const ctl_request_t *req, const answer_t *a) {
  int rc = ctl_exit_for_status(a->status);
  bson_string_t *out = bson_string_new(NULL);
  if (req->json && a->status) {
    fwrite(a->body->str, 1, a->body->len, stdout);
    if (a->body->len && a->body->str[a->body->len - 1] != '\n') fputc('\n', stdout);
  } else if (rc == CTL_EXIT_OK) {
    rc = ctl_render(req, a->body->str, a->body->len, out);
    fputs(out->str, stdout);
  }
  if (ctl_exit_for_status(a->status) != CTL_EXIT_OK) {
    bson_string_truncate(out, 0);
    ctl_render_error(req, a->status, a->body->str, a->body->len, out);
    fputs(out->str, stderr);
    if (a->status == 0 && a->error[0]) fprintf(stderr, "cqrsctl: %s\n", a->error);
  }
  bson_string_free(out, true);
  return rc;
}

static volatile sig_atomic_t stop;
static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static int terminal_width(void) {
  struct winsize ws;
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

/* replay status --watch: polls until the replay ends (or SIGINT). */
static int watch(CURL *curl, const ctl_request_t *req) {
  bool tty = isatty(STDOUT_FILENO);
  bson_string_t *line = bson_string_new(NULL), *last = bson_string_new(NULL);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  int rc = CTL_EXIT_OK;
  while (!stop) {
    answer_t a;
    send_request(curl, req, &a);
    ctl_progress_t p;
    if (ctl_exit_for_status(a.status) != CTL_EXIT_OK || !ctl_progress_read(a.body->str, a.body->len, &p)) {
      if (tty) fputc('\n', stdout);
      rc = print_answer(req, &a);
      if (rc == CTL_EXIT_OK) rc = CTL_EXIT_UNAVAILABLE; /* 2xx but not a replay */
      bson_string_free(a.body, true);
      break;
    }
    bson_string_truncate(line, 0);
    if (req->json) {
      bson_string_append(line, a.body->str);
    } else {
      ctl_progress_line(&p, tty, tty ? terminal_width() - 1 : 0, line);
    }
    if (tty && !req->json) {
      printf("\r%s\033[K", line->str); /* and clear what a longer line left */
      fflush(stdout);
    } else if (strcmp(line->str, last->str) != 0) {
      printf("%s\n", line->str);
      fflush(stdout);
      bson_string_truncate(last, 0);
      bson_string_append(last, line->str);
    }
    bson_string_free(a.body, true);
    if (p.finished) {
      if (tty && !req->json) fputc('\n', stdout);
      rc = p.exit_code;
      break;
    }
    struct timespec ts = {req->interval_ms / 1000, (long)(req->interval_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !stop) {
    }
  }
  if (stop && tty) fputc('\n', stdout);
  bson_string_free(line, true);
  bson_string_free(last, true);
  return rc;
}

/* The text of path ("-": stdin) into req's body; false with a message. */
static bool read_file(ctl_request_t *req) {
  FILE *f = strcmp(req->file, "-") == 0 ? stdin : fopen(req->file, "rb");
  if (!f) {
    fprintf(stderr, "cqrsctl: cannot read %s: %s\n", req->file, strerror(errno));
    return false;
  }
  bson_string_t *text = bson_string_new(NULL);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
    char *chunk = bson_strndup(buf, n);
    bson_string_append(text, chunk);
    bson_free(chunk);
  }
  if (f != stdin) fclose(f);
  ctl_request_set_file_text(req, text->str, text->len);
  bson_string_free(text, true);
  return true;
}

int main(int argc, char **argv) {
  ctl_request_t req;
  char err[256];
  if (!ctl_parse(argc, argv, getenv(CTL_URL_ENV), getenv(CTL_TOKEN_ENV), &req, err, sizeof err)) {
    fprintf(stderr, "cqrsctl: %s\n", err);
    return CTL_EXIT_USAGE;
  }
  if (req.help) {
    bson_string_t *out = bson_string_new(NULL);
    ctl_help(req.verb, out);
    fputs(out->str, stdout);
    bson_string_free(out, true);
    ctl_request_cleanup(&req);
    return CTL_EXIT_OK;
  }
  if (req.file && !read_file(&req)) {
    ctl_request_cleanup(&req);
    return CTL_EXIT_USAGE;
  }
  int rc = CTL_EXIT_UNAVAILABLE;
  CURL *curl = NULL;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || !(curl = curl_easy_init())) {
    fprintf(stderr, "cqrsctl: libcurl does not start\n");
    goto done;
  }
  if (req.watch) {
    rc = watch(curl, &req);
  } else {
    answer_t a;
    send_request(curl, &req, &a);
    rc = print_answer(&req, &a);
    bson_string_free(a.body, true);
  }
done:
  curl_easy_cleanup(curl);
  curl_global_cleanup();
  ctl_request_cleanup(&req);
  return rc;
}
