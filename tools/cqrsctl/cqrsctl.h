/* cqrsctl's pure part: the command line parsed into a request description
 * (method, path, body) through a const table of verbs, and answers rendered
 * into text (tables, a dry run's numbers, a replay's progress bar). No I/O:
 * main.c is the HTTP shell around it, and tests/unit/test_cqrsctl.c drives it
 * without a server. */
#ifndef CQRSCTL_H
#define CQRSCTL_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit codes (docs/cqrsctl.md, `cqrsctl --help`). */
enum {
  CTL_EXIT_OK = 0,          /* the server did it (2xx) */
  CTL_EXIT_REFUSED = 1,     /* the server said no (4xx): bad input, unknown id, conflict, no credential */
  CTL_EXIT_USAGE = 2,       /* the command line is wrong; nothing was sent */
  CTL_EXIT_UNAVAILABLE = 3, /* admin-svc cannot be reached, or answered 5xx */
  CTL_EXIT_REPLAY_ENDED = 4 /* replay status --watch: the replay ended failed or cancelled */
};

#define CTL_DEFAULT_URL "http://127.0.0.1:8083"
#define CTL_URL_ENV "CQRS_ADMIN_URL"
#define CTL_TOKEN_ENV "CQRS_TOKEN"

typedef struct ctl_verb ctl_verb_t;

/* One request, as parsed. Strings marked borrowed point into argv or the
 * environment; the others are owned and freed by ctl_request_cleanup. */
typedef struct {
  const ctl_verb_t *verb; /* NULL: general help */
  const char *method;     /* static: "GET", "POST" or "DELETE" */
  char *path;             /* owned: path and query, percent-encoded */
  char *body;             /* owned: JSON, or NULL */
  const char *url;        /* borrowed: base URL, without a trailing path */
  const char *token;      /* borrowed: the credential, or NULL; never printed */
  const char *file;       /* borrowed: a file whose text goes into the body (schemas check) */
  bool json;              /* --json: the raw answer on stdout */
  bool help;              /* --help: print help (of verb, or general) and send nothing */
  bool watch;             /* replay status --watch */
  int interval_ms;        /* --interval for --watch */
} ctl_request_t;

/* Parses argv (argv[0] is the program) into req. env_url and env_token are
 * the values of CQRS_ADMIN_URL and CQRS_TOKEN (NULL when unset); flags win.
 * False with a one-line message in err on a usage error (exit 2); req is then
 * cleaned up. Never fails for lack of memory (aborts, as libbson does). */
bool ctl_parse(int argc, char *const *argv, const char *env_url, const char *env_token, ctl_request_t *req,
               char *err, size_t err_size);

/* Frees what req owns; safe on a zeroed or cleaned-up req. */
void ctl_request_cleanup(ctl_request_t *req);

/* Sets req's body for verbs that take a file (schemas check) from its text
 * (len bytes, need not be NUL-terminated). */
void ctl_request_set_file_text(ctl_request_t *req, const char *text, size_t len);

/* Appends the help of verb (NULL: the general help with every verb) to out. */
void ctl_help(const ctl_verb_t *verb, bson_string_t *out);

/* The exit code for an HTTP status (0: could not connect). */
int ctl_exit_for_status(int status);

/* Appends the text rendering of a 2xx answer (body, len bytes) to out,
 * according to req's verb, and returns the exit code: 0, or CTL_EXIT_REFUSED
 * for an answer that says no (schemas check: incompatible). An answer that is
 * not JSON is appended as it is. */
int ctl_render(const ctl_request_t *req, const char *body, size_t len, bson_string_t *out);

/* Appends a one-line message for a non-2xx answer: the server's "error"
 * (or the schema registry's "message"), and what it means when a route does
 * not exist on this admin-svc. */
void ctl_render_error(const ctl_request_t *req, int status, const char *body, size_t len, bson_string_t *out);

/* What a replay object (JSON) says for --watch. */
typedef struct {
  char state[16];
  int64_t applied, total;
  double rate;        /* events/s */
  double eta_seconds; /* < 0: unknown */
  bool finished;      /* completed, failed or cancelled */
  int exit_code;      /* when finished: 0 completed, CTL_EXIT_REPLAY_ENDED otherwise */
} ctl_progress_t;

/* Reads a replay object. False when body is not one. */
bool ctl_progress_read(const char *body, size_t len, ctl_progress_t *p);

/* Appends one progress line for p: with bar, "[#####.....]  42% 420/1000
 * 350 ev/s ETA 0:02 running" in width columns (at least 40); without, the
 * plain line "running 420/1000 42% 350 ev/s eta 2s" for logs and pipes. */
void ctl_progress_line(const ctl_progress_t *p, bool bar, int width, bson_string_t *out);

#endif
