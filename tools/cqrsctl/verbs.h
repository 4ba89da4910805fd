/* cqrsctl's verb table (verbs.c), shared by the parser (parse.c) and the
 * renderers (render.c). Internal to tools/cqrsctl. */
#ifndef CQRSCTL_VERBS_H
#define CQRSCTL_VERBS_H

#include "cqrsctl.h"

#define CTL_MAX_POS 3
#define CTL_MAX_OPTS 12

/* A verb's words after "cqrsctl <group> <name>": positionals and options. */
typedef struct {
  const char *pos[CTL_MAX_POS];
  size_t npos;
  const char *opt_name[CTL_MAX_OPTS]; /* without the leading "--" */
  const char *opt_value[CTL_MAX_OPTS]; /* "" for a flag */
  size_t nopt;
} ctl_args_t;

/* Fills the body (and anything beyond the path) of req from a; false with a
 * message in err on a usage error. */
typedef bool (*ctl_build_cb)(ctl_request_t *req, const ctl_args_t *a, char *err, size_t err_size);
/* Appends the text of a 2xx answer doc to out; returns the exit code (0, or
 * CTL_EXIT_REFUSED when the answer is a no, as an incompatible schema). */
typedef int (*ctl_render_cb)(const ctl_verb_t *verb, const bson_t *doc, bson_string_t *out);

/* A column of a list: its header and the member it shows. */
typedef struct {
  const char *header;
  const char *key;
} ctl_column_t;

struct ctl_verb {
  const char *group;   /* "replay" */
  const char *name;    /* "start"; "list" is also the group's default */
  const char *method;  /* "GET", "POST", "DELETE" */
  const char *path;    /* template: {0}, {1} are the positionals, percent-encoded */
  const char *usage;   /* what follows "cqrsctl <group> <name>" */
  const char *summary; /* one line */
  const char *details; /* more lines for --help, or NULL */
  size_t min_pos, max_pos;
  /* The options, space-separated: "name" a flag, "name=" takes a value the
   * builder reads, "name?" takes a value that goes into the query string. */
  const char *options;
  ctl_build_cb build;           /* NULL: no body */
  ctl_render_cb render;         /* how a 2xx answer reads */
  const ctl_column_t *columns;  /* for render_list */
};

extern const ctl_verb_t ctl_verbs[];
extern const size_t ctl_verbs_count;

/* The value of option name in a ("" for a flag), or NULL when absent. */
const char *ctl_args_opt(const ctl_args_t *a, const char *name);

/* Renderers (render.c). */
int ctl_render_doc(const ctl_verb_t *verb, const bson_t *doc, bson_string_t *out);
int ctl_render_list(const ctl_verb_t *verb, const bson_t *doc, bson_string_t *out);
int ctl_render_dry_run(const ctl_verb_t *verb, const bson_t *doc, bson_string_t *out);
int ctl_render_replay(const ctl_verb_t *verb, const bson_t *doc, bson_string_t *out);
int ctl_render_subjects(const ctl_verb_t *verb, const bson_t *doc, bson_string_t *out);
int ctl_render_compat(const ctl_verb_t *verb, const bson_t *doc, bson_string_t *out);

#endif
