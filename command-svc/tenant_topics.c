/* Tenant topics riding along with the shared commands topic (tenant_topics.h). */
#include "tenant_topics.h"

#include "cqrs/alloc.h"
#include "cqrs/kafka.h"
#include "cqrs/map.h"
#include "cqrs/tenant.h"
#include "cqrs/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KAFKA_WAIT_MS 5000 /* a listing or an offset fetch */

/* A partition of a tenant's topic put aside while its tenant is at its rate. */
typedef struct {
  char *topic;
  int32_t partition;
  int64_t until_ms; /* monotonic */
} throttled_t;

struct cqrs_tenant_topics {
  const cqrs_config_t *cfg;
  const cqrs_log_t *log;
  cqrs_metrics_t *metrics;
  rd_kafka_t *group;    /* the lane's consumer: where the offsets are committed */
  rd_kafka_t *consumer; /* ours, assigned by hand */
  char *commands_topic;
  int32_t n_partitions;
  bool *held;           /* [n_partitions]: partitions of commands the lane holds */
  char **topics;        /* the tenant topics read (a partition count like commands') */
  size_t n_topics;
  char **refused;       /* tenant topics with another partition count, logged once */
  size_t n_refused;
  int assigned;         /* partitions read now */
  bool stale;           /* the last assign failed: the next scan assigns again */
  int64_t scanned_ms;   /* when the topics were last listed; 0: never */
  cqrs_ratelimit_t *limits; /* NULL: read as fast as they come */
  throttled_t *throttled;   /* paused partitions, resumed when due */
  size_t n_throttled;
};

static void free_names(char **names, size_t n) {
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
}

static bool has_name(char *const *names, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(names[i], name) == 0) return true;
  return false;
}

cqrs_tenant_topics_t *cqrs_tenant_topics_new(const cqrs_config_t *cfg, const cqrs_log_t *log,
                                             cqrs_metrics_t *metrics, rd_kafka_t *group,
                                             const char *commands_topic, int32_t n_partitions,
                                             cqrs_ratelimit_t *limits, cqrs_error_t *err) {
  cqrs_tenant_topics_t *tt = cqrs_xcalloc(1, sizeof *tt);
  tt->limits = cqrs_ratelimit_enabled(limits) ? limits : NULL;
  tt->cfg = cfg;
  tt->log = log;
  tt->metrics = metrics;
  tt->group = group;
  tt->commands_topic = cqrs_xstrdup(commands_topic);
  tt->n_partitions = n_partitions;
  tt->held = cqrs_xcalloc((size_t)n_partitions, sizeof *tt->held);
  cqrs_metrics_describe(metrics, "command_tenant_topics", CQRS_METRIC_GAUGE,
                        "Tenants' own command topics this replica reads (the second tier of Kafka ingress).");
  cqrs_metrics_describe(metrics, "tenant_topic_throttled_total", CQRS_METRIC_COUNTER,
                        "Times a partition of a tenant's own command topic was set aside while the tenant was at its "
                        "command rate (its records wait there instead of being refused).");
  /* never joins its group (assigned by hand) and never commits to it: the
   * lane's transactions commit these offsets to the lane's group */
  if (!(tt->consumer = cqrs_kafka_consumer_new(cfg, log, "command-svc-tenant-topics", NULL, NULL, err,
                                               "fetch.wait.max.ms", "20", NULL))) {
    cqrs_tenant_topics_destroy(tt);
    return NULL;
  }
  rd_kafka_poll_set_consumer(tt->consumer);
  return tt;
}

void cqrs_tenant_topics_destroy(cqrs_tenant_topics_t *tt) {
  if (!tt) return;
  if (tt->consumer) {
    rd_kafka_assign(tt->consumer, NULL);
    rd_kafka_consumer_close(tt->consumer);
    rd_kafka_destroy(tt->consumer);
  }
  free_names(tt->topics, tt->n_topics);
  free_names(tt->refused, tt->n_refused);
  for (size_t i = 0; i < tt->n_throttled; i++) free(tt->throttled[i].topic);
  free(tt->throttled);
  free(tt->held);
  free(tt->commands_topic);
  free(tt);
}

