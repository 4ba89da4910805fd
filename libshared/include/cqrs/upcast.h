/* Upcasting: an event's data as written at an earlier schema version, brought
 * up to the contract's current version of its type (cqrs/events.h) before
 * anything reads it. Every reader of the log goes through cqrs_upcast (or
 * cqrs_event_upcast): the projections (live, rebuild, replay, time travel,
 * through cqrs_projection_dispatch), command-svc's restore from the event log,
 * a dead letter's redrive and the sagas, so a reader only ever decodes the
 * current version.
 *
 * The upcasters are declarative, in one const table (cqrs_upcasters, in
 * libshared/src/events/upcasters.c, next to the field lists they connect):
 * each row is one step of one vN -> vN+1 evolution, of one of three kinds:
 *
 *   ADD      a field with a default (a string: OrderCreated v1 -> v2 adds
 *            currency "USD"); a field the data already has is kept
 *   RENAME   a field (CustomerEmailUpdated v1 -> v2: newEmail -> email),
 *            keeping its place and value
 *   DERIVE   a field computed from the data so far by a function
 *
 * The rows of one vN -> vN+1 run in table order; a version bump with no row
 * changes nothing in the data. Pure: no I/O, no globals but the const table. */
#ifndef CQRS_UPCAST_H
#define CQRS_UPCAST_H

#include "cqrs/error.h"
#include "cqrs/event.h"
#include "cqrs/events.h"

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum { CQRS_UPCAST_ADD, CQRS_UPCAST_RENAME, CQRS_UPCAST_DERIVE } cqrs_upcast_kind_t;

/* One step from version from->version of a type to the next (to: same type,
 * version + 1). */
typedef struct {
  const cqrs_event_type_t *from, *to;
  cqrs_upcast_kind_t kind;
  const char *field;     /* its name in to's data: the field added, renamed to or derived */
  const char *old_field; /* RENAME: its name in from's data; else NULL */
  const char *value;     /* ADD: the default (a string field; other types: DERIVE); else NULL */
  /* DERIVE: appends field to out, computed from data (the event data at the
   * step's start). False with err when data cannot give it. Else NULL. */
  bool (*derive)(const bson_t *data, const char *field, bson_t *out, cqrs_error_t *err);
} cqrs_upcast_step_t;

/* The contract's upcasters, in order, and how many. */
extern const cqrs_upcast_step_t cqrs_upcasters[];
extern const size_t cqrs_upcasters_n;

/* The result of an upcast: caller storage, release with cqrs_upcast_cleanup
 * (also after a failure). */
typedef struct {
  const cqrs_event_type_t *type; /* the type at its current version */
  const bson_t *data;            /* the data at that version: the input itself
                                    when it was current (borrowed: valid while
                                    the input lives), else the document below */
  bson_t owned;                  /* private: the upcast document */
  bool has_owned;
} cqrs_upcast_t;

/* Brings data, the data of an event of type name at schema version, up to
 * the current version of name: out->data is it, out->type its descriptor.
 * Data already current is not copied. False with CQRS_ERR_INVALID (nothing to
 * read; a reader dead-letters or refuses the event) when the contract does not
 * know the type (field "ce_type") or that version of it (field
 * "ce_schemaversion": below 1, above the current, or a past version it lost),
 * or when a DERIVE step fails; the message names the type and the version. */
bool cqrs_upcast(const char *name, int version, const bson_t *data, cqrs_upcast_t *out, cqrs_error_t *err);

/* cqrs_upcast over steps[0..n) instead of the contract's table (tests). */
bool cqrs_upcast_with(const cqrs_upcast_step_t *steps, size_t n, const char *name, int version,
                      const bson_t *data, cqrs_upcast_t *out, cqrs_error_t *err);

/* Frees what u owns. Safe on a zeroed u and twice. */
void cqrs_upcast_cleanup(cqrs_upcast_t *u);

/* cqrs_upcast on a decoded event, in place: on success ev->data is the data at
 * the current version (replaced only when it was older) and
 * ev->schema_version the current version; ce_dataschema (ev->dataschema)
 * still says what the record said. On failure ev is unchanged. */
bool cqrs_event_upcast(cqrs_event_t *ev, cqrs_error_t *err);

#endif
