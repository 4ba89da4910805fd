/* The PostgreSQL behind FerretDB (see cqrs/ferretdb_pg.h). */
#include "cqrs/alloc.h"
#include "cqrs/ferretdb_pg.h"

#include "cqrs/ferretdb_keyset.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

PGconn *cqrs_ferretdb_pg_connect(const char *uri, const char *app, int timeout_ms, int statement_timeout_ms,
                                 cqrs_error_t *err) {
  char secs[16], options[64] = "";
  snprintf(secs, sizeof secs, "%d", timeout_ms < 1000 ? 1 : timeout_ms / 1000);
  if (statement_timeout_ms > 0) snprintf(options, sizeof options, "-c statement_timeout=%d", statement_timeout_ms);
  /* after the URI: a later keyword wins over the URI's own */
  const char *keys[] = {"dbname", "connect_timeout", "application_name", options[0] ? "options" : NULL, NULL};
  const char *vals[] = {uri, secs, app, options, NULL};
  PGconn *c = PQconnectdbParams(keys, vals, 1);
  if (c && PQstatus(c) == CONNECTION_OK) return c;
  cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, "FERRETDB_PG_URI", "cannot connect to PostgreSQL: %s",
                 c ? PQerrorMessage(c) : "out of memory");
  PQfinish(c);
  return NULL;
}

bool cqrs_ferretdb_pg_table(PGconn *c, const char *db, const char *collection, char **table, cqrs_error_t *err) {
  *table = NULL;
  char *schema = PQescapeIdentifier(c, db, strlen(db));
  if (!schema) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, "FERRETDB_PG_URI", "PostgreSQL: %s", PQerrorMessage(c));
    return false;
  }
  char sql[512];
  snprintf(sql, sizeof sql, "SELECT _jsonb->>'table' FROM %s._ferretdb_database_metadata WHERE _jsonb->>'_id' = $1",
           schema);
  PQfreemem(schema);
  const char *params[] = {collection};
  PGresult *r = PQexecParams(c, sql, 1, NULL, params, NULL, NULL, 0);
  bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
  if (ok)
    *table = cqrs_xstrdup(PQgetvalue(r, 0, 0));
  else if (PQresultStatus(r) != PGRES_TUPLES_OK)
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, "FERRETDB_PG_URI", "PostgreSQL, reading FerretDB's metadata: %s",
                   PQerrorMessage(c));
  else
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, "FERRETDB_PG_URI",
                   "FerretDB has no table for %s.%s in this PostgreSQL (is FERRETDB_PG_URI the one behind MONGO_URI?)",
                   db, collection);
  PQclear(r);
  return ok;
}

/* FNV-1a: a short, stable index name per (table, field); PostgreSQL names
 * stop at 63 bytes and FerretDB's table names may use all of them. */
