/*
 * tests/sharding/member.c - what a member process of test_procs.c runs
 * (the hooks of tests/cluster/proc.h): a region of ctr on the journal
 * SKALD_JOURNAL names, and a client that asks entities to add, keeping the
 * highest total each one acknowledged.
 *
 * Settings from the environment: SKALD_SH_REMEMBER (0 or 1), SKALD_SH_SHARDS,
 * SKALD_SH_RECOVERIES (max_recoveries), SKALD_SH_TYPE (the entity type's
 * name, "ctr" by default).
 * Commands (answers are "x " lines):
 *   shstats             -> "stats SHARDS LIVE STARTED TAKEOVERS CONFLICTS RESTARTS DROPPED"
 *   owner ID            -> "owner NODE"
 *   load PREFIX N W     starts the client: t_add 1 to PREFIX-0 .. PREFIX-(N-1) in
 *                       turn, W asks in flight -> "loading"
 *   since               forgets which entities answered -> "since"
 *   count               -> "count K": entities that answered since then
 *   unload FILE         stops the client, waits for its asks, writes "I TOTAL"
 *                       per entity (the highest acknowledged total) -> "unloaded RC"
 *   askone ID MS        asks entity ID to add 1, waiting at most MS ms
 *                       -> "askone RC" (blocks the member's commands meanwhile)
 *   cut NODE            drops all traffic to and from node NODE (hex) on this
 *                       side (the transport's fault hook) -> "cut RC"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/remote/remote_int.h"
#include "tests/cluster/proc.h"
#include "tests/sharding/ctr.h"

#define MAX_LOAD 4096

static skald_sharding_t *region;

/* The client's record, shared with the command thread (and with
 * bench/failover.c, which runs the same client). */
static struct {
	char prefix[128];
	int n, w;
	atomic_int stop;
	atomic_int inflight;
	atomic_ullong acked[MAX_LOAD];
	atomic_int since[MAX_LOAD];
	/* The last mark ("since"), and for each entity how long after it
	 * the first ask sent after it was answered, plus 1 (0: not yet). */
	atomic_ullong mark;
	atomic_ullong first_ms[MAX_LOAD];
	int next;
} load;

/* One ask in flight: which entity, sent when. */
typedef struct ask_rec_s {
	int i;
	uint64_t sent;
} ask_rec_t;

/* The PostgreSQL store registers itself from a constructor, which may run
 * after the one that runs this member (tests/cluster/proc.c): register it
 * here first (a second registration is refused, harmlessly). */
void skald__store_postgres_register(void);

static unsigned env_num(const char *name, unsigned dflt)
{
	const char *s = getenv(name);
	return s != NULL && *s != '\0' ? (unsigned)strtoul(s, NULL, 10) : dflt;
}

static void ask_next(skald_actor_t *self);

static void answered(skald_actor_t *self, void *state, int status, skald_msg_t *reply, void *arg)
{
	ask_rec_t rec = *(ask_rec_t *)arg;
	free(arg);
	if (status == 0) {
		uint64_t total = V(reply->payload);
		unsigned long long seen = atomic_load(&load.acked[rec.i]);
		while (total > seen &&
		       !atomic_compare_exchange_weak(&load.acked[rec.i], &seen, total))
			;
		uint64_t mark = atomic_load(&load.mark);
		if (rec.sent >= mark) {
			atomic_store(&load.since[rec.i], 1);
			unsigned long long none = 0;
			atomic_compare_exchange_strong(&load.first_ms[rec.i], &none,
			                               proc_now_ms() - mark + 1);
		}
	}
	atomic_fetch_sub(&load.inflight, 1);
	ask_next(self);
}

static void retry(skald_actor_t *self, void *state, void *arg)
{
	ask_next(self);
}

static void ask_next(skald_actor_t *self)
{
	if (atomic_load(&load.stop))
		return;
	int i = load.next;
	load.next = (load.next + 1) % load.n;
	char id[160];
	snprintf(id, sizeof id, "%s-%d", load.prefix, i);
	ask_rec_t *rec = malloc(sizeof *rec);
	if (rec != NULL) {
		*rec = (ask_rec_t){i, proc_now_ms()};
		atomic_fetch_add(&load.inflight, 1);
		if (skald_sharding_ask(region, self, id, t_add, U(1), 1000, answered, rec) == 0)
			return;
		atomic_fetch_sub(&load.inflight, 1);
		free(rec);
	}
	/* Refused here (too many held, say): this slot tries again soon. */
	skald_timer_start(self, 10, 0, retry, NULL, NULL);
}

