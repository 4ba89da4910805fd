/* cqrsctl's output: answers as text (a table for lists, "name: value" lines
 * for one object, a dry run's numbers, a replay's progress), errors as one
 * line, the help, and the exit code for a status. Pure. */
#include "verbs.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int ctl_exit_for_status(int status) {
  if (status >= 200 && status < 300) return CTL_EXIT_OK;
  if (status >= 400 && status < 500) return CTL_EXIT_REFUSED;
  return CTL_EXIT_UNAVAILABLE; /* 0 (no connection), 5xx, anything odd */
}

/* Appends the value at it as a cell: strings as they are, numbers, "-" for
 * null, arrays of strings joined by ",", other structures as JSON. */
static void append_value(bson_string_t *out, const bson_iter_t *it) {
  switch (bson_iter_type(it)) {
  case BSON_TYPE_UTF8:
    bson_string_append(out, bson_iter_utf8(it, NULL));
    break;
  case BSON_TYPE_INT32:
  case BSON_TYPE_INT64:
    bson_string_append_printf(out, "%" PRId64, bson_iter_as_int64(it));
    break;
  case BSON_TYPE_DOUBLE: {
    double d = bson_iter_double(it);
    if (d == floor(d) && fabs(d) < 1e15)
      bson_string_append_printf(out, "%.0f", d);
    else
      bson_string_append_printf(out, "%.2f", d);
    break;
  }
  case BSON_TYPE_BOOL:
    bson_string_append(out, bson_iter_bool(it) ? "true" : "false");
    break;
  case BSON_TYPE_NULL:
  case BSON_TYPE_UNDEFINED:
    bson_string_append(out, "-");
    break;
  case BSON_TYPE_ARRAY:
  case BSON_TYPE_DOCUMENT: {
    bson_t sub;
    uint32_t len;
    const uint8_t *data;
    bool array = BSON_ITER_HOLDS_ARRAY(it);
    if (array)
      bson_iter_array(it, &len, &data);
    else
      bson_iter_document(it, &len, &data);
    if (!bson_init_static(&sub, data, len)) break;
    bson_iter_t e;
    bool strings = array && bson_iter_init(&e, &sub);
    while (strings && bson_iter_next(&e)) strings = BSON_ITER_HOLDS_UTF8(&e);
    if (strings) {
      bool first = true;
      bson_iter_init(&e, &sub);
      while (bson_iter_next(&e)) {
        if (!first) bson_string_append_c(out, ',');
        first = false;
        bson_string_append(out, bson_iter_utf8(&e, NULL));
      }
    } else {
      char *json = array ? bson_array_as_json(&sub, NULL) : bson_as_relaxed_extended_json(&sub, NULL);
      if (json) bson_string_append(out, json);
      bson_free(json);
    }
    break;
  }
  default:
    bson_string_append(out, "?");
  }
}

/* The cell of member key of doc ("-" when absent). */
static char *cell(const bson_t *doc, const char *key) {
  bson_string_t *s = bson_string_new(NULL);
  bson_iter_t it;
  if (bson_iter_init_find(&it, doc, key))
    append_value(s, &it);
  else
    bson_string_append(s, "-");
  /* One line per row: newlines in errors become spaces. */
  for (char *p = s->str; *p; p++)
    if (*p == '\n' || *p == '\r' || *p == '\t') *p = ' ';
  return bson_string_free(s, false);
}

static int64_t get_int(const bson_t *doc, const char *key, int64_t dflt) {
  bson_iter_t it;
  if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_NUMBER(&it)) return bson_iter_as_int64(&it);
  return dflt;
}

static double get_double(const bson_t *doc, const char *key, double dflt) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, doc, key)) return dflt;
  if (BSON_ITER_HOLDS_DOUBLE(&it)) return bson_iter_double(&it);
  if (BSON_ITER_HOLDS_NUMBER(&it)) return (double)bson_iter_as_int64(&it);
  return dflt;
}

static const char *get_str(const bson_t *doc, const char *key, const char *dflt) {
  bson_iter_t it;
  if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it)) return bson_iter_utf8(&it, NULL);
  return dflt;
}

/* Appends the array member key of doc as a table with columns cols (ending
 * in {NULL, NULL}): a header line, then one line per object, each cell padded
 * to its column's width (the last unpadded). Returns the number of objects;
 * nothing is appended when there are none. */
