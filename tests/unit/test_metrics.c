/* Prometheus metrics (cqrs/metrics.h): the text format the services expose. */
#include "cqrs/metrics.h"
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

static cqrs_metrics_t *m;
static char *text;

static void setup(void) { m = cqrs_metrics_new(); }
static void teardown(void) {
  free(text);
  cqrs_metrics_destroy(m);
}

TestSuite(metrics, .init = setup, .fini = teardown);

static void render(void) {
  free(text);
  size_t len = 0;
  text = cqrs_metrics_render(m, &len);
  cr_assert_not_null(text);
  cr_assert_eq(len, strlen(text));
}

/* True when text has line as a whole line. */
static bool has_line(const char *line) {
  size_t n = strlen(line);
  for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
    if ((p == text || p[-1] == '\n') && p[n] == '\n') return true;
  return false;
}

#define assert_line(line) cr_assert(has_line(line), "no line \"%s\" in:\n%s", line, text)

Test(metrics, empty_registry) {
  render();
  cr_assert_str_eq(text, "");
}

Test(metrics, help_and_type_lines) {
  cqrs_metrics_describe(m, "commands_total", CQRS_METRIC_COUNTER, "Commands decided.");
  cqrs_metrics_describe(m, "lag_events", CQRS_METRIC_GAUGE, "Events behind.");
  cqrs_metrics_describe(m, "tx_seconds", CQRS_METRIC_HISTOGRAM, "Transaction time.");
  render();
  assert_line("# HELP commands_total Commands decided.");
  assert_line("# TYPE commands_total counter");
  assert_line("# HELP lag_events Events behind.");
  assert_line("# TYPE lag_events gauge");
  assert_line("# HELP tx_seconds Transaction time.");
  assert_line("# TYPE tx_seconds histogram");
  /* HELP comes before TYPE, and both before the samples */
  cr_assert_lt(strstr(text, "# HELP commands_total"), strstr(text, "# TYPE commands_total"));
}

Test(metrics, unlabelled_family_renders_zero_before_first_sample) {
  cqrs_metrics_describe(m, "events_total", CQRS_METRIC_COUNTER, "Events.");
  render();
  assert_line("events_total 0");
  cr_assert_lt(strstr(text, "# TYPE events_total"), strstr(text, "events_total 0"));
}

Test(metrics, counter_values) {
  cqrs_metrics_describe(m, "commands_total", CQRS_METRIC_COUNTER, "Commands.");
  cqrs_metrics_add(m, "commands_total", "type=\"CreateUser\",status=\"201\"", 1);
  cqrs_metrics_add(m, "commands_total", "type=\"CreateUser\",status=\"201\"", 2);
  cqrs_metrics_add(m, "commands_total", "type=\"CreateUser\",status=\"400\"", 1);
  render();
  assert_line("commands_total{type=\"CreateUser\",status=\"201\"} 3");
  assert_line("commands_total{type=\"CreateUser\",status=\"400\"} 1");
  cr_assert_not(has_line("commands_total 0"), "a family with samples has no zero line:\n%s", text);
}

Test(metrics, counter_without_labels) {
  cqrs_metrics_describe(m, "events_total", CQRS_METRIC_COUNTER, "Events.");
  cqrs_metrics_add(m, "events_total", NULL, 5);
  cqrs_metrics_add(m, "events_total", NULL, 0.5);
  render();
  assert_line("events_total 5.5");
}

Test(metrics, gauge_set_replaces) {
  cqrs_metrics_describe(m, "lag", CQRS_METRIC_GAUGE, "Lag.");
  cqrs_metrics_set(m, "lag", "partition=\"0\"", 10);
  cqrs_metrics_set(m, "lag", "partition=\"0\"", 4);
  cqrs_metrics_set(m, "lag", "partition=\"1\"", 0);
  render();
  assert_line("lag{partition=\"0\"} 4");
  assert_line("lag{partition=\"1\"} 0");
}

/* The value of the sample line starting with prefix. */
static unsigned long sample(const char *prefix) {
  const char *p = text;
  size_t n = strlen(prefix);
  while (p && *p) {
    if (strncmp(p, prefix, n) == 0 && p[n] == ' ') return strtoul(p + n + 1, NULL, 10);
    p = strchr(p, '\n');
    if (p) p++;
  }
  cr_assert_fail("no sample %s in:\n%s", prefix, text);
  return 0;
}

