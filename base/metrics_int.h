/*
 * base/metrics_int.h - Skald's own metrics, for the layers that update them.
 * Never installed. The public side is skald/metrics.h; the list with the
 * meaning of each metric is in docs/OPERATIONS.md.
 */
#ifndef SKALD_BASE_METRICS_INT_H
#define SKALD_BASE_METRICS_INT_H

#include "skald/metrics.h"

/* The series that layers update as things happen. The runtime's counts of
 * messages, dead letters and actors are not here: the runtime keeps them
 * anyway, and they are read when the metrics are rendered (sources, below),
 * so that the hottest path does not count twice. */
typedef struct skald__metrics_s {
	skald_metric_t *mailbox;        /* skald_mailbox_messages */
	skald_metric_t *journal_write;  /* skald_journal_write_seconds */
	skald_metric_t *journal_batch;  /* skald_journal_batch_writes */
	skald_metric_t *journal_replay; /* skald_journal_replay_seconds */
	skald_metric_t *recovery;       /* skald_entity_recovery_seconds */
	skald_metric_t *write_failures; /* skald_journal_write_failures_total */
} skald__metrics_t;

/* Skald's metrics; every member is non-NULL once skald__metrics_init() has
 * returned (a failed registration leaves NULL, which updates ignore). */
extern skald__metrics_t skald__m;

/* Registers Skald's metrics once per process. Any thread, any number of
 * times; skald_system_new calls it. */
void skald__metrics_init(void);

/*
 * Sources: values an object keeps anyway (a system's messages processed,
 * dead letters and live actors), read at render time into the series bound
 * to each SKALD__SRC_* slot and summed over every attached source.
 */
enum {
	SKALD__SRC_MESSAGES = 1, /* skald_messages_processed_total */
	SKALD__SRC_DEAD_LETTERS, /* skald_dead_letters_total */
	SKALD__SRC_ACTORS,       /* skald_actors_alive */
	SKALD__SRC_N
};

typedef struct skald__msource_s {
	/* Adds the object's current values into v[SKALD__SRC_*] (v has
	 * SKALD__SRC_N entries). Called by the rendering thread under the
	 * registry's lock: it must not register metrics or block. */
	void (*read)(void *arg, double *v);
	void *arg;
	struct skald__msource_s *next; /* the registry's */
} skald__msource_t;

/* Attaches s (caller-owned; read and arg set) until removed. Any thread. */
void skald__metrics_source_add(skald__msource_t *s);
/* Detaches s, reading it one last time: the counters keep its final values
 * in their totals (a counter never goes down), the gauges lose its share.
 * Once this returns, read is never called again and s may be freed. */
void skald__metrics_source_remove(skald__msource_t *s);

/* The four per-peer series of the remote layer, registered (or found) for
 * the peer node id. Any thread. */
typedef struct skald__peer_metrics_s {
	skald_metric_t *frames_sent, *frames_received, *bytes_sent, *bytes_received;
} skald__peer_metrics_t;
void skald__peer_metrics(uint64_t node, skald__peer_metrics_t *out);
/* Counts frames of bytes bytes sent (sent true) or received; NULL p (a peer
 * not known yet, during the handshake): nothing. */
void skald__peer_count(skald__peer_metrics_t *p, bool sent, uint64_t frames, uint64_t bytes);

#endif /* SKALD_BASE_METRICS_INT_H */