static size_t append_table(const bson_t *doc, const char *key, const ctl_column_t *cols, bson_string_t *out) {
  bson_iter_t it, items;
  bson_t arr;
  uint32_t len;
  const uint8_t *data;
  if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_ARRAY(&it)) return 0;
  bson_iter_array(&it, &len, &data);
  if (!bson_init_static(&arr, data, len)) return 0;
  size_t ncols = 0;
  while (cols[ncols].header) ncols++;
  size_t r = 1;
  char ***rows = bson_malloc0((bson_count_keys(&arr) + 1) * sizeof *rows);
  rows[0] = bson_malloc0(ncols * sizeof **rows);
  for (size_t c = 0; c < ncols; c++) rows[0][c] = bson_strdup(cols[c].header);
  bson_iter_init(&items, &arr);
  while (bson_iter_next(&items)) {
    bson_t item;
    if (!BSON_ITER_HOLDS_DOCUMENT(&items)) continue;
    bson_iter_document(&items, &len, &data);
    if (!bson_init_static(&item, data, len)) continue;
    rows[r] = bson_malloc0(ncols * sizeof **rows);
    for (size_t c = 0; c < ncols; c++) rows[r][c] = cell(&item, cols[c].key);
    r++;
  }
  size_t width[16] = {0};
  for (size_t i = 0; i < r; i++)
    for (size_t c = 0; c < ncols && c < 16; c++)
      if (strlen(rows[i][c]) > width[c]) width[c] = strlen(rows[i][c]);
  for (size_t i = 0; i < r && r > 1; i++) {
    for (size_t c = 0; c < ncols; c++) {
      if (c + 1 < ncols && c < 16)
        bson_string_append_printf(out, "%-*s  ", (int)width[c], rows[i][c]);
      else
        bson_string_append(out, rows[i][c]);
    }
    bson_string_append_c(out, '\n');
  }
  for (size_t i = 0; i < r; i++) {
    for (size_t c = 0; c < ncols; c++) bson_free(rows[i][c]);
    bson_free(rows[i]);
  }
  bson_free(rows);
  return r - 1;
}

int ctl_render_list(const ctl_verb_t *verb, const bson_t *doc, bson_string_t *out) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, doc, "items") || !BSON_ITER_HOLDS_ARRAY(&it)) return ctl_render_doc(verb, doc, out);
  if (!append_table(doc, "items", verb->columns, out)) bson_string_append(out, "(none)\n");
  const char *next = get_str(doc, "nextCursor", NULL);
  if (next) bson_string_append_printf(out, "more: add --cursor %s\n", next);
  return CTL_EXIT_OK;
}

int ctl_render_doc(const ctl_verb_t *verb, const bson_t *doc, bson_string_t *out) {
  (void)verb;
  bson_iter_t it;
  if (!bson_iter_init(&it, doc)) return CTL_EXIT_OK;
  while (bson_iter_next(&it)) {
    bson_string_append_printf(out, "%s: ", bson_iter_key(&it));
    append_value(out, &it);
    bson_string_append_c(out, '\n');
  }
  return CTL_EXIT_OK;
}

int ctl_render_dry_run(const ctl_verb_t *verb, const bson_t *doc, bson_string_t *out) {
  (void)verb;
  const char *id = get_str(doc, "replayId", NULL);
  if (id) { /* --apply: 202 {"replayId"} */
    bson_string_append_printf(out, "replay started: %s\nfollow it with: cqrsctl replay status %s --watch\n", id, id);
    return CTL_EXIT_OK;
  }
  bson_iter_t it;
  bool tenant = bson_iter_init_find(&it, doc, "tenant") && BSON_ITER_HOLDS_UTF8(&it);
  bson_string_append_printf(out, "dry run (nothing changed): replay of %s from %s, %s%s\n",
                            get_str(doc, "projection", "?"), get_str(doc, "from", "?"),
                            tenant ? "tenant " : "every tenant", tenant ? bson_iter_utf8(&it, NULL) : "");
  static const ctl_column_t partition_cols[] = {{"PARTITION", "partition"},
                                                {"FROM OFFSET", "fromOffset"},
                                                {"END OFFSET", "endOffset"},
                                                {"EVENTS", "events"},
                                                {NULL, NULL}};
  append_table(doc, "partitions", partition_cols, out);
  bson_string_append_printf(out, "events: %" PRId64 "\n", get_int(doc, "events", 0));
  int64_t aggregates = get_int(doc, "aggregates", -1);
  if (aggregates >= 0) bson_string_append_printf(out, "aggregates: %" PRId64 "\n", aggregates);
  bson_string_append_printf(out, "estimated time: %.1f s\n", get_double(doc, "estimatedSeconds", 0));
  bson_string_append(out, "to start it, run the same command with --apply\n");
  return CTL_EXIT_OK;
}

