/* The clients' view of every command sent (see ledger.h). */
#include "ledger.h"

#include "testkit.h"

#include "cqrs/tenant.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  ledger_ingress_t ingress;
  char *command_id, *json;
  int status; /* 0: no answer yet */
  char *aggregate_id, *event_id;
  int64_t version;
  bool delivered;
  int lost; /* answers lost so far */
} row_t;

struct ledger {
  char *tenant;
  pthread_mutex_t mu;
  row_t *rows;
  size_t n, cap;
};

ledger_t *ledger_new(const char *tenant) {
  ledger_t *l = calloc(1, sizeof *l);
  l->tenant = strdup(tenant ? tenant : CQRS_TENANT_DEFAULT);
  pthread_mutex_init(&l->mu, NULL);
  return l;
}

void ledger_destroy(ledger_t *l) {
  if (!l) return;
  for (size_t i = 0; i < l->n; i++)
    free(l->rows[i].command_id), free(l->rows[i].json), free(l->rows[i].aggregate_id), free(l->rows[i].event_id);
  free(l->rows);
  free(l->tenant);
  pthread_mutex_destroy(&l->mu);
  free(l);
}

const char *ledger_tenant(const ledger_t *l) { return l->tenant; }

size_t ledger_add(ledger_t *l, ledger_ingress_t ingress, const char *command_id, const char *json) {
  pthread_mutex_lock(&l->mu);
  if (l->n == l->cap) l->rows = realloc(l->rows, (l->cap = l->cap ? l->cap * 2 : 256) * sizeof *l->rows);
  size_t row = l->n++;
  l->rows[row] = (row_t){.ingress = ingress, .command_id = strdup(command_id), .json = strdup(json)};
  pthread_mutex_unlock(&l->mu);
  return row;
}

void ledger_answer(ledger_t *l, size_t row, int status, const char *body) {
  /* parsed outside the lock */
  char *agg = NULL, *ev = NULL;
  int64_t version = 0;
  bool answered = status > 0 && status < 500;
  if (answered && body) {
    agg = tk_json_string(body, "aggregateId");
    ev = tk_json_string(body, "eventId");
    version = tk_json_int(body, "version");
    if (version == INT64_MIN) version = 0;
  }
  pthread_mutex_lock(&l->mu);
  row_t *r = &l->rows[row];
  if (!answered) {
    r->lost++;
  } else {
    free(r->aggregate_id), free(r->event_id);
    r->status = status;
    r->aggregate_id = agg;
    r->event_id = ev;
    r->version = version;
    agg = ev = NULL;
  }
  pthread_mutex_unlock(&l->mu);
  free(agg), free(ev);
}

void ledger_delivered(ledger_t *l, size_t row) {
  pthread_mutex_lock(&l->mu);
  l->rows[row].delivered = true;
  pthread_mutex_unlock(&l->mu);
}

size_t *ledger_unanswered(ledger_t *l, ledger_ingress_t ingress, size_t *n) {
  pthread_mutex_lock(&l->mu);
  size_t *out = calloc(l->n + 1, sizeof *out);
  *n = 0;
  for (size_t i = 0; i < l->n; i++)
    if (l->rows[i].ingress == ingress && l->rows[i].status == 0) out[(*n)++] = i;
  pthread_mutex_unlock(&l->mu);
  return out;
}

const char *ledger_command_id(ledger_t *l, size_t row) {
  pthread_mutex_lock(&l->mu);
  const char *s = l->rows[row].command_id;
  pthread_mutex_unlock(&l->mu);
  return s;
}

const char *ledger_json(ledger_t *l, size_t row) {
  pthread_mutex_lock(&l->mu);
  const char *s = l->rows[row].json;
  pthread_mutex_unlock(&l->mu);
  return s;
}

ledger_stats_t ledger_stats(ledger_t *l) {
  ledger_stats_t s = {0};
  pthread_mutex_lock(&l->mu);
  for (size_t i = 0; i < l->n; i++) {
    const row_t *r = &l->rows[i];
    s.sent++;
    if (r->ingress == LEDGER_HTTP)
      s.http++;
    else
      s.kafka++;
    if (r->status == 200 || r->status == 201) s.acknowledged++;
    s.answers_lost += (size_t)r->lost;
    if (r->lost && r->status) s.retried++;
    if (!r->status) s.unknown++;
  }
  pthread_mutex_unlock(&l->mu);
  return s;
}

tk_acct_command_t *ledger_commands(ledger_t *l, size_t *n) {
  pthread_mutex_lock(&l->mu);
  tk_acct_command_t *out = calloc(l->n + 1, sizeof *out);
  for (size_t i = 0; i < l->n; i++) {
    const row_t *r = &l->rows[i];
    out[i] = (tk_acct_command_t){.tenant = l->tenant,
                                 .command_id = r->command_id,
                                 .status = r->status,
                                 .aggregate_id = r->aggregate_id,
                                 .version = r->version,
                                 .event_id = r->event_id,
                                 .delivered = r->delivered};
  }
  *n = l->n;
  pthread_mutex_unlock(&l->mu);
  return out;
}
