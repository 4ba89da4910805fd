/* Decider tests that go through the processor: a store, one outcome and its
 * parsed result per test. Include after defining NOW (the decision time); then
 * declare TestSuite(<name>, .init = p_setup, .fini = p_teardown). */
#ifndef CQRS_PROCESSOR_HARNESS_H
#define CQRS_PROCESSOR_HARNESS_H

#include "processor.h"
#include "unit.h"

static int32_t partition_zero(const char *key, void *ctx) {
  (void)key, (void)ctx;
  return 0;
}

static cqrs_aggregate_store_t *store;
static cqrs_outcome_t out;
static bson_t *result;
static const cqrs_process_ctx_t pctx = {.tenant = CQRS_TENANT_DEFAULT, .partition = 0,
                                        .partition_of = partition_zero, .now = NOW, .source = "/command-svc"};

static void p_setup(void) { store = cqrs_aggregate_store_new(); }

static void p_teardown(void) {
  cqrs_outcome_cleanup(&out);
  if (result) bson_destroy(result);
  result = NULL;
  cqrs_aggregate_store_destroy(store);
}

/* Processes json and commits what it staged, as the command loop does after
 * a committed transaction. */
static void process(const char *json) {
  cqrs_outcome_cleanup(&out);
  if (result) bson_destroy(result);
  cqrs_process_command(store, &pctx, json, strlen(json), &out);
  cr_assert_not_null(out.result_json);
  result = u_parse(out.result_json);
  cr_assert_eq(u_i64(result, "status"), out.status);
  if (out.staged) {
    cqrs_aggregate_store_stage(store, out.staged);
    out.staged = NULL;
    cqrs_aggregate_store_commit(store);
  }
}

#endif
