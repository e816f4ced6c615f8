/*
 * journal/writer.h - each scheduler thread's journal handle and the write
 * batching of its entities. Never installed.
 *
 * Entities queue their atomic writes here instead of calling the journal
 * themselves. The writer sends everything queued as one append operation
 * (one skald_op_t it owns and reuses, pointing at the queued records' own
 * writes: one round trip, one transaction), keeps at most one in flight, and
 * while it is in flight collects the next batch: the slower the store, the
 * larger the batches. Each entity has at most one write in flight, so its
 * own writes are confirmed in order.
 */
#ifndef SKALD_JOURNAL_WRITER_H
#define SKALD_JOURNAL_WRITER_H

#include "actors/layer.h"
#include "skald/journal.h"

typedef struct skald__writer_s skald__writer_t;

/* One queued atomic write. `w` goes to the store as it is (the journal
 * numbers its events and sets its status); `done` runs on the thread's loop
 * exactly once with the write's status, and owns the record from then on. */
typedef struct skald__pwrite_s {
	struct skald__pwrite_s *next;
	skald_write_t w;
	void (*done)(struct skald__pwrite_s *pw, int status);
} skald__pwrite_t;

/* The writer of self's thread, opened on first use on the system's journal
 * (see skald__journal_uri). NULL with *err set (and a log line) if the
 * journal cannot be opened. Owner thread of self. */
skald__writer_t *skald__writer_get(skald_actor_t *self, int *err);

/* The journal handle behind w, for reads and snapshots. */
skald_journal_t *skald__writer_journal(skald__writer_t *w);

/* Queues pw; it is sent with the next batch. Never fails. */
void skald__writer_submit(skald__writer_t *w, skald__pwrite_t *pw);

#endif /* SKALD_JOURNAL_WRITER_H */