static int client_init(skald_actor_t *self, void *state, void *arg)
{
	for (int k = 0; k < load.w; k++)
		ask_next(self);
	return 0;
}

static int client_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	return 0;
}

static const skald_behavior_t client_behavior = {.init = client_init, .receive = client_receive};

/* Forgets who answered; from now on, answers to asks sent after this
 * moment count. */
static void load_mark(void)
{
	for (int i = 0; i < MAX_LOAD; i++) {
		atomic_store(&load.since[i], 0);
		atomic_store(&load.first_ms[i], 0);
	}
	atomic_store(&load.mark, proc_now_ms());
}

/* Stops the client and waits (at most 10 s) for its asks in flight;
 * 0 if none is left. */
static int load_stop(void)
{
	atomic_store(&load.stop, 1);
	uint64_t end = proc_now_ms() + 10000;
	while (atomic_load(&load.inflight) > 0 && proc_now_ms() < end)
		usleep(1000);
	return atomic_load(&load.inflight) == 0 ? 0 : -1;
}

static int unload(const char *file)
{
	int rc = load_stop();
	FILE *f = fopen(file, "w");
	if (f == NULL)
		return -1;
	for (int i = 0; i < load.n; i++)
		fprintf(f, "%d %llu\n", i, (unsigned long long)atomic_load(&load.acked[i]));
	return fclose(f) == 0 ? rc : -1;
}

void proc_hook_start(skald_system_t *sys)
{
	static skald_entity_type_t type;
	type = ctr_type;
	if (getenv("SKALD_SH_TYPE") != NULL)
		type.name = getenv("SKALD_SH_TYPE");
	skald_sharding_config_t cfg = ctr_config();
	cfg.type = &type;
	cfg.shards = env_num("SKALD_SH_SHARDS", 32);
	cfg.remember = (int)env_num("SKALD_SH_REMEMBER", 0);
	cfg.max_recoveries = env_num("SKALD_SH_RECOVERIES", 0);
	skald__store_postgres_register();
	int rc = ctr_register();
	if (rc == 0)
		rc = skald_sharding_start(sys, &cfg, &region);
	if (rc < 0)
		proc_hook_reply("failed %d", rc);
}

int proc_hook_command(skald_system_t *sys, const char *line)
{
	char a[128];
	int n, w;
	if (strcmp(line, "shstats") == 0) {
		skald_sharding_stats_t st = {0};
		skald_sharding_stats(region, &st);
		proc_hook_reply("stats %llu %llu %llu %llu %llu %llu %llu",
		                (unsigned long long)st.shards_owned,
		                (unsigned long long)st.live_entities,
		                (unsigned long long)st.started, (unsigned long long)st.takeovers,
		                (unsigned long long)st.conflicts, (unsigned long long)st.restarts,
		                (unsigned long long)st.dropped);
	} else if (sscanf(line, "owner %127s", a) == 1) {
		uint64_t node = 0;
		skald_sharding_owner(region, a, &node);
		proc_hook_reply("owner %llx", (unsigned long long)node);
	} else if (sscanf(line, "load %63s %d %d", a, &n, &w) == 3 && n > 0 && n <= MAX_LOAD) {
		snprintf(load.prefix, sizeof load.prefix, "%s", a);
		load.n = n;
		load.w = w;
		skald_ref_t ref;
		proc_hook_reply("loading %d", skald_spawn(sys, &client_behavior, NULL, NULL, &ref));
	} else if (strcmp(line, "since") == 0) {
		load_mark();
		proc_hook_reply("since");
	} else if (strcmp(line, "count") == 0) {
		int k = 0;
		for (int i = 0; i < load.n; i++)
			k += atomic_load(&load.since[i]);
		proc_hook_reply("count %d", k);
	} else if (sscanf(line, "unload %127s", a) == 1) {
		proc_hook_reply("unloaded %d", unload(a));
	} else if (sscanf(line, "askone %127s %d", a, &n) == 2) {
		uint32_t rt;
		void *rp;
		proc_hook_reply("askone %d", skald_sharding_system_ask(region, a, t_add, U(1),
		                                                       (uint64_t)n, &rt, &rp));
	} else if (sscanf(line, "cut %127s", a) == 1) {
		proc_hook_reply("cut %d", skald__net_fault_cut(sys, strtoull(a, NULL, 16), true));
	} else {
		return 0;
	}
	return 1;
}

void proc_hook_stop(skald_system_t *sys)
{
	atomic_store(&load.stop, 1);
	skald_sharding_stop(region);
	region = NULL;
}