/* The tenant topics of the cluster now, into *names / *n (to free_names).
 * False with err when Kafka does not answer. */
static bool list_topics(cqrs_tenant_topics_t *tt, char ***names, size_t *n, cqrs_error_t *err) {
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_resp_err_t e = rd_kafka_metadata(tt->consumer, 1, NULL, &md, KAFKA_WAIT_MS);
  if (e) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "listing the topics: %s", rd_kafka_err2str(e));
    return false;
  }
  *names = NULL;
  *n = 0;
  for (int i = 0; i < md->topic_cnt; i++) {
    const char *name = md->topics[i].topic;
    char tenant[CQRS_TENANT_MAX + 1];
    if (md->topics[i].err || !cqrs_tenant_topic_split(tt->cfg->topic_prefix, name, tenant)) continue;
    if (md->topics[i].partition_cnt != tt->n_partitions) {
      if (!has_name(tt->refused, tt->n_refused, name)) {
        char have[16], want[16];
        snprintf(have, sizeof have, "%d", md->topics[i].partition_cnt);
        snprintf(want, sizeof want, "%d", tt->n_partitions);
        cqrs_log_error(tt->log, "a tenant's command topic is not read: its partition count is not the commands "
                       "topic's (recreate it with that count)", "topic", name, "tenant", tenant,
                       "partitions", have, "want", want, NULL);
        tt->refused = cqrs_xrealloc(tt->refused, (tt->n_refused + 1) * sizeof *tt->refused);
        tt->refused[tt->n_refused++] = cqrs_xstrdup(name);
      }
      continue;
    }
    *names = cqrs_xrealloc(*names, (*n + 1) * sizeof **names);
    (*names)[(*n)++] = cqrs_xstrdup(name);
  }
  rd_kafka_metadata_destroy(md);
  return true;
}

/* Forgets the partitions set aside (an assign gives every partition its
 * position afresh). */
static void forget_throttles(cqrs_tenant_topics_t *tt) {
  for (size_t i = 0; i < tt->n_throttled; i++) free(tt->throttled[i].topic);
  tt->n_throttled = 0;
}

/* Reads partition p of every known tenant topic for every p held, from the
 * offsets committed to the lane's group (none yet: the beginning). */
static bool assign_held(cqrs_tenant_topics_t *tt, cqrs_error_t *err) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
  for (size_t t = 0; t < tt->n_topics; t++)
    for (int32_t p = 0; p < tt->n_partitions; p++)
      if (tt->held[p]) rd_kafka_topic_partition_list_add(l, tt->topics[t], p);
  bool ok = true;
  if (l->cnt > 0) {
    /* read_committed: the broker waits out a transaction still committing these offsets */
    rd_kafka_resp_err_t e = rd_kafka_committed(tt->group, l, KAFKA_WAIT_MS);
    if (e) {
      cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "reading the tenant topics' committed offsets: %s",
                     rd_kafka_err2str(e));
      ok = false;
    }
    for (int i = 0; ok && i < l->cnt; i++)
      if (l->elems[i].offset < 0) l->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  forget_throttles(tt);
  rd_kafka_resp_err_t e = rd_kafka_assign(tt->consumer, ok && l->cnt > 0 ? l : NULL);
  if (!e && ok && l->cnt > 0) rd_kafka_resume_partitions(tt->consumer, l); /* none set aside from before */
  if (ok && e) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "assigning the tenant topics: %s", rd_kafka_err2str(e));
    ok = false;
    rd_kafka_assign(tt->consumer, NULL);
  }
  tt->assigned = ok ? l->cnt : 0;
  tt->stale = !ok;
  rd_kafka_topic_partition_list_destroy(l);
  cqrs_metrics_set(tt->metrics, "command_tenant_topics", NULL, (double)tt->n_topics);
  return ok;
}

/* Lists the topics and reads what is held of them: a change of topics or a
 * failed assign before reassigns; the same topics leave everything as is. */
