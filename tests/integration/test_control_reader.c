/* The control reader (cqrs/control.h) against the real broker: it creates its
 * topic, reads what was there before it started, follows later records, syncs
 * to the end on demand, and reports a tenant's deletion once. */
#include "testkit.h"

#include "cqrs/control.h"
#include "cqrs/kafka.h"
#include "cqrs/util.h"

#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WAIT_MS 10000

static tk_env_t env;
static cqrs_config_t cfg;
static cqrs_log_t log_ = {"test-control", CQRS_LOG_INFO};
static rd_kafka_t *producer;

static void setup(void) {
  tk_env_init(&env);
  char brokers[300], prefix[100];
  snprintf(brokers, sizeof brokers, "KAFKA_BROKERS=%s", env.brokers);
  snprintf(prefix, sizeof prefix, "TOPIC_PREFIX=%s", env.prefix);
  char *envp[] = {brokers, prefix, "TOPIC_REPLICATION=1", NULL};
  cqrs_error_t err = {0};
  cr_assert(cqrs_config_load(&cfg, envp, 0, &err), "%s", err.message);
  producer = cqrs_kafka_producer_new(&cfg, &log_, NULL, NULL, &err, "enable.idempotence", "true", "acks", "all",
                                     NULL);
  cr_assert_not_null(producer, "%s", err.message);
}

static void teardown(void) {
  if (producer) rd_kafka_destroy(producer);
  producer = NULL;
  cqrs_config_cleanup(&cfg);
}

TestSuite(control_reader, .init = setup, .fini = teardown, .timeout = 120);

static void nap(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Produces key -> value (NULL: tombstone) and waits until Kafka has it. */
static void produce(const char *key, const char *value) {
  char topic[128];
  tk_topic(&env, CQRS_TOPIC_CONTROL, topic);
  rd_kafka_resp_err_t e = rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                                            RD_KAFKA_V_KEY(key, strlen(key)),
                                            RD_KAFKA_V_VALUE((void *)value, value ? strlen(value) : 0),
                                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
  cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "produce: %s", rd_kafka_err2str(e));
  cr_assert_eq(rd_kafka_flush(producer, WAIT_MS), RD_KAFKA_RESP_ERR_NO_ERROR, "flush timed out");
}

static void produce_tenant(const char *t, cqrs_tenant_state_t state) {
  cqrs_tenant_rec_t r = {.state = state};
  snprintf(r.tenant, sizeof r.tenant, "%s", t);
  cqrs_time_now_rfc3339(r.created_at);
  if (state == CQRS_TENANT_DELETED) cqrs_time_now_rfc3339(r.deleted_at);
  char *k = cqrs_control_tenant_key(t), *v = cqrs_control_tenant_json(&r, NULL);
  produce(k, v);
  free(k);
  free(v);
}

static void produce_key(const char *id, const char *t, bool revoked) {
  cqrs_apikey_rec_t r = {.scopes = 1, .revoked = revoked};
  snprintf(r.key_id, sizeof r.key_id, "%s", id);
  snprintf(r.tenant, sizeof r.tenant, "%s", t);
  cqrs_time_now_rfc3339(r.created_at);
  if (revoked) cqrs_time_now_rfc3339(r.revoked_at);
  char *k = cqrs_control_apikey_key(id), *v = cqrs_control_apikey_json(&r, NULL);
  produce(k, v);
  free(k);
  free(v);
}

/* Creates the topic as a service would (the reader's own creation is tested
 * by starting one on a topic that does not exist yet). */
static void ensure_topic(void) {
  cqrs_error_t err = {0};
  cr_assert(cqrs_kafka_topic_ensure(producer, cfg.topic_prefix, CQRS_TOPIC_CONTROL, 1, cfg.topic_replication,
                                    WAIT_MS, &err),
            "%s", err.message);
}

static bool await_caught_up(cqrs_control_reader_t *r) {
  int64_t deadline = cqrs_time_monotonic_ms() + WAIT_MS;
  while (!cqrs_control_reader_caught_up(r) && cqrs_time_monotonic_ms() < deadline) nap(20);
  return cqrs_control_reader_caught_up(r);
}

static bool await_state(cqrs_registry_t *reg, const char *t, cqrs_tenant_state_t want) {
  int64_t deadline = cqrs_time_monotonic_ms() + WAIT_MS;
  while (cqrs_registry_tenant_state(reg, t) != want && cqrs_time_monotonic_ms() < deadline) nap(20);
  return cqrs_registry_tenant_state(reg, t) == want;
}

typedef struct {
  atomic_int calls;
  char last[CQRS_TENANT_MAX + 1];
} deleted_t;

static void on_deleted(const char *tenant, void *ctx) {
  deleted_t *d = ctx;
  snprintf(d->last, sizeof d->last, "%s", tenant);
  atomic_fetch_add(&d->calls, 1);
}