Test(metrics, histogram_buckets_cumulative) {
  cqrs_metrics_describe(m, "tx_seconds", CQRS_METRIC_HISTOGRAM, "Transaction time.");
  cqrs_metrics_observe(m, "tx_seconds", NULL, 0.0001); /* smallest bucket */
  cqrs_metrics_observe(m, "tx_seconds", NULL, 0.003);
  cqrs_metrics_observe(m, "tx_seconds", NULL, 0.2);
  cqrs_metrics_observe(m, "tx_seconds", NULL, 60);     /* only +Inf */
  render();
  cr_assert_eq(sample("tx_seconds_bucket{le=\"0.0005\"}"), 1);
  cr_assert_eq(sample("tx_seconds_bucket{le=\"0.005\"}"), 2);
  cr_assert_eq(sample("tx_seconds_bucket{le=\"0.25\"}"), 3);
  cr_assert_eq(sample("tx_seconds_bucket{le=\"10\"}"), 3);
  cr_assert_eq(sample("tx_seconds_bucket{le=\"+Inf\"}"), 4);
  cr_assert_eq(sample("tx_seconds_count"), 4);
  cr_assert(strstr(text, "tx_seconds_sum 60.2031") != NULL, "sum of observations:\n%s", text);
  /* every bucket line is >= the one before it, ending at +Inf */
  unsigned long prev = 0;
  int buckets = 0;
  for (const char *p = strstr(text, "tx_seconds_bucket"); p; p = strstr(p + 1, "tx_seconds_bucket")) {
    const char *sp = strchr(p, ' ');
    unsigned long v = strtoul(sp + 1, NULL, 10);
    cr_assert_geq(v, prev, "buckets are cumulative:\n%s", text);
    prev = v;
    buckets++;
  }
  cr_assert_gt(buckets, 2);
  cr_assert_eq(prev, 4, "the last bucket is +Inf with every observation");
  cr_assert_lt(strstr(text, "le=\"10\""), strstr(text, "le=\"+Inf\""));
}

Test(metrics, histogram_with_labels) {
  cqrs_metrics_describe(m, "req_seconds", CQRS_METRIC_HISTOGRAM, "Requests.");
  cqrs_metrics_observe(m, "req_seconds", "route=\"/v1/users\"", 0.001);
  render();
  cr_assert_eq(sample("req_seconds_bucket{route=\"/v1/users\",le=\"0.001\"}"), 1);
  cr_assert_eq(sample("req_seconds_bucket{route=\"/v1/users\",le=\"0.0005\"}"), 0);
  cr_assert_eq(sample("req_seconds_bucket{route=\"/v1/users\",le=\"+Inf\"}"), 1);
  cr_assert_eq(sample("req_seconds_count{route=\"/v1/users\"}"), 1);
  cr_assert(strstr(text, "req_seconds_sum{route=\"/v1/users\"} 0.001") != NULL, "%s", text);
}

Test(metrics, boundary_value_counts_in_its_bucket) {
  cqrs_metrics_describe(m, "h", CQRS_METRIC_HISTOGRAM, "H.");
  cqrs_metrics_observe(m, "h", NULL, 0.5);
  render();
  cr_assert_eq(sample("h_bucket{le=\"0.25\"}"), 0);
  cr_assert_eq(sample("h_bucket{le=\"0.5\"}"), 1, "le is inclusive");
}

/* Registries share nothing: destroying one (or NULL, a no-op) leaves
 * another's samples as they were. */
Test(metrics, destroying_another_registry_or_null_leaves_this_one_whole) {
  cqrs_metrics_t *other = cqrs_metrics_new();
  cqrs_metrics_describe(other, "other_total", CQRS_METRIC_COUNTER, "Other.");
  cqrs_metrics_add(other, "other_total", NULL, 5);
  cqrs_metrics_describe(m, "mine_total", CQRS_METRIC_COUNTER, "Mine.");
  cqrs_metrics_add(m, "mine_total", NULL, 2);
  cqrs_metrics_destroy(other);
  cqrs_metrics_destroy(NULL);
  cqrs_metrics_add(m, "mine_total", NULL, 1);
  render();
  assert_line("mine_total 3");
  assert_line("# HELP mine_total Mine.");
  cr_assert_null(strstr(text, "other_total"), "the other registry's family shows here:\n%s", text);
}

Test(metrics, tenant_labels_are_bounded_and_stable) {
  cqrs_metrics_t *m = cqrs_metrics_new();
  char t[16];
  for (int i = 0; i < CQRS_METRICS_TENANTS + 20; i++) {
    snprintf(t, sizeof t, "t%d", i);
    const char *label = cqrs_metrics_tenant(m, t);
    if (i < CQRS_METRICS_TENANTS)
      cr_expect_str_eq(label, t);
    else
      cr_expect_str_eq(label, CQRS_METRICS_TENANT_OTHER);
  }
  cr_expect_str_eq(cqrs_metrics_tenant(m, "t3"), "t3", "a known tenant keeps its label");
  cr_expect_eq(cqrs_metrics_tenant(m, "t3"), cqrs_metrics_tenant(m, "t3"), "the same string each time");
  cqrs_metrics_destroy(m);
}
