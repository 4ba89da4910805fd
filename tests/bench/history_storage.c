/* The storage cost of the event_history read model per event: N synthetic
 * order events (a quarter OrderCreated with two items, the rest
 * OrderStatusUpdated; fresh ids, correlation and causation ids) are turned
 * into documents by the projection itself, folded and inserted as the store
 * writer does, with the projection's indexes (and, with FERRETDB_PG_URI, the
 * GIN indexes projector-svc adds); then collStats and, with FERRETDB_PG_URI,
 * PostgreSQL's own sizes of the table. The database is dropped at the end.
 *
 *   history_storage [N]      (MONGO_URI, FERRETDB_PG_URI from the environment)
 */
#include "fold.h"
#include "projection.h"

#include "cqrs/ferretdb_pg.h"
#include "cqrs/util.h"

#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH 1000

/* Event i of the synthetic log: every fourth creates an order, the next three move it. */
static void make_event(size_t i, cqrs_event_t *ev, char ids[4][CQRS_UUID_LEN], char *time, bson_t *data) {
  static const char *const next[] = {"Processing", "Shipped", "Delivered"};
  cqrs_uuid_random(ids[0]);
  if (i % 4 == 0) cqrs_uuid_random(ids[1]); /* a new order */
  cqrs_uuid_random(ids[2]);
  cqrs_uuid_random(ids[3]);
  snprintf(time, 32, "2026-03-01T%02zu:%02zu:%02zu.%03zuZ", (i / 3600000) % 24, (i / 60000) % 60, (i / 1000) % 60,
           i % 1000);
  bson_init(data);
  cqrs_event_data_t e;
  memset(&e, 0, sizeof e);
  const cqrs_event_type_t *type;
  bson_t items = BSON_INITIALIZER;
  if (i % 4 == 0) {
    type = &cqrs_order_created_event;
    cqrs_order_item_t a = {"Widget", 2, 10.5}, b = {"Gadget", 1, 99.0};
    cqrs_order_item_append(&items, 0, &a);
    cqrs_order_item_append(&items, 1, &b);
    e.order_created = (cqrs_order_created_t){.order_id = ids[1], .user_id = ids[3], .items = items,
                                              .total_amount = 120.0, .currency = "USD", .created_at = time};
  } else {
    type = &cqrs_order_status_updated_event;
    e.order_status_updated = (cqrs_order_status_updated_t){
        .order_id = ids[1], .status = next[i % 4 - 1], .previous_status = i % 4 == 1 ? "Created" : next[i % 4 - 2],
        .updated_at = time};
  }
  type->encode(&e, data);
  bson_destroy(&items);
  *ev = (cqrs_event_t){.id = ids[0], .type = (char *)type->name, .source = "/command-svc",
                       .aggregate_type = (char *)type->aggregate_type, .aggregate_id = ids[1], .time = time,
                       .correlation_id = ids[2], .causation_id = ids[3], .tenant = "default",
                       .version = (int64_t)(i % 4) + 1, .schema_version = type->version, .data = data};
}

static double member(const bson_t *reply, const char *key) {
  bson_iter_t it;
  return bson_iter_init_find(&it, reply, key) && BSON_ITER_HOLDS_NUMBER(&it) ? (double)bson_iter_as_int64(&it) : -1;
}