static bool refresh(cqrs_tenant_topics_t *tt, bool force, cqrs_error_t *err) {
  char **names;
  size_t n;
  tt->scanned_ms = cqrs_time_monotonic_ms();
  if (!list_topics(tt, &names, &n, err)) {
    tt->stale = true;
    return false;
  }
  bool same = n == tt->n_topics;
  for (size_t i = 0; same && i < n; i++) same = has_name(tt->topics, tt->n_topics, names[i]);
  if (same && !force && !tt->stale) {
    free_names(names, n);
    return true;
  }
  for (size_t i = 0; i < n; i++)
    if (!has_name(tt->topics, tt->n_topics, names[i]))
      cqrs_log_info(tt->log, "reading a tenant's command topic", "topic", names[i], NULL);
  free_names(tt->topics, tt->n_topics);
  tt->topics = names;
  tt->n_topics = n;
  return assign_held(tt, err);
}

bool cqrs_tenant_topics_assign(cqrs_tenant_topics_t *tt, const rd_kafka_topic_partition_list_t *parts,
                               cqrs_error_t *err) {
  memset(tt->held, 0, (size_t)tt->n_partitions * sizeof *tt->held);
  for (int i = 0; i < parts->cnt; i++) {
    int32_t p = parts->elems[i].partition;
    if (strcmp(parts->elems[i].topic, tt->commands_topic) == 0 && p >= 0 && p < tt->n_partitions)
      tt->held[p] = true;
  }
  return refresh(tt, true, err);
}

void cqrs_tenant_topics_revoke(cqrs_tenant_topics_t *tt) {
  memset(tt->held, 0, (size_t)tt->n_partitions * sizeof *tt->held);
  forget_throttles(tt);
  rd_kafka_assign(tt->consumer, NULL);
  tt->assigned = 0;
  tt->stale = false;
}

void cqrs_tenant_topics_scan(cqrs_tenant_topics_t *tt) {
  if (!tt->stale && tt->scanned_ms && cqrs_time_monotonic_ms() - tt->scanned_ms < CQRS_TENANT_TOPICS_SCAN_MS)
    return;
  cqrs_error_t err = {0};
  if (!refresh(tt, false, &err))
    cqrs_log_warn(tt->log, "tenant command topics not read for now; trying again", "error", err.message, NULL);
}

bool cqrs_tenant_topics_active(const cqrs_tenant_topics_t *tt) { return tt->assigned > 0; }

/* Resumes the partitions set aside whose time has come. */
static void resume_due(cqrs_tenant_topics_t *tt, int64_t now) {
  size_t kept = 0;
  rd_kafka_topic_partition_list_t *due = NULL;
  for (size_t i = 0; i < tt->n_throttled; i++) {
    throttled_t *t = &tt->throttled[i];
    if (t->until_ms > now) {
      tt->throttled[kept++] = *t;
      continue;
    }
    if (!due) due = rd_kafka_topic_partition_list_new(4);
    rd_kafka_topic_partition_list_add(due, t->topic, t->partition);
    free(t->topic);
  }
  tt->n_throttled = kept;
  if (due) {
    rd_kafka_resume_partitions(tt->consumer, due);
    rd_kafka_topic_partition_list_destroy(due);
  }
}

static bool is_throttled(const cqrs_tenant_topics_t *tt, const char *topic, int32_t partition) {
  for (size_t i = 0; i < tt->n_throttled; i++)
    if (tt->throttled[i].partition == partition && strcmp(tt->throttled[i].topic, topic) == 0) return true;
  return false;
}

/* Sets topic's partition aside from offset on (paused, and put back there:
 * a pause purges what was fetched, a seek names where to go on) until
 * until_ms. */