bool ctl_progress_read(const char *body, size_t len, ctl_progress_t *p) {
  memset(p, 0, sizeof *p);
  bson_t *doc = bson_new_from_json((const uint8_t *)body, (ssize_t)len, NULL);
  if (!doc) return false;
  const char *state = get_str(doc, "state", NULL);
  bool ok = state && get_str(doc, "replayId", NULL);
  if (ok) {
    bson_strncpy(p->state, state, sizeof p->state);
    p->applied = get_int(doc, "applied", 0);
    p->total = get_int(doc, "total", 0);
    p->rate = get_double(doc, "rate", 0);
    p->eta_seconds = get_double(doc, "etaSeconds", -1);
    bool completed = strcmp(state, "completed") == 0;
    p->finished = completed || strcmp(state, "failed") == 0 || strcmp(state, "cancelled") == 0;
    p->exit_code = completed ? CTL_EXIT_OK : CTL_EXIT_REPLAY_ENDED;
  }
  bson_destroy(doc);
  return ok;
}

static int percent_of(const ctl_progress_t *p) {
  if (strcmp(p->state, "completed") == 0) return 100;
  if (p->total <= 0) return 0;
  int64_t pc = p->applied * 100 / p->total;
  return pc > 100 ? 100 : pc < 0 ? 0 : (int)pc;
}

