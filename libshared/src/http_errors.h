/* evhttp's own error answers in JSON (internal to libshared). libevent 2.1
 * answers some requests itself, before any callback of ours runs: a request
 * head past its size bound (413), a request line or header it cannot parse
 * (400), and answers them with an HTML page it writes straight to the
 * connection. It has no hook for that page (evhttp_set_errorcb came in 2.2),
 * so the server gives each connection a bufferevent whose output is watched:
 * a complete libevent error page is replaced, before a byte of it is sent, by
 * the same status with a JSON body in the shape of every other error
 * ({"error": ...}). Every other answer passes untouched. */
#ifndef CQRS_HTTP_ERRORS_H
#define CQRS_HTTP_ERRORS_H

#include <event2/bufferevent.h>
#include <event2/event.h>

/* evhttp_set_bevcb callback (arg unused): a socket bufferevent whose output
 * is watched as above. NULL when out of memory (evhttp then drops the
 * connection). */
struct bufferevent *http_errors_bev_cb(struct event_base *base, void *arg);

#endif