static void set_aside(cqrs_tenant_topics_t *tt, const char *topic, const char *tenant, int32_t partition,
                      int64_t offset, int64_t until_ms) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
  rd_kafka_pause_partitions(tt->consumer, l);
  rd_kafka_error_t *e = rd_kafka_seek_partitions(tt->consumer, l, KAFKA_WAIT_MS);
  if (e) { /* not put back: what was fetched past it would be skipped, so read everything again */
    cqrs_log_warn(tt->log, "cannot set a tenant topic's partition aside; reading the tenant topics again", "topic",
                  topic, "error", rd_kafka_error_string(e), NULL);
    rd_kafka_error_destroy(e);
    rd_kafka_topic_partition_list_destroy(l);
    cqrs_tenant_topics_rewind(tt);
    return;
  }
  rd_kafka_topic_partition_list_destroy(l);
  tt->throttled = cqrs_xrealloc(tt->throttled, (tt->n_throttled + 1) * sizeof *tt->throttled);
  tt->throttled[tt->n_throttled++] = (throttled_t){cqrs_xstrdup(topic), partition, until_ms};
  char labels[96];
  snprintf(labels, sizeof labels, "tenant=\"%s\"", cqrs_metrics_tenant(tt->metrics, tenant));
  cqrs_metrics_add(tt->metrics, "tenant_topic_throttled_total", labels, 1);
}

/* Keeps of msgs[0..n) what each tenant's rate allows now, in order per
 * partition; a partition's first record past it and all after are dropped
 * and the partition set aside until the tenant has tokens again (at least
 * CQRS_TENANT_TOPICS_ASIDE_MS). Returns how many are kept (first in msgs). */
static size_t within_rates(cqrs_tenant_topics_t *tt, rd_kafka_message_t **msgs, size_t n) {
  int64_t now = cqrs_time_monotonic_ms();
  cqrs_map_t *left = cqrs_map_new(free); /* tenant -> tokens left for this batch */
  size_t kept = 0;
  for (size_t i = 0; i < n; i++) {
    rd_kafka_message_t *m = msgs[i];
    const char *topic = rd_kafka_topic_name(m->rkt);
    char tenant[CQRS_TENANT_MAX + 1];
    if (is_throttled(tt, topic, m->partition)) { /* set aside in this batch already: the rest of it waits too */
      rd_kafka_message_destroy(m);
      continue;
    }
    if (!cqrs_tenant_topic_split(tt->cfg->topic_prefix, topic, tenant)) { /* only tenant topics are assigned */
      msgs[kept++] = m;
      continue;
    }
    int64_t *tokens = cqrs_map_get(left, tenant), retry_ms = 0;
    if (!tokens) {
      tokens = cqrs_xmalloc(sizeof *tokens);
      *tokens = cqrs_ratelimit_available(tt->limits, tenant, now, &retry_ms);
      cqrs_map_put(left, tenant, tokens);
    }
    if (*tokens > 0) {
      (*tokens)--;
      msgs[kept++] = m;
      continue;
    }
    cqrs_ratelimit_available(tt->limits, tenant, now, &retry_ms); /* when its next token comes */
    set_aside(tt, topic, tenant, m->partition, m->offset,
              now + (retry_ms > CQRS_TENANT_TOPICS_ASIDE_MS ? retry_ms : CQRS_TENANT_TOPICS_ASIDE_MS));
    rd_kafka_message_destroy(m);
  }
  cqrs_map_destroy(left);
  return kept;
}

size_t cqrs_tenant_topics_poll(cqrs_tenant_topics_t *tt, rd_kafka_message_t **msgs, size_t max, int timeout_ms) {
  if (tt->assigned <= 0 || max == 0) return 0;
  if (tt->limits) resume_due(tt, cqrs_time_monotonic_ms());
  size_t n = cqrs_kafka_poll_batch(tt->consumer, msgs, max, timeout_ms, tt->log);
  return tt->limits && n ? within_rates(tt, msgs, n) : n;
}

void cqrs_tenant_topics_rewind(cqrs_tenant_topics_t *tt) {
  cqrs_error_t err = {0};
  if (tt->assigned > 0 && !assign_held(tt, &err)) /* the next scan tries again, before the next poll */
    cqrs_log_warn(tt->log, "cannot rewind the tenant command topics after an abort; trying again", "error",
                  err.message, NULL);
}