static void append_duration(bson_string_t *out, double s) {
  long t = lround(s);
  if (t >= 3600)
    bson_string_append_printf(out, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else
    bson_string_append_printf(out, "%ld:%02ld", t / 60, t % 60);
}

void ctl_progress_line(const ctl_progress_t *p, bool bar, int width, bson_string_t *out) {
  int pc = percent_of(p);
  if (!bar) {
    bson_string_append_printf(out, "%s %" PRId64 "/%" PRId64 " %d%% %.0f ev/s eta ", p->state, p->applied, p->total,
                              pc, p->rate);
    if (p->eta_seconds >= 0)
      bson_string_append_printf(out, "%lds", lround(p->eta_seconds));
    else
      bson_string_append(out, "-");
    return;
  }
  bson_string_t *tail = bson_string_new(NULL);
  bson_string_append_printf(tail, " %3d%% %" PRId64 "/%" PRId64 " %.0f ev/s ETA ", pc, p->applied, p->total,
                            p->rate);
  if (p->eta_seconds >= 0 && !p->finished)
    append_duration(tail, p->eta_seconds);
  else
    bson_string_append(tail, "-");
  bson_string_append_printf(tail, " %s", p->state);
  if (width < 40) width = 40;
  int cells = width - 2 - (int)tail->len;
  if (cells < 10) cells = 10;
  int full = cells * pc / 100;
  bson_string_append_c(out, '[');
  for (int i = 0; i < cells; i++) bson_string_append_c(out, i < full ? '#' : '.');
  bson_string_append_c(out, ']');
  bson_string_append(out, tail->str);
  bson_string_free(tail, true);
}

int ctl_render_replay(const ctl_verb_t *verb, const bson_t *doc, bson_string_t *out) {
  ctl_render_doc(verb, doc, out);
  char *json = bson_as_relaxed_extended_json(doc, NULL);
  ctl_progress_t p;
  if (json && ctl_progress_read(json, strlen(json), &p)) {
    bson_string_append(out, "progress: ");
    ctl_progress_line(&p, false, 0, out);
    bson_string_append_c(out, '\n');
  }
  bson_free(json);
  return CTL_EXIT_OK;
}

int ctl_render_subjects(const ctl_verb_t *verb, const bson_t *doc, bson_string_t *out) {
  (void)verb;
  bson_iter_t it;
  size_t n = 0;
  if (bson_iter_init(&it, doc))
    while (bson_iter_next(&it)) {
      append_value(out, &it);
      bson_string_append_c(out, '\n');
      n++;
    }
  if (!n) bson_string_append(out, "(none)\n");
  return CTL_EXIT_OK;
}

int ctl_render_compat(const ctl_verb_t *verb, const bson_t *doc, bson_string_t *out) {
  bson_iter_t it;
  bool ok = bson_iter_init_find(&it, doc, "is_compatible") && BSON_ITER_HOLDS_BOOL(&it) && bson_iter_bool(&it);
  bson_string_append(out, ok ? "compatible\n" : "NOT compatible\n");
  if (bson_iter_init_find(&it, doc, "messages") && BSON_ITER_HOLDS_ARRAY(&it)) {
    uint32_t len;
    const uint8_t *data;
    bson_t arr;
    bson_iter_array(&it, &len, &data);
    bson_iter_t m;
    if (bson_init_static(&arr, data, len) && bson_iter_init(&m, &arr))
      while (bson_iter_next(&m)) {
        bson_string_append(out, "  ");
        append_value(out, &m);
        bson_string_append_c(out, '\n');
      }
  }
  (void)verb;
  return ok ? CTL_EXIT_OK : CTL_EXIT_REFUSED;
}

int ctl_render(const ctl_request_t *req, const char *body, size_t len, bson_string_t *out) {
  bson_t *doc = len ? bson_new_from_json((const uint8_t *)body, (ssize_t)len, NULL) : NULL;
  int rc = CTL_EXIT_OK;
  if (!doc || !req->verb) {
    if (len) {
      char *text = bson_strndup(body, len);
      bson_string_append(out, text);
      if (text[len - 1] != '\n') bson_string_append_c(out, '\n');
      bson_free(text);
    }
  } else {
    rc = req->verb->render(req->verb, doc, out);
  }
  if (doc) bson_destroy(doc);
  return rc;
}

void ctl_render_error(const ctl_request_t *req, int status, const char *body, size_t len, bson_string_t *out) {
  bson_t *doc = len ? bson_new_from_json((const uint8_t *)body, (ssize_t)len, NULL) : NULL;
  const char *msg = doc ? get_str(doc, "error", get_str(doc, "message", NULL)) : NULL;
  const char *what = req->verb ? req->verb->group : "request";
  if (status == 0) {
    bson_string_append_printf(out, "cqrsctl: cannot reach admin-svc at %s (set --url or %s)\n", req->url,
                              CTL_URL_ENV);
  } else if (status == 404 && msg && strcmp(msg, "no such route") == 0) {
    bson_string_append_printf(out, "cqrsctl: %s: not available on this admin-svc (404 no such route)\n", what);
  } else if (status == 401) {
    bson_string_append_printf(out, "cqrsctl: 401: %s (set --token or %s)\n", msg ? msg : "authentication required",
                              CTL_TOKEN_ENV);
  } else {
    bson_string_append_printf(out, "cqrsctl: %d: %s\n", status, msg ? msg : "(no message)");
  }
  if (doc) bson_destroy(doc);
}

void ctl_help(const ctl_verb_t *verb, bson_string_t *out) {
  if (verb) {
    bson_string_append_printf(out, "usage: cqrsctl %s %s%s%s [--json] [--url URL] [--token TOKEN]\n\n%s\n",
                              verb->group, verb->name, *verb->usage ? " " : "", verb->usage, verb->summary);
    if (verb->details) bson_string_append_printf(out, "\n%s", verb->details);
    bson_string_append_printf(out, "\nrequest: %s %s\n", verb->method, verb->path);
    bson_string_append(out, "\nexit codes: 0 done, 1 refused by the server (4xx), 2 usage, 3 admin-svc unreachable "
                            "or failing (5xx)\n");
    return;
  }
  bson_string_append(out, "usage: cqrsctl [--url URL] [--token TOKEN] [--json] <command> [<verb>] [args]\n\n"
                          "The command-line client of admin-svc, the control plane.\n\ncommands:\n");
  for (size_t i = 0; i < ctl_verbs_count; i++) {
    const ctl_verb_t *v = &ctl_verbs[i];
    char words[64];
    snprintf(words, sizeof words, "%s %s", v->group, v->name);
    bson_string_append_printf(out, "  %-20s %s\n", words, v->summary);
  }
  bson_string_append(out, "\n(a command alone, e.g. `cqrsctl projections`, lists)\n"
                          "\noptions (anywhere on the line):\n"
                          "  --url URL      admin-svc's base URL (default: $" CTL_URL_ENV ", else " CTL_DEFAULT_URL
                          ")\n"
                          "  --token TOKEN  credential sent as Bearer (default: $" CTL_TOKEN_ENV
                          "; none with AUTH=off); never printed\n"
                          "  --json         print the server's JSON answer as it is (for scripts)\n"
                          "  --help, -h     this help; after a verb, that verb's help\n"
                          "\nexit codes:\n"
                          "  0  done (the server answered 2xx)\n"
                          "  1  the server said no (4xx: bad input, unknown id, conflict, no or bad credential;\n"
                          "     also: schemas check found the schema incompatible)\n"
                          "  2  usage error (or --file cannot be read): nothing was sent\n"
                          "  3  admin-svc cannot be reached, or answered 5xx\n"
                          "  4  replay status --watch: the replay ended failed or cancelled\n");
}
