/*
 * actors/transport.h - how the runtime reaches other nodes. Never installed.
 *
 * The runtime never calls the network itself. A system holds at most one
 * transport: a static const table of functions and a context pointer, which
 * a network layer (actors/remote/, on skald_remote_start) installs, in the
 * way nng's transports and SQLite's VFS plug in. Without one, every message
 * to another node is a dead letter (SKALD_ENODEDOWN), so that a program that
 * uses only actors links without the network layer and its libraries.
 *
 * Message types are process-wide, not per system, so a layer's built-in type
 * is not part of the table: the layer installs it with skald__type_install
 * (actors/layer.h) at one of the ids the runtime reserves for built-in
 * types.
 */
#ifndef SKALD_ACTORS_TRANSPORT_H
#define SKALD_ACTORS_TRANSPORT_H

#include "actors/internal.h"

typedef struct skald__transport_s {
	/* The transport's name, for log lines ("tcp"). */
	const char *name;

	/*
	 * Sends e to `to`, an actor of another node (to.node is neither 0 nor
	 * this system's). Called on any thread: scheduler threads and threads
	 * outside the system alike; must not block. Returns 0 when it consumed
	 * e: queued for the wire (e freed, and its payload with it) or disposed
	 * of with skald__env_dispose (e.g. SKALD_ENODEDOWN for a node that is
	 * not connected). Returns a negative code when it did not consume e,
	 * which the caller then still owns: SKALD_EQUEUEFULL, SKALD_ENOCODEC,
	 * SKALD_EENCODE, SKALD_EPROTO (larger than a frame), SKALD_ENOMEM.
	 */
	int (*send)(void *ctx, skald_ref_t to, skald__env_t *e);

	/*
	 * Stops the transport and frees ctx. Called once, by skald_system_stop
	 * on the thread that stops the system, after every scheduler thread has
	 * been joined (no send can run any more); blocks until the transport's
	 * own threads have ended. The system never uses ctx afterwards.
	 */
	void (*stop)(void *ctx);
} skald__transport_t;

/*
 * Installs tr with its context ctx on sys; both are borrowed until tr->stop
 * runs (tr must outlive the system: a static const table). Safe from any
 * thread; senders see ctx once they see tr. Errors: SKALD_EINVAL when a
 * transport is already installed (then ctx stays the caller's).
 */
int skald__transport_install(skald_system_t *sys, const skald__transport_t *tr, void *ctx);

/* The context installed with tr on sys, or NULL when tr is not the
 * transport of sys. Safe from any thread. */
void *skald__transport_ctx(const skald_system_t *sys, const skald__transport_t *tr);

#endif /* SKALD_ACTORS_TRANSPORT_H */