static uint64_t fnv1a(const char *a, const char *b) {
  uint64_t h = 1469598103934665603ULL;
  for (const char *s = a; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  h = (h ^ '.') * 1099511628211ULL;
  for (const char *s = b; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

bool cqrs_ferretdb_pg_gin_indexes(PGconn *c, const char *db, const char *collection, const char *const *fields,
                                  size_t n, char **table, cqrs_error_t *err) {
  char *raw;
  if (table) *table = NULL;
  if (!cqrs_ferretdb_pg_table(c, db, collection, &raw, err)) return false;
  char *schema = PQescapeIdentifier(c, db, strlen(db));
  char *tbl = PQescapeIdentifier(c, raw, strlen(raw));
  bool ok = schema && tbl;
  for (size_t i = 0; ok && i < n; i++) {
    char name[32], ddl[768];
    snprintf(name, sizeof name, "cqrs_gin_%016llx", (unsigned long long)fnv1a(raw, fields[i]));
    char *field = PQescapeLiteral(c, fields[i], strlen(fields[i]));
    snprintf(ddl, sizeof ddl,
             "CREATE INDEX IF NOT EXISTS %s ON %s.%s USING gin ((_jsonb->%s) jsonb_path_ops) WITH (fastupdate = off)",
             name, schema, tbl, field ? field : "''");
    PQfreemem(field);
    PGresult *x = PQexec(c, ddl);
    ok = PQresultStatus(x) == PGRES_COMMAND_OK;
    PQclear(x);
  }
  if (!ok)
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, "FERRETDB_PG_URI", "PostgreSQL, creating GIN indexes on %s.%s: %s", db,
                   collection, PQerrorMessage(c));
  PQfreemem(schema);
  PQfreemem(tbl);
  if (ok && table)
    *table = raw;
  else
    free(raw);
  return ok;
}

bool cqrs_ferretdb_pg_keyset_index(PGconn *c, const char *db, const char *collection, const char *const *keys,
                                   size_t n, cqrs_error_t *err) {
  char *raw;
  if (!cqrs_ferretdb_pg_table(c, db, collection, &raw, err)) return false;
  char joined[CQRS_KEYSET_KEYS_MAX * CQRS_KEYSET_KEY_MAX] = "";
  for (size_t i = 0; i < n && i < CQRS_KEYSET_KEYS_MAX; i++) {
    if (i) strncat(joined, ",", sizeof joined - strlen(joined) - 1);
    strncat(joined, keys[i], sizeof joined - strlen(joined) - 1);
  }
  char name[32];
  snprintf(name, sizeof name, "cqrs_keyset_%016llx", (unsigned long long)fnv1a(raw, joined));
  char *ddl = cqrs_keyset_index_sql(name, db, raw, keys, n);
  bool ok = false;
  if (!ddl) {
    cqrs_error_set(err, CQRS_ERR_INVALID, NULL, "a keyset index on %s.%s needs 2 to %d plain keys", db, collection,
                   CQRS_KEYSET_KEYS_MAX);
  } else {
    PGresult *x = PQexec(c, ddl);
    ok = PQresultStatus(x) == PGRES_COMMAND_OK;
    PQclear(x);
    if (!ok)
      cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, "FERRETDB_PG_URI", "PostgreSQL, creating a keyset index on %s.%s: %s",
                     db, collection, PQerrorMessage(c));
  }
  free(ddl);
  free(raw);
  return ok;
}

/* Runs sql; false with err (naming what) unless it succeeds. */
static bool exec_ok(PGconn *c, const char *sql, const char *what, cqrs_error_t *err) {
  PGresult *x = PQexec(c, sql);
  ExecStatusType st = PQresultStatus(x);
  PQclear(x);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return true;
  cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, "FERRETDB_PG_URI", "PostgreSQL, %s: %s", what, PQerrorMessage(c));
  return false;
}

/* Whether table schema.tbl (unquoted names) has a trigger called name. */
static bool has_trigger(PGconn *c, const char *schema, const char *tbl, const char *name) {
  const char *params[] = {schema, tbl, name};
  PGresult *r = PQexecParams(c,
                             "SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass(format('%I.%I', $1::text, $2::text)) "
                             "AND tgname = $3",
                             3, NULL, params, NULL, NULL, 0);
  bool found = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
  PQclear(r);
  return found;
}

/* ALTERs each object the query q (parameters db, table) names in its first
 * column and, in its second, the column to set, when its third (the
 * statistics target now) is not target. */
static bool set_targets(PGconn *c, const char *q, const char *db, const char *table, const char *what, int target,
                        cqrs_error_t *err) {
  const char *params[] = {db, table};
  PGresult *r = PQexecParams(c, q, 2, NULL, params, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, "FERRETDB_PG_URI", "PostgreSQL, reading statistics targets: %s",
                   PQerrorMessage(c));
    PQclear(r);
    return false;
  }
  bool ok = true;
  for (int i = 0; ok && i < PQntuples(r); i++) {
    if (atoi(PQgetvalue(r, i, 2)) == target) continue; /* the common case after the first start: no DDL, no lock */
    char sql[768];
    snprintf(sql, sizeof sql, "ALTER %s %s ALTER COLUMN %s SET STATISTICS %d", what, PQgetvalue(r, i, 0),
             PQgetvalue(r, i, 1), target);
    ok = exec_ok(c, sql, "setting a statistics target", err);
  }
  PQclear(r);
  return ok;
}

