/*
 * tests/cluster/sim.c - the simulated network and clock (see sim.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

enum { EV_DELIVER = 1, EV_RESET, EV_WAKE };

struct sim_event_s {
	uint64_t t, seq;
	int kind, dst, src;
	uint64_t node; /* RESET: the node whose connection failed */
	uint8_t *buf;
	size_t len;
};

uint64_t sim_rand(sim_t *sim, uint64_t n)
{
	/* splitmix64 */
	uint64_t z = (sim->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return n ? z % n : z;
}

static int before(const sim_event_t *a, const sim_event_t *b)
{
	return a->t != b->t ? a->t < b->t : a->seq < b->seq;
}

static void push(sim_t *sim, sim_event_t ev)
{
	if (sim->nheap == sim->capheap) {
		sim->capheap = sim->capheap ? sim->capheap * 2 : 1024;
		sim->heap = realloc(sim->heap, sim->capheap * sizeof *sim->heap);
		cr_assert(sim->heap);
	}
	ev.seq = sim->evseq++;
	size_t i = sim->nheap++;
	while (i > 0 && before(&ev, &sim->heap[(i - 1) / 2])) {
		sim->heap[i] = sim->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	sim->heap[i] = ev;
}

static sim_event_t pop(sim_t *sim)
{
	sim_event_t top = sim->heap[0], last = sim->heap[--sim->nheap];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= sim->nheap)
			break;
		if (c + 1 < sim->nheap && before(&sim->heap[c + 1], &sim->heap[c]))
			c++;
		if (!before(&sim->heap[c], &last))
			break;
		sim->heap[i] = sim->heap[c];
		i = c;
	}
	if (sim->nheap)
		sim->heap[i] = last;
	return top;
}

static uint64_t delay(sim_t *sim)
{
	return sim->delay_min + sim_rand(sim, sim->delay_max - sim->delay_min + 1);
}

static int slot_of_addr(sim_t *sim, const char *addr)
{
	int i;
	if (sscanf(addr, "sim://%d", &i) != 1 || i < 0 || i >= sim->n)
		return -1;
	return i;
}

static void on_send(void *ctx, uint64_t node, const char *addr, const uint8_t *buf, size_t len)
{
	sim_node_t *src = ctx;
	sim_t *sim = src->sim;
	int d = slot_of_addr(sim, addr);
	sim->bytes += len;
	sim->msgs++;
	if (d < 0 || d == src->idx)
		return;
	sim_node_t *dst = &sim->nodes[d];
	if (dst->group != src->group)
		return;
	if (sim->loss > 0 && (double)sim_rand(sim, 1000000) < sim->loss * 1000000)
		return;
	if (dst->mode == SIM_CRASHED) {
		sim_event_t ev = {.t = sim->now + 2 * delay(sim), .kind = EV_RESET};
		ev.dst = src->idx;
		ev.node = node;
		push(sim, ev);
		return;
	}
	if (dst->mode != SIM_RUN)
		return;
	sim_event_t ev = {
	        .t = sim->now + delay(sim), .kind = EV_DELIVER, .dst = d, .src = src->idx};
	if (dst->slow_ms)
		ev.t += sim_rand(sim, dst->slow_ms + 1);
	ev.buf = malloc(len);
	cr_assert(ev.buf);
	memcpy(ev.buf, buf, len);
	ev.len = len;
	push(sim, ev);
}

static int slot_of_node(sim_t *sim, uint64_t node)
{
	for (int i = 0; i < sim->n; i++)
		if (sim->nodes[i].node == node)
			return i;
	return -1;
}

