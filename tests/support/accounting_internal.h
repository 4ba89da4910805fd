/* What the checker's two parts share (accounting.c: commands, log, read
 * models; accounting_sagas.c: sagas): lists of indexes in string maps, keys,
 * violations, and the index of the input both read. Not for tests. */
#ifndef TK_ACCOUNTING_INTERNAL_H
#define TK_ACCOUNTING_INTERNAL_H

#include "accounting.h"

#include "cqrs/map.h"

typedef struct {
  size_t *v;
  size_t n, cap;
} tk_acct_list_t;

/* Appends i to the list of key in m (a map made with tk_acct_list_free). */
void tk_acct_push(cqrs_map_t *m, const char *key, size_t i);
/* The list of key in m; an empty one when absent. */
const tk_acct_list_t *tk_acct_list(const cqrs_map_t *m, const char *key);
void tk_acct_list_free(void *p);

/* tenant, or "default" for NULL or "". */
const char *tk_acct_tenant(const char *tenant);
/* "<tenant>/<id>" into buf. */
const char *tk_acct_key(char *buf, size_t cap, const char *tenant, const char *id);
bool tk_acct_str_eq(const char *a, const char *b);

/* Adds a violation line to r. */
void tk_acct_violation(tk_acct_report_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One step of a saga instance that has a command. Strings borrowed from the
 * instance. */
typedef struct {
  size_t saga;                    /* index into in->saga_instances */
  const char *tenant, *saga_type, *saga_key;
  const char *name, *command_id, *outcome;
  const char *command_type, *aggregate_id; /* of its command */
} tk_acct_step_t;

/* The input, indexed. */
typedef struct {
  cqrs_map_t *by_cause;  /* "<tenant>/<causation id>" -> events */
  cqrs_map_t *by_id;     /* event id -> events */
  cqrs_map_t *results;   /* "<tenant>/<command id>" -> results */
  cqrs_map_t *commands;  /* "<tenant>/<command id>" -> commands */
  tk_acct_step_t *steps; /* every saga step with a command (in->sagas) */
  size_t n_steps;
  cqrs_map_t *step_of;   /* "<tenant>/<command id>" -> steps */
} tk_acct_index_t;

/* Fills x's saga part (steps, step_of) from in->saga_instances. */
void tk_acct_index_sagas(const tk_acct_input_t *in, tk_acct_index_t *x);

/* The saga checks (accounting.h, "Sagas"), on x built from in. */
void tk_acct_check_sagas(const tk_acct_input_t *in, const tk_acct_index_t *x, tk_acct_report_t *r);

#endif
