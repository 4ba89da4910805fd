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

/* One partition of a tenant topic, read from its own queue (not forwarded to
 * the consumer's): a batch takes from it what its tenant's rate allows, and
 * the rest stays queued there; librdkafka stops fetching a partition whose
 * queue holds queued.max.messages.kbytes. */
typedef struct {
  rd_kafka_queue_t *q;
  char tenant[CQRS_TENANT_MAX + 1];
} part_queue_t;

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
  part_queue_t *queues;     /* the partitions read, one queue each */
  size_t n_queues;
  size_t next; /* the queue a batch starts with: round robin */
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

static void drop_queues(cqrs_tenant_topics_t *tt) {
  for (size_t i = 0; i < tt->n_queues; i++) rd_kafka_queue_destroy(tt->queues[i].q);
  free(tt->queues);
  tt->queues = NULL;
  tt->n_queues = 0;
  tt->next = 0;
}

/* A queue of its own for each partition of l (to assign: librdkafka makes
 * the partitions it does not know yet), not forwarded to the consumer's. */
static void take_queues(cqrs_tenant_topics_t *tt, const rd_kafka_topic_partition_list_t *l) {
  tt->queues = cqrs_xcalloc(l->cnt > 0 ? (size_t)l->cnt : 1, sizeof *tt->queues);
  for (int i = 0; i < l->cnt; i++) {
    part_queue_t *pq = &tt->queues[tt->n_queues];
    if (!cqrs_tenant_topic_split(tt->cfg->topic_prefix, l->elems[i].topic, pq->tenant) ||
        !(pq->q = rd_kafka_queue_get_partition(tt->consumer, l->elems[i].topic, l->elems[i].partition)))
      continue;
    rd_kafka_queue_forward(pq->q, NULL); /* read here, not through the consumer's queue */
    tt->n_queues++;
  }
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
  cqrs_metrics_describe(metrics, "tenant_topic_waits_total", CQRS_METRIC_COUNTER,
                        "Reads of a partition of a tenant's own command topic that left its records waiting there "
                        "for the tenant's command rate (instead of refusing them).");
  /* never joins its group (assigned by hand) and never commits to it: the
   * lane's transactions commit these offsets to the lane's group. A small
   * prefetch per partition (each has its queue): a batch takes at most
   * TENANT_TOPICS_BATCH_MAX records of these topics, and what a tenant's
   * rate leaves waits queued, up to this much, then in its topic. */
  if (!(tt->consumer = cqrs_kafka_consumer_new(cfg, log, "command-svc-tenant-topics", NULL, NULL, err,
                                               "fetch.wait.max.ms", "20", "max.partition.fetch.bytes", "65536",
                                               "queued.max.messages.kbytes", "1024", NULL))) {
    cqrs_tenant_topics_destroy(tt);
    return NULL;
  }
  rd_kafka_poll_set_consumer(tt->consumer);
  return tt;
}

void cqrs_tenant_topics_destroy(cqrs_tenant_topics_t *tt) {
  if (!tt) return;
  drop_queues(tt);
  if (tt->consumer) {
    rd_kafka_assign(tt->consumer, NULL);
    rd_kafka_consumer_close(tt->consumer);
    rd_kafka_destroy(tt->consumer);
  }
  free_names(tt->topics, tt->n_topics);
  free_names(tt->refused, tt->n_refused);
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
  drop_queues(tt);
  if (ok && l->cnt > 0) take_queues(tt, l); /* before the fetchers start: none forwards to the consumer's queue */
  rd_kafka_resp_err_t e = rd_kafka_assign(tt->consumer, ok && l->cnt > 0 ? l : NULL);
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
  drop_queues(tt);
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

/* What of tenant's records a batch may still take: its tokens left (taken
 * where the records are handed out, so the command loop does not take them
 * again), looked up once per batch into left. */
static int64_t *budget(cqrs_tenant_topics_t *tt, cqrs_map_t *left, const char *tenant, int64_t now) {
  int64_t *tokens = cqrs_map_get(left, tenant);
  if (!tokens) {
    tokens = cqrs_xmalloc(sizeof *tokens);
    *tokens = cqrs_ratelimit_available(tt->limits, tenant, now, NULL);
    cqrs_map_put(left, tenant, tokens);
  }
  return tokens;
}

/* An error event among the records (not one: a partition's end is no error). */
static void consumer_error(cqrs_tenant_topics_t *tt, const rd_kafka_message_t *m) {
  if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
    cqrs_log_warn(tt->log, "tenant topic consumer error", "error", rd_kafka_message_errstr(m), NULL);
}

/* Serves the consumer's own queue (errors; the main queue is forwarded
 * there): records never come that way, the partitions' queues are not
 * forwarded. One that did would be ahead of what its partition's queue holds:
 * then everything is read again from the committed offsets. False then. */
static bool serve_events(cqrs_tenant_topics_t *tt) {
  bool record = false;
  rd_kafka_message_t *m;
  while ((m = rd_kafka_consumer_poll(tt->consumer, 0))) {
    if (!m->err)
      record = true;
    else
      consumer_error(tt, m);
    rd_kafka_message_destroy(m);
  }
  if (record) {
    cqrs_log_warn(tt->log, "a tenant topic's record came on the consumer's queue; reading them again", NULL);
    cqrs_tenant_topics_rewind(tt);
  }
  return !record;
}

size_t cqrs_tenant_topics_poll(cqrs_tenant_topics_t *tt, rd_kafka_message_t **msgs, size_t max) {
  if (!serve_events(tt) || tt->assigned <= 0 || max == 0 || tt->n_queues == 0) return 0;
  int64_t now = cqrs_time_monotonic_ms();
  cqrs_map_t *left = tt->limits ? cqrs_map_new(free) : NULL;
  size_t n = 0;
  for (size_t k = 0; k < tt->n_queues && n < max; k++) {
    part_queue_t *pq = &tt->queues[(tt->next + k) % tt->n_queues];
    size_t want = max - n;
    int64_t *tokens = left ? budget(tt, left, pq->tenant, now) : NULL;
    if (tokens && *tokens < (int64_t)want) {
      if (*tokens <= 0 && rd_kafka_queue_length(pq->q) > 0) {
        char labels[96];
        snprintf(labels, sizeof labels, "tenant=\"%s\"", cqrs_metrics_tenant(tt->metrics, pq->tenant));
        cqrs_metrics_add(tt->metrics, "tenant_topic_waits_total", labels, 1);
      }
      if (*tokens <= 0) continue;
      want = (size_t)*tokens;
    }
    size_t base = n;
    ssize_t got = rd_kafka_consume_batch_queue(pq->q, 0, msgs + base, want);
    for (ssize_t i = 0; i < got; i++) {
      rd_kafka_message_t *m = msgs[base + (size_t)i];
      if (m->err) {
        consumer_error(tt, m);
        rd_kafka_message_destroy(m);
        continue;
      }
      if (tokens) {
        cqrs_ratelimit_take(tt->limits, pq->tenant, now, NULL);
        (*tokens)--;
      }
      msgs[n++] = m;
    }
  }
  tt->next = (tt->next + 1) % tt->n_queues;
  if (left) cqrs_map_destroy(left);
  return n;
}

void cqrs_tenant_topics_rewind(cqrs_tenant_topics_t *tt) {
  cqrs_error_t err = {0};
  if (tt->assigned > 0 && !assign_held(tt, &err)) /* the next scan tries again, before the next poll */
    cqrs_log_warn(tt->log, "cannot rewind the tenant command topics after an abort; trying again", "error",
                  err.message, NULL);
}