static void on_event(void *ctx, skald__cl_event_t ev, const skald__cl_rec_t *m, int reason)
{
	sim_node_t *me = ctx;
	sim_t *sim = me->sim;
	if (ev == SKALD__CL_EV_UNREACHABLE)
		me->unreachable++;
	if (ev == SKALD__CL_EV_UNREACHABLE && m->suspecter == me->node)
		me->raised++;
	if (ev == SKALD__CL_EV_REFUSED)
		me->refused = reason;
	if (ev == SKALD__CL_EV_REMOVED && m->node == me->node)
		me->removed_at = sim->now;
	if (ev != SKALD__CL_EV_DOWN)
		return;
	sim->downs++;
	if (m->node == me->node) {
		me->self_down_at = sim->now;
		return;
	}
	int s = slot_of_node(sim, m->node);
	if (s >= 0 && !sim->down_at[me->idx][s])
		sim->down_at[me->idx][s] = sim->now;
}

static void make_member(sim_t *sim, int i)
{
	sim_node_t *nd = &sim->nodes[i];
	skald__cl_config_t cfg = sim->base;
	/* Node ids from the seed: random, distinct, never 0. */
	nd->node = sim_rand(sim, 0) | 1;
	cfg.node = nd->node;
	cfg.addr = nd->addr;
	cfg.seed = sim_rand(sim, 0);
	cfg.send = on_send;
	cfg.event = on_event;
	cfg.ctx = nd;
	int rc = skald__cl_new(&cfg, &nd->cl);
	cr_assert(rc == 0, "skald__cl_new: %d", rc);
	nd->mode = SIM_RUN;
	nd->wake_at = SIM_NEVER;
	nd->self_down_at = nd->removed_at = 0;
	nd->refused = 0;
}

sim_t *sim_new(uint64_t seed, int n)
{
	cr_assert(n > 0 && n <= SIM_MAX);
	const char *env = getenv("SIM_SEED");
	sim_t *sim = calloc(1, sizeof *sim);
	cr_assert(sim);
	sim->seed = env ? strtoull(env, NULL, 0) : seed;
	sim->rng = sim->seed;
	sim->delay_min = 1;
	sim->delay_max = 10;
	sim->n = n;
	for (int i = 0; i < n; i++) {
		sim->nodes[i].sim = sim;
		sim->nodes[i].idx = i;
		snprintf(sim->nodes[i].addr, sizeof sim->nodes[i].addr, "sim://%d", i);
		sim->nodes[i].mode = SIM_GONE;
		sim->nodes[i].wake_at = SIM_NEVER;
	}
	return sim;
}

void sim_free(sim_t *sim)
{
	for (int i = 0; i < sim->n; i++)
		skald__cl_free(sim->nodes[i].cl);
	for (size_t i = 0; i < sim->nheap; i++)
		free(sim->heap[i].buf);
	free(sim->heap);
	free(sim);
}

static void reschedule(sim_t *sim, sim_node_t *nd)
{
	if (nd->mode != SIM_RUN || !nd->cl)
		return;
	uint64_t d = skald__cl_next_deadline(nd->cl);
	if (d == UINT64_MAX)
		return;
	if (d < sim->now)
		d = sim->now;
	if (d < nd->wake_at) {
		nd->wake_at = d;
		push(sim, (sim_event_t){.t = d, .kind = EV_WAKE, .dst = nd->idx});
	}
}

void sim_join(sim_t *sim, int i, int seed_member)
{
	sim_node_t *nd = &sim->nodes[i];
	if (!nd->cl)
		make_member(sim, i);
	const char *seeds[1] = {seed_member >= 0 ? sim->nodes[seed_member].addr : NULL};
	int rc = skald__cl_join(nd->cl, seeds, seed_member >= 0 ? 1 : 0, sim->now);
	cr_assert(rc == 0, "join: %d", rc);
	reschedule(sim, nd);
}

void sim_restart(sim_t *sim, int i)
{
	sim_node_t *nd = &sim->nodes[i];
	uint64_t old = nd->node;
	skald__cl_free(nd->cl);
	nd->cl = NULL;
	make_member(sim, i);
	nd->old_node = old;
	for (int o = 0; o < sim->n; o++)
		sim->down_at[o][i] = 0;
}

void sim_set_mode(sim_t *sim, int i, sim_mode_t mode)
{
	sim_node_t *nd = &sim->nodes[i];
	nd->mode = mode;
	nd->wake_at = SIM_NEVER;
	reschedule(sim, nd);
}

