/*
 * tests/soak/node.c - one node of the soak (scripts/soak.sh): a system on
 * the journal it is given, running the entities it owns under steady load,
 * and writing down every event the journal acknowledged.
 *
 * Usage: soak-node JOURNAL_URI INDEX NODES ENTITIES RATE ACK_FILE
 *   The node owns the entities "soak-I" with I % NODES == INDEX (until the
 *   cluster shards entities, the nodes split them among themselves this
 *   way), spawns them all, and sends RATE commands a second, spread over
 *   them at random. Each command persists one event {"v": N}, N being the
 *   entity's seq after it: a history that forked or lost an event shows as
 *   an event whose v is not its seq. Each acknowledged event is appended to
 *   ACK_FILE as "PERSISTENCE_ID SEQ\n" (one write(2) each, after the journal
 *   confirmed it: a SIGKILL never loses a line of an acknowledged event).
 *
 * An entity stops when a write fails or its recovery fails (the database
 * restarts, the connection is lost): the node's keeper watches every entity
 * and spawns it again after a back-off (250 ms doubling to 4 s, per
 * entity), so that the node rides out a database restart by itself. SIGTERM
 * stops the node gracefully; SIGKILL is what the soak sends.
 *
 * Every 10 s the node prints one line: acknowledged events, failed writes,
 * entities restarted.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <skald/entity.h>
#include <skald/skald.h>

static uint32_t T_ADD;
static int ack_fd = -1;
static atomic_long acked, failed, restarts;
static volatile sig_atomic_t stopping;

/* ------------------------------------------------------------------------ */
/* The entity                                                                */

typedef struct {
	long count;
	long bad; /* events whose v was not their seq */
} soak_t;

static int soak_apply(void *state, const skald_event_t *ev)
{
	soak_t *s = state;
	json_int_t v = json_integer_value(json_object_get(ev->data, "v"));
	s->count++;
	if (v != (json_int_t)ev->seq || (uint64_t)s->count != ev->seq) {
		s->bad++;
		fprintf(stderr, "soak-node: %s seq %llu holds v %lld after %ld events\n",
		        ev->persistence_id, (unsigned long long)ev->seq, (long long)v, s->count);
	}
	return 0;
}

static void persisted(skald_actor_t *self, void *state, int status, void *arg)
{
	if (status != 0) {
		atomic_fetch_add(&failed, 1);
		return;
	}
	char line[160];
	int n = snprintf(line, sizeof line, "%s %llu\n", skald_entity_pid(self),
	                 (unsigned long long)skald_entity_seq(self));
	if (write(ack_fd, line, (size_t)n) != n)
		abort(); /* the soak's record of acknowledgements is its point */
	atomic_fetch_add(&acked, 1);
}

static int soak_command(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	if (msg->type != T_ADD)
		return 0;
	json_t *data = json_pack("{sI}", "v", (json_int_t)(skald_entity_seq(self) + 1));
	int rc = skald_persist(self, "soak.added", 1, data, persisted, NULL);
	if (rc < 0)
		json_decref(data);
	return 0;
}

static int soak_snapshot(const void *state, json_t **out)
{
	const soak_t *s = state;
	*out = json_pack("{sI}", "count", (json_int_t)s->count);
	return *out ? 0 : SKALD_ENOMEM;
}

static int soak_restore(void *state, const json_t *snap, int version)
{
	soak_t *s = state;
	s->count = (long)json_integer_value(json_object_get(snap, "count"));
	return 0;
}

static const skald_entity_type_t soak_type = {
        .name = "soak",
        .state_size = sizeof(soak_t),
        .command = soak_command,
        .apply = soak_apply,
        .snapshot = soak_snapshot,
        .restore = soak_restore,
        .snapshot_every = 100,
};

/* ------------------------------------------------------------------------ */
/* The keeper: spawns, loads and restarts the node's entities                */

typedef struct {
	skald_ref_t ref;
	unsigned backoff_ms; /* of the next restart */
	int down;
} slot_t;

typedef struct {
	int index, nodes, entities;
	unsigned per_tick;
	slot_t *slots; /* the owned entities, slots[k] is soak-(k * nodes + index) */
	int n;
	uint64_t seed;
} keeper_t;

typedef struct {
	int index, nodes, entities;
	unsigned rate;
} keeper_arg_t;

static int spawn_one(skald_actor_t *self, keeper_t *k, int slot)
{
	char id[32];
	snprintf(id, sizeof id, "%d", slot * k->nodes + k->index);
	int rc = skald_entity_spawn(skald_actor_system(self), &soak_type, id, NULL,
	                            &k->slots[slot].ref);
	if (rc == 0)
		rc = skald_watch(self, k->slots[slot].ref);
	k->slots[slot].down = rc != 0;
	return rc;
}

