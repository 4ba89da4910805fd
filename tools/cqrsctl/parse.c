/* cqrsctl's command line: global options anywhere (--url, --token, --json,
 * --help), then "<group> [<verb>]" found in the verb table, then the verb's
 * positionals and options, into a request description. Pure. */
#include "verbs.h"

#include <stdio.h>
#include <string.h>

const char *ctl_args_opt(const ctl_args_t *a, const char *name) {
  for (size_t i = 0; i < a->nopt; i++)
    if (strcmp(a->opt_name[i], name) == 0) return a->opt_value[i];
  return NULL;
}

void ctl_request_cleanup(ctl_request_t *req) {
  bson_free(req->path);
  bson_free(req->body);
  memset(req, 0, sizeof *req);
}

/* How option name (without "--") is declared in spec: '\0' a flag, '=' a
 * value for the builder, '?' a value for the query string; -1 undeclared. */
static int opt_kind(const char *spec, const char *name) {
  size_t n = strlen(name);
  for (const char *p = spec; p && *p;) {
    p += strspn(p, " ");
    size_t len = strcspn(p, " ");
    if (len) {
      char last = p[len - 1];
      bool valued = last == '=' || last == '?';
      size_t base = valued ? len - 1 : len;
      if (base == n && strncmp(p, name, n) == 0) return valued ? last : '\0';
    }
    p += len;
  }
  return -1;
}

/* Appends s percent-encoded (everything but RFC 3986's unreserved set). */
static void append_escaped(bson_string_t *out, const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("-._~", *p))
      bson_string_append_c(out, (char)*p);
    else
      bson_string_append_printf(out, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
  }
}

/* The verb's path template with its positionals, then the query options. */
static char *make_path(const ctl_verb_t *v, const ctl_args_t *a) {
  bson_string_t *out = bson_string_new(NULL);
  for (const char *p = v->path; *p; p++) {
    if (p[0] == '{' && p[1] >= '0' && p[1] < '0' + CTL_MAX_POS && p[2] == '}') {
      size_t i = (size_t)(p[1] - '0');
      if (i < a->npos) append_escaped(out, a->pos[i]);
      p += 2;
    } else {
      bson_string_append_c(out, *p);
    }
  }
  bool query = strchr(v->path, '?') != NULL;
  for (size_t i = 0; i < a->nopt; i++) {
    if (opt_kind(v->options, a->opt_name[i]) != '?') continue;
    bson_string_append_c(out, query ? '&' : '?');
    query = true;
    append_escaped(out, a->opt_name[i]);
    bson_string_append_c(out, '=');
    append_escaped(out, a->opt_value[i]);
  }
  return bson_string_free(out, false);
}

static const ctl_verb_t *find_verb(const char *group, const char *name) {
  for (size_t i = 0; i < ctl_verbs_count; i++)
    if (strcmp(ctl_verbs[i].group, group) == 0 && strcmp(ctl_verbs[i].name, name) == 0) return &ctl_verbs[i];
  return NULL;
}

static bool group_known(const char *group) {
  for (size_t i = 0; i < ctl_verbs_count; i++)
    if (strcmp(ctl_verbs[i].group, group) == 0) return true;
  return false;
}

/* Global options take effect wherever they are; true when argv[*i] was one
 * (and *i moved past its value). */
static bool global_opt(int argc, char *const *argv, int *i, ctl_request_t *req, bool *bad, char *err, size_t n) {
  const char *w = argv[*i];
  if (strcmp(w, "--json") == 0) return req->json = true;
  if (strcmp(w, "--help") == 0 || strcmp(w, "-h") == 0) return req->help = true;
  static const char *const valued[] = {"--url", "--token"};
  for (size_t k = 0; k < 2; k++) {
    size_t len = strlen(valued[k]);
    if (strncmp(w, valued[k], len) != 0 || (w[len] != '\0' && w[len] != '=')) continue;
    const char *value = w[len] == '=' ? w + len + 1 : NULL;
    if (!value) {
      if (*i + 1 >= argc) {
        snprintf(err, n, "%s needs a value", valued[k]);
        *bad = true;
        return true;
      }
      value = argv[++*i];
    }
    if (k == 0)
      req->url = value;
    else
      req->token = value;
    return true;
  }
  return false;
}

