/* Prometheus metrics: counters, gauges and histograms rendered as text format.
 * Thread-safe; a series is created on first use. */
#ifndef CQRS_METRICS_H
#define CQRS_METRICS_H

#include <stddef.h>

typedef struct cqrs_metrics cqrs_metrics_t;

typedef enum { CQRS_METRIC_COUNTER, CQRS_METRIC_GAUGE, CQRS_METRIC_HISTOGRAM } cqrs_metric_type_t;

/* A new, empty registry. Free with cqrs_metrics_destroy (NULL is fine). */
cqrs_metrics_t *cqrs_metrics_new(void);
void cqrs_metrics_destroy(cqrs_metrics_t *m);

/* Declares a family (name, type, help) so it renders with HELP and TYPE lines,
 * and at 0 before its first sample when it has no labels. A second
 * declaration of the same name is ignored (the first one stands). */
void cqrs_metrics_describe(cqrs_metrics_t *m, const char *name, cqrs_metric_type_t type,
                           const char *help);

/* labels is the inside of the braces, e.g. "route=\"/v1/users\",status=\"200\"",
 * or NULL. */
void cqrs_metrics_add(cqrs_metrics_t *m, const char *name, const char *labels, double v);
void cqrs_metrics_set(cqrs_metrics_t *m, const char *name, const char *labels, double v);
/* Records one observation (seconds) into a histogram with buckets from 0.5 ms to 10 s. */
void cqrs_metrics_observe(cqrs_metrics_t *m, const char *name, const char *labels, double v);

/* Per-tenant series with bounded cardinality: the value for a "tenant" label.
 * It is the tenant id itself for the first CQRS_METRICS_TENANTS distinct
 * tenants this registry meets, and CQRS_METRICS_TENANT_OTHER for every later
 * one (no tenant id holds '_'), so no family grows beyond that many tenant
 * series however many tenants there are. The string lives as long as m. */
#define CQRS_METRICS_TENANTS 50
#define CQRS_METRICS_TENANT_OTHER "_other"
const char *cqrs_metrics_tenant(cqrs_metrics_t *m, const char *tenant);

/* The registry in Prometheus text format 0.0.4. Returns a string to free(). */
char *cqrs_metrics_render(cqrs_metrics_t *m, size_t *len);

#endif
