/* Command JSON, as it arrives on POST /v1/commands or the commands topic:
 * the envelope (cqrs_command_parse), each command type's validation and
 * decision, all through command-svc's pure processor.
 *
 * Input: one command per line, processed in order against one store that
 * already holds a user "u-1", an order "o-1" and a customer "c-1" (so updates
 * reach their deciders); what a command staged is committed before the next.
 * Properties checked besides memory safety: the processor always answers
 * (a result with a status), the canonical JSON of a parsed command parses
 * back to the same canonical JSON, and every event a decider wrote decodes
 * through the contract, survives the CloudEvents headers and is applied by
 * every projection of its aggregate without being refused as poison. */
#include "fuzz.h"

#include "processor.h"
#include "projection.h"

#include "cqrs/command.h"
#include "cqrs/event.h"

#define MAX_COMMANDS 8

static const char *const PRELOAD[] = {
    "{\"commandType\":\"CreateUser\",\"commandId\":\"p-1\",\"aggregateId\":\"u-1\",\"email\":\"ann@example.com\","
    "\"name\":\"Ann\"}",
    "{\"commandType\":\"CreateOrder\",\"commandId\":\"p-2\",\"aggregateId\":\"o-1\",\"userId\":\"u-1\","
    "\"items\":[{\"product\":\"pen\",\"quantity\":2,\"price\":1.5}],\"totalAmount\":3}",
    "{\"commandType\":\"RegisterCustomer\",\"commandId\":\"p-3\",\"aggregateId\":\"c-1\",\"email\":\"kim@example.com\","
    "\"name\":\"Kim\"}",
};

/* Two partitions, so some commands take the forwarding path. */
static int32_t partition_of(const char *key, void *ctx) {
  (void)ctx;
  return (int32_t)((unsigned char)key[strlen(key) - 1] & 1);
}

static const cqrs_process_ctx_t PCTX = {.tenant = "default", .partition = 1, .partition_of = partition_of,
                                        .now = "2026-01-01T00:00:00.000Z", .source = "/command-svc"};

/* Every event a decider wrote is one the rest of the system reads. */
static void check_event(const cqrs_event_t *ev) {
  const cqrs_event_type_t *t = cqrs_event_type_find(ev->type);
  FUZZ_CHECK(t, "a decider wrote an event type the contract does not know: %s", ev->type);
  cqrs_event_data_t decoded;
  cqrs_error_t err = {0};
  FUZZ_CHECK(t->decode(ev->data, &decoded, &err), "%s does not decode: %s (%s)", ev->type, err.message, err.field);

  cqrs_header_t hdrs[CQRS_EVENT_MAX_HEADERS];
  char vbuf[24];
  size_t n = cqrs_event_to_headers(ev, hdrs, vbuf);
  char *value = bson_as_relaxed_extended_json(ev->data, NULL);
  cqrs_event_t back = {0};
  FUZZ_CHECK(cqrs_event_from_record(&back, hdrs, n, value, strlen(value), &err), "%s record does not decode: %s",
             ev->type, err.message);
  FUZZ_CHECK(strcmp(back.aggregate_id, ev->aggregate_id) == 0 && back.version == ev->version, "record changed");

  /* a reading projection (snapshots) sees this event as its aggregate's
   * whole history, a snapshot at every version */
  size_t none = 0;
  cqrs_memory_reader_t mem = {&back, 1, NULL, &none};
  cqrs_projection_reader_t reader;
  cqrs_projection_memory_reader(&reader, &mem, 1);
  for (const cqrs_projection_t *const *p = cqrs_projections; *p; p++) {
    cqrs_write_t w;
    bool skip = false;
    bool ok = cqrs_projection_apply(*p, &reader, &back, &w, &skip, &err);
    FUZZ_CHECK(ok, "projection %s refuses %s: %s (%s)", (*p)->name, ev->type, err.message, err.field);
    cqrs_write_cleanup(&w);
  }
  cqrs_event_cleanup(&back);
  bson_free(value);
}

/* The canonical JSON of a command is a fixed point of parse + to_json. */
static void check_canonical(const char *json, size_t len) {
  cqrs_command_t cmd = {0};
  if (cqrs_command_parse(&cmd, json, len, NULL)) {
    size_t n1, n2;
    char *once = cqrs_command_to_json(&cmd, &n1);
    cqrs_command_t again = {0};
    cqrs_error_t err = {0};
    FUZZ_CHECK(cqrs_command_parse(&again, once, n1, &err), "canonical JSON does not parse: %s", err.message);
    char *twice = cqrs_command_to_json(&again, &n2);
    FUZZ_CHECK(n1 == n2 && memcmp(once, twice, n1) == 0, "canonical JSON changed:\n%s\n%s", once, twice);
    bson_free(once);
    bson_free(twice);
    cqrs_command_cleanup(&again);
  }
  cqrs_command_cleanup(&cmd);
}

static void process(cqrs_aggregate_store_t *store, const char *json, size_t len, bool check) {
  cqrs_outcome_t out = {0};
  cqrs_process_command(store, &PCTX, json, len, &out);
  FUZZ_CHECK(out.command_id, "no commandId");
  FUZZ_CHECK(out.forward_json || (out.result_json && out.status >= 200 && out.status < 500), "no result");
  if (check)
    for (size_t i = 0; i < out.n_events; i++) check_event(&out.events[i]);
  if (out.staged) {
    cqrs_aggregate_store_stage(store, out.staged);
    out.staged = NULL;
    cqrs_aggregate_store_commit(store);
  }
  cqrs_outcome_cleanup(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = fuzz_text(data, size), *rest = text, *line;
  cqrs_aggregate_store_t *store = cqrs_aggregate_store_new();
  for (size_t i = 0; i < sizeof PRELOAD / sizeof PRELOAD[0]; i++)
    process(store, PRELOAD[i], strlen(PRELOAD[i]), false);
  size_t len;
  for (int n = 0; n < MAX_COMMANDS && (line = fuzz_next(&rest, text + size, '\n', &len)); n++) {
    check_canonical(line, len);
    process(store, line, len, true);
  }
  cqrs_aggregate_store_destroy(store);
  free(text);
  return 0;
}