static void step(sim_t *sim, sim_event_t ev)
{
	sim_node_t *nd = &sim->nodes[ev.dst];
	sim->now = ev.t;
	if (nd->mode != SIM_RUN || !nd->cl) {
		free(ev.buf);
		return;
	}
	switch (ev.kind) {
	case EV_DELIVER: {
		const char *why = NULL;
		int rc = skald__cl_receive(nd->cl, sim->nodes[ev.src].addr, ev.buf, ev.len,
		                           sim->now, &why);
		if (rc)
			sim->protoerr++;
		free(ev.buf);
		break;
	}
	case EV_RESET:
		skald__cl_conn_reset(nd->cl, ev.node, sim->now);
		break;
	case EV_WAKE:
		if (ev.t != nd->wake_at)
			return;
		nd->wake_at = SIM_NEVER;
		skald__cl_tick(nd->cl, sim->now);
		break;
	}
	reschedule(sim, nd);
}

void sim_run(sim_t *sim, uint64_t ms)
{
	uint64_t end = sim->now + ms;
	while (sim->nheap && sim->heap[0].t <= end)
		step(sim, pop(sim));
	sim->now = end;
}

int sim_run_until(sim_t *sim, uint64_t limit, int (*done)(sim_t *, void *), void *arg)
{
	uint64_t end = sim->now + limit;
	while (sim->now < end) {
		if (done(sim, arg))
			return 1;
		sim_run(sim, 10);
	}
	return done(sim, arg);
}

int sim_converged(sim_t *sim, int from, int to)
{
	static skald__cl_rec_t a[SIM_MAX], b[SIM_MAX];
	int ref = -1;
	/* Digests first: cheap, and equal in the end when views are. */
	for (int i = from; i < to; i++) {
		sim_node_t *nd = &sim->nodes[i];
		if (nd->mode != SIM_RUN || !nd->cl || skald__cl_stopped(nd->cl))
			continue;
		if (skald__cl_self(nd->cl)->up_number == 0)
			return 0;
		if (ref < 0)
			ref = i;
		else if (skald__cl_digest(nd->cl) != skald__cl_digest(sim->nodes[ref].cl))
			return 0;
	}
	if (ref < 0)
		return 1;
	size_t na = skald__cl_up_members(sim->nodes[ref].cl, a, SIM_MAX);
	for (int i = ref + 1; i < to; i++) {
		sim_node_t *nd = &sim->nodes[i];
		if (nd->mode != SIM_RUN || !nd->cl || skald__cl_stopped(nd->cl))
			continue;
		size_t nb = skald__cl_up_members(nd->cl, b, SIM_MAX);
		if (nb != na)
			return 0;
		for (size_t k = 0; k < na; k++)
			if (a[k].node != b[k].node || a[k].inc != b[k].inc ||
			    a[k].up_number != b[k].up_number)
				return 0;
	}
	return 1;
}

int sim_seen_down(sim_t *sim, int s, int from, int to)
{
	int seen = 0;
	for (int o = from; o < to; o++)
		if (o != s && sim->nodes[o].mode == SIM_RUN && sim->down_at[o][s])
			seen++;
	return seen;
}

typedef struct form_s {
	int n;
} form_t;

static int all_up(sim_t *sim, void *arg)
{
	form_t *f = arg;
	if (!sim_converged(sim, 0, f->n))
		return 0;
	static skald__cl_rec_t up[SIM_MAX];
	return skald__cl_up_members(sim->nodes[0].cl, up, SIM_MAX) == (size_t)f->n;
}

uint64_t sim_form(sim_t *sim, int n)
{
	uint64_t start = sim->now;
	sim_join(sim, 0, -1);
	for (int i = 1; i < n; i++)
		sim_join(sim, i, 0);
	form_t f = {n};
	int ok = sim_run_until(sim, 60000, all_up, &f);
	SIM_ASSERT(sim, ok, "%d members did not converge within 60 s", n);
	return sim->now - start;
}