bool ctl_parse(int argc, char *const *argv, const char *env_url, const char *env_token, ctl_request_t *req,
               char *err, size_t n) {
  memset(req, 0, sizeof *req);
  req->url = env_url && *env_url ? env_url : CTL_DEFAULT_URL;
  req->token = env_token && *env_token ? env_token : NULL;
  req->interval_ms = 1000;
  err[0] = '\0';
  const char *words[2 + CTL_MAX_POS + 2 * CTL_MAX_OPTS];
  int nwords = 0;
  bool bad = false;
  /* First pass: global options out, the rest in order. */
  for (int i = 1; i < argc && !bad; i++) {
    if (global_opt(argc, argv, &i, req, &bad, err, n)) continue;
    if (nwords == (int)(sizeof words / sizeof words[0])) {
      snprintf(err, n, "too many arguments");
      bad = true;
      break;
    }
    words[nwords++] = argv[i];
  }
  if (bad) goto fail;
  if (nwords == 0) {
    if (req->help) return true;
    snprintf(err, n, "no command given (cqrsctl --help lists them)");
    goto fail;
  }
  if (!group_known(words[0])) {
    snprintf(err, n, "unknown command \"%s\" (cqrsctl --help lists them)", words[0]);
    goto fail;
  }
  int at = 1;
  const ctl_verb_t *v = nwords > 1 ? find_verb(words[0], words[1]) : NULL;
  if (v) {
    at = 2;
  } else if (nwords == 1 || words[1][0] == '-') {
    v = find_verb(words[0], "list"); /* a group alone lists */
  }
  if (!v) {
    snprintf(err, n, "unknown verb \"%s %s\" (cqrsctl %s --help lists them)", words[0], nwords > 1 ? words[1] : "",
             words[0]);
    goto fail;
  }
  req->verb = v;
  if (req->help) return true;
  ctl_args_t a = {0};
  char names[CTL_MAX_OPTS][64]; /* the option names a points to */
  for (int i = at; i < nwords; i++) {
    const char *w = words[i];
    if (strncmp(w, "--", 2) != 0 || w[2] == '\0') {
      if (a.npos == v->max_pos) {
        snprintf(err, n, "%s %s: unexpected argument \"%s\"", v->group, v->name, w);
        goto fail;
      }
      a.pos[a.npos++] = w;
      continue;
    }
    const char *name = w + 2, *eq = strchr(name, '=');
    char key[64];
    size_t klen = eq ? (size_t)(eq - name) : strlen(name);
    if (klen >= sizeof key) klen = sizeof key - 1;
    memcpy(key, name, klen);
    key[klen] = '\0';
    int kind = opt_kind(v->options, key);
    if (kind < 0) {
      snprintf(err, n, "%s %s: unknown option --%s", v->group, v->name, key);
      goto fail;
    }
    if (a.nopt == CTL_MAX_OPTS) {
      snprintf(err, n, "too many options");
      goto fail;
    }
    const char *value = "";
    if (kind == 0) {
      if (eq) {
        snprintf(err, n, "%s %s: --%s takes no value", v->group, v->name, key);
        goto fail;
      }
    } else if (eq) {
      value = eq + 1;
    } else if (i + 1 < nwords) {
      value = words[++i];
    } else {
      snprintf(err, n, "%s %s: --%s needs a value", v->group, v->name, key);
      goto fail;
    }
    memcpy(names[a.nopt], key, klen + 1);
    a.opt_name[a.nopt] = names[a.nopt];
    a.opt_value[a.nopt++] = value;
  }
  if (a.npos < v->min_pos) {
    snprintf(err, n, "usage: cqrsctl %s %s %s", v->group, v->name, v->usage);
    goto fail;
  }
  req->method = v->method;
  req->path = make_path(v, &a);
  if (v->build && !v->build(req, &a, err, n)) goto fail;
  return true;
fail:
  ctl_request_cleanup(req);
  return false;
}