int main(int argc, char **argv) {
  size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 10000;
  const char *uri = getenv("MONGO_URI") ? getenv("MONGO_URI") : "mongodb://127.0.0.1:27017";
  const char *pg = getenv("FERRETDB_PG_URI");
  const cqrs_projection_t *proj = &cqrs_event_history_projection;
  char db[64];
  snprintf(db, sizeof db, "histbench%d", (int)getpid());
  mongoc_init();
  mongoc_client_t *client = mongoc_client_new(uri);
  if (!client) {
    fprintf(stderr, "bad MONGO_URI\n");
    return 1;
  }
  mongoc_collection_t *coll = mongoc_client_get_collection(client, db, proj->name);
  bson_error_t error;
  bson_t cmd = BSON_INITIALIZER, idx;
  BSON_APPEND_UTF8(&cmd, "createIndexes", proj->name);
  BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &idx);
  proj->indexes(&idx);
  bson_append_array_end(&cmd, &idx);
  if (!mongoc_client_write_command_with_opts(client, db, &cmd, NULL, NULL, &error)) {
    fprintf(stderr, "createIndexes: %s\n", error.message);
    return 1;
  }
  bson_destroy(&cmd);
  PGconn *c = NULL;
  char *table = NULL;
  cqrs_error_t err = {0};
  if (pg) {
    static const char *const gin[] = {"_id", CQRS_HISTORY_AGGREGATE_ID, CQRS_HISTORY_TYPE};
    if (!(c = cqrs_ferretdb_pg_connect(pg, "history_storage", 5000, 0, &err)) ||
        !cqrs_ferretdb_pg_gin_indexes(c, db, proj->name, gin, 3, &table, &err)) {
      fprintf(stderr, "PostgreSQL: %s\n", err.message);
      return 1;
    }
  }
  size_t data_bytes = 0, doc_bytes = 0;
  for (size_t a = 0; a < n; a += BATCH) {
    size_t k = n - a < BATCH ? n - a : BATCH;
    cqrs_write_t *w = calloc(k, sizeof *w);
    for (size_t i = 0; i < k; i++) {
      char ids[4][CQRS_UUID_LEN], time[32];
      bson_t data;
      cqrs_event_t ev;
      bool skip;
      make_event(a + i, &ev, ids, time, &data);
      data_bytes += data.len;
      proj->apply(&ev, &w[i], &skip, &err);
      bson_destroy(&data);
    }
    cqrs_fold_t f;
    if (!cqrs_fold(w, NULL, k, &f, &err)) {
      fprintf(stderr, "fold: %s\n", err.message);
      return 1;
    }
    const bson_t **docs = calloc(f.n, sizeof *docs);
    for (size_t i = 0; i < f.n; i++) {
      docs[i] = &f.writes[i].insert;
      doc_bytes += docs[i]->len;
    }
    if (!mongoc_collection_insert_many(coll, docs, f.n, NULL, NULL, &error)) {
      fprintf(stderr, "insert: %s\n", error.message);
      return 1;
    }
    free(docs);
    cqrs_fold_cleanup(&f);
    for (size_t i = 0; i < k; i++) cqrs_write_cleanup(&w[i]);
    free(w);
  }
  bson_t stats_cmd = BSON_INITIALIZER, reply;
  BSON_APPEND_UTF8(&stats_cmd, "collStats", proj->name);
  if (!mongoc_client_command_simple(client, db, &stats_cmd, NULL, &reply, &error)) {
    fprintf(stderr, "collStats: %s\n", error.message);
    return 1;
  }
  double count = member(&reply, "count");
  printf("events: %zu (a quarter OrderCreated with two items, the rest OrderStatusUpdated)\n", n);
  printf("event data (BSON), mean: %.0f bytes; history document (BSON, as MongoDB would hold it): %.0f bytes\n",
         (double)data_bytes / (double)n, (double)doc_bytes / (double)n);
  printf("collStats: count %.0f, avgObjSize %.0f, size %.0f, storageSize %.0f, totalIndexSize %.0f\n", count,
         member(&reply, "avgObjSize"), member(&reply, "size"), member(&reply, "storageSize"), member(&reply, "totalIndexSize"));
  if (count > 0)
    printf("collStats per event: %.0f bytes of data + %.0f bytes of indexes\n", member(&reply, "storageSize") / count,
           member(&reply, "totalIndexSize") / count);
  bson_destroy(&reply);
  bson_destroy(&stats_cmd);
  if (c) {
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT pg_table_size('\"%s\".\"%s\"'), pg_indexes_size('\"%s\".\"%s\"'), "
             "(SELECT avg(pg_column_size(_jsonb)) FROM \"%s\".\"%s\")",
             db, table, db, table, db, table);
    PQclear(PQexec(c, "CHECKPOINT"));
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
      double t = atof(PQgetvalue(r, 0, 0)), i = atof(PQgetvalue(r, 0, 1)), avg = atof(PQgetvalue(r, 0, 2));
      printf("PostgreSQL: table %.0f bytes, indexes %.0f bytes (FerretDB's + GIN); per event: %.0f table + %.0f "
             "indexes = %.0f bytes; one document (jsonb, compressed as stored) %.0f bytes\n",
             t, i, t / (double)n, i / (double)n, (t + i) / (double)n, avg);
    } else {
      fprintf(stderr, "PostgreSQL sizes: %s\n", PQerrorMessage(c));
    }
    PQclear(r);
    PQfinish(c);
  }
  free(table);
  mongoc_database_t *d = mongoc_client_get_database(client, db);
  mongoc_database_drop(d, NULL);
  mongoc_database_destroy(d);
  mongoc_collection_destroy(coll);
  mongoc_client_destroy(client);
  mongoc_cleanup();
  return 0;
}
