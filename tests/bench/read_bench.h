/* What the parts of read_bench (tests/bench/read_bench.c, read_bench_lists.c,
 * read_bench_http.c) share. A benchmark driver, not a library: every
 * function exits the process on a setup error it cannot report otherwise. */
#ifndef READ_BENCH_H
#define READ_BENCH_H

#include <mongoc/mongoc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cqrs/util.h"

/* Aggregate ids, one a line in a file (read_bench seed-events writes it). */
typedef struct {
  char (*id)[CQRS_UUID_LEN];
  size_t n; /* at least 1 */
} rb_ids_t;

/* Reads path; exits on an unreadable or empty file. The caller frees ids.id. */
rb_ids_t rb_read_ids(const char *path);
/* The fields of user i: the same in the seeded event and in the raw writes. */
void rb_user_fields(size_t i, char email[64], char name[64]);
/* A pool of at most max clients on uri (5 s server selection unless the URI
 * says otherwise); exits on a bad URI. The caller destroys it. */
mongoc_client_pool_t *rb_pool_new(const char *uri, int max);

/* The subcommands (usage in read_bench.c); each prints one line of
 * key=value results and returns the process exit status. */
int rb_seed_lists(const char *uri, const char *db, const char *idpath, long orders, long customers,
                  const char *outdir);
int rb_explain(const char *uri, const char *db, const char *shape, const char *value);
/* pg_uri NULL: the store's find (raw-list); else query-svc's keyset path
 * over that PostgreSQL (raw-keyset). */
int rb_raw_list(const char *uri, const char *pg_uri, const char *db, const char *shape, const char *pathfile,
                int threads, int seconds);
int rb_explain_keyset(const char *pg_uri, const char *db, const char *shape, const char *value);
int rb_wait_applied(int port, long count, int timeout_s);
int rb_visible(int cmd_port, int query_port, int proj_port, int rate, int seconds, int wait_ms);

#endif