Test(control_reader, reads_existing_records_then_follows) {
  ensure_topic();
  produce_tenant("alpha", CQRS_TENANT_ACTIVE);
  produce_tenant("beta", CQRS_TENANT_ACTIVE);
  produce_key("00000000000000aa", "alpha", false);
  produce("tenant/Not_Valid", "{}"); /* skipped, the reader goes on */
  produce_tenant("gamma", CQRS_TENANT_ACTIVE);

  cqrs_registry_t *reg = cqrs_registry_new();
  cqrs_error_t err = {0};
  cqrs_control_reader_t *r = cqrs_control_reader_start(&cfg, &log_, reg, NULL, NULL, &err);
  cr_assert_not_null(r, "%s", err.message);
  cr_assert(await_caught_up(r), "the reader did not catch up within %d ms", WAIT_MS);
  /* Caught up means everything that was there is applied, not eventually. */
  cr_assert_eq(cqrs_registry_tenant_state(reg, "alpha"), CQRS_TENANT_ACTIVE);
  cr_assert_eq(cqrs_registry_tenant_state(reg, "gamma"), CQRS_TENANT_ACTIVE);
  cqrs_apikey_rec_t k;
  cr_assert(cqrs_registry_apikey(reg, "00000000000000aa", &k));
  cr_assert_not(k.revoked);

  /* A later record arrives without anyone asking. */
  produce_key("00000000000000aa", "alpha", true);
  produce_tenant("delta", CQRS_TENANT_ACTIVE);
  cr_assert(await_state(reg, "delta", CQRS_TENANT_ACTIVE), "a later record did not arrive within %d ms", WAIT_MS);
  cr_assert(cqrs_registry_apikey(reg, "00000000000000aa", &k));
  cr_assert(k.revoked, "records were applied out of order");

  /* A tombstone forgets. */
  produce("tenant/beta", NULL);
  cr_assert(await_state(reg, "beta", CQRS_TENANT_UNKNOWN));

  cqrs_control_reader_stop(r);
  cqrs_registry_destroy(reg);
}

Test(control_reader, creates_missing_topic_and_sync_reads_own_writes) {
  cqrs_registry_t *reg = cqrs_registry_new();
  cqrs_error_t err = {0};
  /* Nothing has created the topic: the reader does, and an empty topic is caught up. */
  cqrs_control_reader_t *r = cqrs_control_reader_start(&cfg, &log_, reg, NULL, NULL, &err);
  cr_assert_not_null(r, "%s", err.message);
  cr_assert(await_caught_up(r), "the reader did not catch up on an empty topic");
  char topic[128];
  cr_assert_eq(cqrs_kafka_partition_count(producer, tk_topic(&env, CQRS_TOPIC_CONTROL, topic), WAIT_MS, &err), 1,
               "the control topic should have one partition");

  for (int i = 0; i < 20; i++) {
    char t[16];
    snprintf(t, sizeof t, "sync-%d", i);
    produce_tenant(t, CQRS_TENANT_ACTIVE);
    /* Right after the write is acknowledged, sync makes it visible. */
    cr_assert(cqrs_control_reader_sync(r, WAIT_MS, &err), "%s", err.message);
    cr_assert_eq(cqrs_registry_tenant_state(reg, t), CQRS_TENANT_ACTIVE, "sync returned before %s was applied", t);
  }
  size_t n;
  cqrs_tenant_rec_t *all = cqrs_registry_tenants(reg, &n);
  cr_assert_eq(n, 20);
  free(all);
  cqrs_control_reader_stop(r);
  cqrs_registry_destroy(reg);
}

Test(control_reader, without_kafka_sync_fails_within_its_bound) {
  /* No broker listens on this port: the reader never catches up, sync says so
   * within its timeout, and stop still returns. */
  char *envp[] = {"KAFKA_BROKERS=127.0.0.1:1", "TOPIC_PREFIX=nowhere.", NULL};
  cqrs_config_t bad = {0};
  cqrs_error_t err = {0};
  cr_assert(cqrs_config_load(&bad, envp, 0, &err), "%s", err.message);
  cqrs_registry_t *reg = cqrs_registry_new();
  cqrs_control_reader_t *r = cqrs_control_reader_start(&bad, &log_, reg, NULL, NULL, &err);
  cr_assert_not_null(r, "%s", err.message);
  int64_t t0 = cqrs_time_monotonic_ms();
  cr_assert_not(cqrs_control_reader_sync(r, 1000, &err));
  int64_t took = cqrs_time_monotonic_ms() - t0;
  cr_assert_eq(err.code, CQRS_ERR_UNAVAILABLE);
  cr_assert(took < 5000, "sync took %lld ms for a 1000 ms bound", (long long)took);
  cr_assert_not(cqrs_control_reader_caught_up(r));
  cqrs_control_reader_stop(r);
  cqrs_registry_destroy(reg);
  cqrs_config_cleanup(&bad);
}

Test(control_reader, on_deleted_fires_once) {
  ensure_topic();
  produce_tenant("gone-early", CQRS_TENANT_ACTIVE);
  produce_tenant("gone-early", CQRS_TENANT_DELETED); /* read at start: reported too */
  produce_tenant("stays", CQRS_TENANT_ACTIVE);

  deleted_t d = {0};
  cqrs_registry_t *reg = cqrs_registry_new();
  cqrs_error_t err = {0};
  cqrs_control_reader_t *r = cqrs_control_reader_start(&cfg, &log_, reg, on_deleted, &d, &err);
  cr_assert_not_null(r, "%s", err.message);
  cr_assert(await_caught_up(r));
  cr_assert_eq(atomic_load(&d.calls), 1);
  cr_assert_str_eq(d.last, "gone-early");

  produce_tenant("stays", CQRS_TENANT_DELETED);
  produce_tenant("stays", CQRS_TENANT_DELETED); /* deleted again: no new transition */
  cr_assert(cqrs_control_reader_sync(r, WAIT_MS, &err), "%s", err.message);
  cr_assert_eq(atomic_load(&d.calls), 2, "on_deleted ran %d times", atomic_load(&d.calls));
  cr_assert_str_eq(d.last, "stays");
  cqrs_control_reader_stop(r);
  cqrs_registry_destroy(reg);
}