bool cqrs_ferretdb_pg_lean_analyze(PGconn *c, const char *db, const char *collection, cqrs_error_t *err) {
  char *raw;
  if (!cqrs_ferretdb_pg_table(c, db, collection, &raw, err)) return false;
  bool ok = set_targets(c,
                        "SELECT format('%I.%I', $1::text, $2::text), '_jsonb', attstattarget FROM pg_attribute "
                        "WHERE attrelid = to_regclass(format('%I.%I', $1::text, $2::text)) AND attname = '_jsonb'",
                        db, raw, "TABLE", 0, err) &&
            /* every expression column of every index on it (all of ours and FerretDB's are) */
            set_targets(c,
                        "SELECT format('%I.%I', n.nspname, ic.relname), a.attnum, a.attstattarget FROM pg_index i "
                        "JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace "
                        "JOIN pg_attribute a ON a.attrelid = i.indexrelid AND a.attnum > 0 "
                        "WHERE i.indrelid = to_regclass(format('%I.%I', $1::text, $2::text)) "
                        "AND i.indkey[a.attnum - 1] = 0",
                        db, raw, "INDEX", CQRS_FERRETDB_PG_INDEX_STATISTICS, err);
  free(raw);
  return ok;
}

bool cqrs_ferretdb_pg_monotonic(PGconn *c, const char *db, const char *collection, const char *field,
                                cqrs_error_t *err) {
  char *raw;
  if (!cqrs_ferretdb_pg_table(c, db, collection, &raw, err)) return false;
  char name[40];
  uint64_t h = fnv1a("monotonic", field);
  snprintf(name, sizeof name, "cqrs_guard_%016llx", (unsigned long long)h);
  if (has_trigger(c, db, raw, name)) { /* the common case: no DDL, no lock */
    free(raw);
    return true;
  }
  char *schema = PQescapeIdentifier(c, db, strlen(db));
  char *tbl = PQescapeIdentifier(c, raw, strlen(raw));
  char *f = PQescapeLiteral(c, field, strlen(field));
  bool ok = schema && tbl && f;
  if (!ok) cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, "FERRETDB_PG_URI", "PostgreSQL: %s", PQerrorMessage(c));
  char sql[1536];
  /* one DDL writer at a time: CREATE OR REPLACE of one function by two
   * sessions at once fails ("tuple concurrently updated") */
  snprintf(sql, sizeof sql, "BEGIN; SELECT pg_advisory_xact_lock(%lld)", (long long)(h >> 1));
  ok = ok && exec_ok(c, sql, "locking to create a version guard", err);
  if (ok) {
    snprintf(sql, sizeof sql,
             "CREATE OR REPLACE FUNCTION %s.%s() RETURNS trigger LANGUAGE plpgsql AS $cqrs$\n"
             "BEGIN\n"
             "  IF jsonb_typeof(NEW._jsonb->%s) = 'number' AND jsonb_typeof(OLD._jsonb->%s) = 'number'\n"
             "     AND (NEW._jsonb->>%s)::numeric < (OLD._jsonb->>%s)::numeric THEN\n"
             "    RETURN NULL; /* an older version: the row keeps the newer one */\n"
             "  END IF;\n"
             "  RETURN NEW;\n"
             "END $cqrs$",
             schema, name, f, f, f, f);
    ok = exec_ok(c, sql, "creating a version guard's function", err);
  }
  if (ok) {
    snprintf(sql, sizeof sql,
             "CREATE OR REPLACE TRIGGER %s BEFORE UPDATE ON %s.%s FOR EACH ROW EXECUTE FUNCTION %s.%s()", name, schema,
             tbl, schema, name);
    ok = exec_ok(c, sql, "creating a version guard's trigger", err);
  }
  if (schema && tbl && f) {
    PGresult *x = PQexec(c, ok ? "COMMIT" : "ROLLBACK");
    if (ok && PQresultStatus(x) != PGRES_COMMAND_OK) {
      cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, "FERRETDB_PG_URI", "PostgreSQL, creating a version guard: %s",
                     PQerrorMessage(c));
      ok = false;
    }
    PQclear(x);
  }
  PQfreemem(schema);
  PQfreemem(tbl);
  PQfreemem(f);
  free(raw);
  return ok;
}
