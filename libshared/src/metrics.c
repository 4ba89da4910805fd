/* Prometheus metrics registry. A mutex and linear search: the series count is
 * small (tens), and the services update a few series per request or batch. */
#include "cqrs/alloc.h"
#include "cqrs/metrics.h"

#include <bson/bson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double bucket_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                       0.05,   0.1,   0.25,   0.5,   1,    2.5, 5, 10};
#define N_BUCKETS (sizeof bucket_bounds / sizeof bucket_bounds[0])

typedef struct {
  char *name;
  char *labels;
  double value;                   /* counter or gauge; histogram sum */
  unsigned long count;            /* histogram */
  unsigned long buckets[N_BUCKETS];
} series_t;

typedef struct {
  char *name;
  cqrs_metric_type_t type;
  char *help;
} family_t;

struct cqrs_metrics {
  pthread_mutex_t lock;
  series_t *series;
  size_t n_series;
  family_t *families;
  size_t n_families;
  char *tenants[CQRS_METRICS_TENANTS]; /* the tenants with a label of their own */
  size_t n_tenants;
};

cqrs_metrics_t *cqrs_metrics_new(void) {
  cqrs_metrics_t *m = cqrs_xcalloc(1, sizeof *m);
  pthread_mutex_init(&m->lock, NULL);
  return m;
}

void cqrs_metrics_destroy(cqrs_metrics_t *m) {
  if (!m) return;
  for (size_t i = 0; i < m->n_series; i++) {
    free(m->series[i].name);
    free(m->series[i].labels);
  }
  for (size_t i = 0; i < m->n_families; i++) {
    free(m->families[i].name);
    free(m->families[i].help);
  }
  for (size_t i = 0; i < m->n_tenants; i++) free(m->tenants[i]);
  free(m->series);
  free(m->families);
  pthread_mutex_destroy(&m->lock);
  free(m);
}

void cqrs_metrics_describe(cqrs_metrics_t *m, const char *name, cqrs_metric_type_t type,
                           const char *help) {
  pthread_mutex_lock(&m->lock);
  for (size_t i = 0; i < m->n_families; i++) {
    if (strcmp(m->families[i].name, name) == 0) { /* declared already, e.g. by another lane */
      pthread_mutex_unlock(&m->lock);
      return;
    }
  }
  m->families = cqrs_xrealloc(m->families, (m->n_families + 1) * sizeof *m->families);
  m->families[m->n_families++] = (family_t){cqrs_xstrdup(name), type, cqrs_xstrdup(help)};
  pthread_mutex_unlock(&m->lock);
}

/* Called with the lock held. */
static series_t *find(cqrs_metrics_t *m, const char *name, const char *labels) {
  labels = labels ? labels : "";
  for (size_t i = 0; i < m->n_series; i++)
    if (strcmp(m->series[i].name, name) == 0 && strcmp(m->series[i].labels, labels) == 0)
      return &m->series[i];
  m->series = cqrs_xrealloc(m->series, (m->n_series + 1) * sizeof *m->series);
  series_t *s = &m->series[m->n_series++];
  memset(s, 0, sizeof *s);
  s->name = cqrs_xstrdup(name);
  s->labels = cqrs_xstrdup(labels);
  return s;
}

void cqrs_metrics_add(cqrs_metrics_t *m, const char *name, const char *labels, double v) {
  pthread_mutex_lock(&m->lock);
  find(m, name, labels)->value += v;
  pthread_mutex_unlock(&m->lock);
}

void cqrs_metrics_set(cqrs_metrics_t *m, const char *name, const char *labels, double v) {
  pthread_mutex_lock(&m->lock);
  find(m, name, labels)->value = v;
  pthread_mutex_unlock(&m->lock);
}

void cqrs_metrics_observe(cqrs_metrics_t *m, const char *name, const char *labels, double v) {
  pthread_mutex_lock(&m->lock);
  series_t *s = find(m, name, labels);
  s->value += v;
  s->count++;
  for (size_t i = 0; i < N_BUCKETS; i++)
    if (v <= bucket_bounds[i]) s->buckets[i]++;
  pthread_mutex_unlock(&m->lock);
}

static void render_series(bson_string_t *out, const series_t *s, cqrs_metric_type_t type) {
  const char *sep = s->labels[0] ? "," : "";
  if (type != CQRS_METRIC_HISTOGRAM) {
    if (s->labels[0])
      bson_string_append_printf(out, "%s{%s} %.15g\n", s->name, s->labels, s->value);
    else
      bson_string_append_printf(out, "%s %.15g\n", s->name, s->value);
    return;
  }
  for (size_t i = 0; i < N_BUCKETS; i++)
    bson_string_append_printf(out, "%s_bucket{%s%sle=\"%g\"} %lu\n", s->name, s->labels, sep,
                              bucket_bounds[i], s->buckets[i]);
  bson_string_append_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %lu\n", s->name, s->labels, sep, s->count);
  const char *open = s->labels[0] ? "{" : "", *close = s->labels[0] ? "}" : "";
  bson_string_append_printf(out, "%s_sum%s%s%s %.15g\n", s->name, open, s->labels, close, s->value);
  bson_string_append_printf(out, "%s_count%s%s%s %lu\n", s->name, open, s->labels, close, s->count);
}

char *cqrs_metrics_render(cqrs_metrics_t *m, size_t *len) {
  static const char *type_names[] = {"counter", "gauge", "histogram"};
  bson_string_t *out = bson_string_new("");
  pthread_mutex_lock(&m->lock);
  for (size_t f = 0; f < m->n_families; f++) {
    const family_t *fam = &m->families[f];
    bson_string_append_printf(out, "# HELP %s %s\n# TYPE %s %s\n", fam->name, fam->help, fam->name,
                              type_names[fam->type]);
    bool any = false;
    for (size_t i = 0; i < m->n_series; i++) {
      if (strcmp(m->series[i].name, fam->name) != 0) continue;
      render_series(out, &m->series[i], fam->type);
      any = true;
    }
    if (!any && fam->type != CQRS_METRIC_HISTOGRAM) bson_string_append_printf(out, "%s 0\n", fam->name);
  }
  /* Series of undeclared families still show, untyped. */
  for (size_t i = 0; i < m->n_series; i++) {
    bool declared = false;
    for (size_t f = 0; f < m->n_families && !declared; f++)
      declared = strcmp(m->families[f].name, m->series[i].name) == 0;
    if (!declared) render_series(out, &m->series[i], CQRS_METRIC_COUNTER);
  }
  pthread_mutex_unlock(&m->lock);
  if (len) *len = out->len;
  char *s = cqrs_xstrdup(out->str);
  bson_string_free(out, true);
  return s;
}

const char *cqrs_metrics_tenant(cqrs_metrics_t *m, const char *tenant) {
  const char *label = CQRS_METRICS_TENANT_OTHER;
  pthread_mutex_lock(&m->lock);
  for (size_t i = 0; i < m->n_tenants; i++)
    if (strcmp(m->tenants[i], tenant) == 0) {
      label = m->tenants[i];
      goto out;
    }
  if (m->n_tenants < CQRS_METRICS_TENANTS) {
    label = m->tenants[m->n_tenants++] = cqrs_xstrdup(tenant);
  }
out:
  pthread_mutex_unlock(&m->lock);
  return label;
}