static void respawn(skald_actor_t *self, void *state, void *arg)
{
	keeper_t *k = state;
	int slot = (int)(intptr_t)arg;
	if (spawn_one(self, k, slot) != 0) {
		slot_t *s = &k->slots[slot];
		skald_timer_start(self, s->backoff_ms, 0, respawn, arg, NULL);
		s->backoff_ms = s->backoff_ms * 2 > 4000 ? 4000 : s->backoff_ms * 2;
	}
}

static void tick(skald_actor_t *self, void *state, void *arg)
{
	keeper_t *k = state;
	for (unsigned i = 0; i < k->per_tick; i++) {
		k->seed = k->seed * 6364136223846793005ull + 1442695040888963407ull;
		slot_t *s = &k->slots[(k->seed >> 33) % (uint64_t)k->n];
		if (!s->down)
			skald_tell(self, s->ref, T_ADD, NULL);
	}
}

static int keeper_init(skald_actor_t *self, void *state, void *arg)
{
	keeper_t *k = state;
	const keeper_arg_t *a = arg;
	k->index = a->index;
	k->nodes = a->nodes;
	k->entities = a->entities;
	k->n = (a->entities - a->index + a->nodes - 1) / a->nodes;
	k->seed = (uint64_t)getpid() * 2654435761u;
	/* 50 ticks a second. */
	k->per_tick = a->rate / 50 ? a->rate / 50 : 1;
	k->slots = calloc((size_t)k->n, sizeof *k->slots);
	if (k->slots == NULL)
		return SKALD_ENOMEM;
	for (int i = 0; i < k->n; i++) {
		k->slots[i].backoff_ms = 250;
		int rc = spawn_one(self, k, i);
		if (rc < 0)
			return rc;
	}
	return skald_timer_start(self, 20, 20, tick, NULL, NULL);
}

static int keeper_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	keeper_t *k = state;
	if (msg->type != SKALD_TYPE_DOWN || stopping)
		return 0;
	const skald_down_t *d = msg->payload;
	for (int i = 0; i < k->n; i++) {
		slot_t *s = &k->slots[i];
		if (s->down || s->ref.actor != d->ref.actor ||
		    s->ref.incarnation != d->ref.incarnation)
			continue;
		s->down = 1;
		atomic_fetch_add(&restarts, 1);
		skald_timer_start(self, s->backoff_ms, 0, respawn, (void *)(intptr_t)i, NULL);
		s->backoff_ms = s->backoff_ms * 2 > 4000 ? 4000 : s->backoff_ms * 2;
		break;
	}
	return 0;
}

static void keeper_stop(skald_actor_t *self, void *state, int reason)
{
	keeper_t *k = state;
	free(k->slots);
	k->slots = NULL;
}

static const skald_behavior_t keeper = {
        .state_size = sizeof(keeper_t),
        .init = keeper_init,
        .receive = keeper_receive,
        .stop = keeper_stop,
};

/* ------------------------------------------------------------------------ */

static void on_term(int sig)
{
	stopping = 1;
}

int main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr,
		        "usage: soak-node JOURNAL_URI INDEX NODES ENTITIES RATE ACK_FILE\n");
		return 2;
	}
	keeper_arg_t a = {atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), (unsigned)atoi(argv[5])};
	if (a.nodes < 1 || a.index < 0 || a.index >= a.nodes || a.entities < a.nodes ||
	    a.rate < 1) {
		fprintf(stderr, "soak-node: bad INDEX, NODES, ENTITIES or RATE\n");
		return 2;
	}
	ack_fd = open(argv[6], O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (ack_fd < 0) {
		perror(argv[6]);
		return 2;
	}
	static const skald_msgtype_t add_type = {.name = "soak.add"};
	char name[32];
	snprintf(name, sizeof name, "soak-node-%d", a.index);
	skald_config_t cfg = {.threads = 2, .name = name, .journal = argv[1]};
	skald_system_t *sys;
	skald_ref_t k;
	if (skald_type_register(&add_type, &T_ADD) < 0 || skald_system_new(&cfg, &sys) < 0 ||
	    skald_spawn(sys, &keeper, &a, NULL, &k) < 0) {
		fprintf(stderr, "soak-node: cannot start\n");
		return 1;
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	while (!stopping) {
		for (int i = 0; i < 100 && !stopping; i++)
			usleep(100000);
		printf("node %d: %ld acknowledged, %ld failed, %ld restarts\n", a.index,
		       atomic_load(&acked), atomic_load(&failed), atomic_load(&restarts));
		fflush(stdout);
	}
	skald_system_stop(sys);
	close(ack_fd);
	return 0;
}
