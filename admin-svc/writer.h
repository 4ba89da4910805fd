/* admin-svc's one way to change the control plane: decide under a lock, then
 * write the control record and wait until this process has read it back.
 *
 * Within one process writes are serialized (a mutex around decide, produce
 * and sync), so two creates of one tenant cannot both pass the "does it
 * exist" check. Across replicas nothing serializes them: two admin-svc
 * replicas creating the same tenant at the same moment may both answer 201
 * (the later record wins; both say "active", so nothing is lost for tenants;
 * for keys each record has its own random keyId). Run one replica, or accept
 * that race; docs/openapi/admin-svc.json says so too. */
#ifndef ADMIN_WRITER_H
#define ADMIN_WRITER_H

#include "cqrs/config.h"
#include "cqrs/control.h"
#include "cqrs/error.h"
#include "cqrs/log.h"

#include <librdkafka/rdkafka.h>

#include <stdbool.h>
#include <stddef.h>

/* One record to write: key and JSON value, both malloc'd, freed by the writer. */
typedef struct {
  char *key;
  char *value;
  size_t value_len;
} admin_record_t;

/* Decides, from the registry as this process knows it, which record to write.
 * True with out filled to write it; true with out->key NULL when nothing
 * needs writing (e.g. revoking a revoked key); false with err to refuse.
 * Runs under the writer's lock. */
typedef bool (*admin_decide_cb)(cqrs_registry_t *reg, void *ctx, admin_record_t *out, cqrs_error_t *err);

typedef struct admin_writer admin_writer_t;

/* A writer producing to the control topic with an idempotent producer
 * (acks=all); reader and reg are borrowed and must outlive it. timeout_ms
 * bounds each write's delivery and its read-back. NULL with err when the
 * producer cannot be made. */
admin_writer_t *admin_writer_new(const cqrs_config_t *cfg, const cqrs_log_t *log, cqrs_registry_t *reg,
                                 cqrs_control_reader_t *reader, int timeout_ms, cqrs_error_t *err);

/* Flushes and frees. NULL is fine. */
void admin_writer_destroy(admin_writer_t *w);

/* Runs decide, writes its record and waits until the reader has applied it,
 * so the registry then shows the write. False with decide's err, or with
 * CQRS_ERR_UNAVAILABLE when Kafka did not take the record or the read-back
 * timed out (the write may still land: a retry sees its effect). Any thread;
 * writes are one at a time. */
bool admin_writer_apply(admin_writer_t *w, admin_decide_cb decide, void *ctx, cqrs_error_t *err);

/* The producer admin-svc writes its compacted topics with: idempotent,
 * acks=all, each record delivered within timeout_ms. For admin_produce only
 * (its delivery callback expects admin_produce's opaque). NULL with err. */
rd_kafka_t *admin_producer_new(const cqrs_config_t *cfg, const cqrs_log_t *log, int timeout_ms, cqrs_error_t *err);

/* Produces rec to partition 0 of topic with rk (from admin_producer_new) and
 * waits for its delivery report. False with CQRS_ERR_UNAVAILABLE when Kafka
 * did not take it. Callers serialize their writes (the report is awaited by
 * a flush). */
bool admin_produce(rd_kafka_t *rk, const char *topic, const admin_record_t *rec, int timeout_ms, cqrs_error_t *err);

/* True when the producer's cluster answers (readiness). */
bool admin_writer_ping(admin_writer_t *w, int timeout_ms);

#endif
