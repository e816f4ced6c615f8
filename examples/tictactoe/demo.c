/*
 * examples/tictactoe/demo.c - a cluster in one process (see demo.h).
 *
 * Main starts the nodes and the bots, then only watches: the bots report
 * through their autoplay hooks (player.h), on their own threads, into the
 * demo's table under its lock.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "demo.h"
#include "node.h"
#include "player.h"

#define MAX_NODES 5
/* A run that finishes no game for this long is stuck. */
#define STALL_MS 20000
/* Chance that a bot also tries an illegal move on its turn, in percent. */
#define PROBE_PERCENT 10
/* A bot thinks 0 to twice this before each move, so that many games are in
 * progress at once, as with people. */
#define THINK_MS 25
#define SECRET   "tictactoe-demo"

typedef struct demo_s demo_t;

/* A bot, as the demo knows it; it outlives the bot's actor (a bot on the
 * stopped node starts again elsewhere under the same id). */
typedef struct {
	demo_t *demo;
	char id[TTT_NAME_MAX], name[TTT_NAME_MAX];
	unsigned node;
	bool seated; /* it holds one of the run's seats (seeks or plays) */
	char game[TTT_NAME_MAX];
	uint64_t seed;
} slot_t;

typedef struct {
	char game[TTT_NAME_MAX];
	char board[10];
} seen_t;

typedef struct {
	char game[TTT_NAME_MAX];
	uint64_t answered_ns; /* 0: not yet */
} moved_t;

struct demo_s {
	const ttt_demo_options_t *o;
	ttt_node_t *nodes[MAX_NODES];
	uv_mutex_t lock; /* everything below */
	slot_t *slots;
	long seats;   /* taken: two per game */
	seen_t *seen; /* games over, as the bots saw them */
	size_t nseen, capseen;
	moved_t *moved; /* games on the stopped node, unfinished then */
	size_t nmoved, capmoved;
	uint64_t stop_ns, victim;
	long probes, refused;
};

static uint64_t now_ns(void)
{
	return uv_hrtime();
}

/* ------------------------------------------------------------------------ */
/* What the bots report (on their threads)                                   */

static bool want_game(void *ctx, const char *player)
{
	slot_t *s = ctx;
	demo_t *d = s->demo;
	uv_mutex_lock(&d->lock);
	if (!s->seated && d->seats < 2 * d->o->games) {
		d->seats++;
		s->seated = true;
	}
	bool yes = s->seated;
	uv_mutex_unlock(&d->lock);
	return yes;
}

static void playing(void *ctx, const char *player, const char *game)
{
	slot_t *s = ctx;
	uv_mutex_lock(&s->demo->lock);
	snprintf(s->game, sizeof s->game, "%s", game);
	uv_mutex_unlock(&s->demo->lock);
}

static void game_over(void *ctx, const char *player, const char *game, const json_t *st)
{
	slot_t *s = ctx;
	demo_t *d = s->demo;
	const char *board = ttt_str(st, "board");
	uv_mutex_lock(&d->lock);
	size_t i = 0;
	while (i < d->nseen && strcmp(d->seen[i].game, game) != 0)
		i++;
	if (i == d->nseen && ttt_grow(&d->seen, &d->capseen, d->nseen, sizeof *d->seen) == 0) {
		seen_t *v = &d->seen[d->nseen++];
		snprintf(v->game, sizeof v->game, "%s", game);
		snprintf(v->board, sizeof v->board, "%s", board != NULL ? board : "");
	} else if (i < d->nseen && (board == NULL || strcmp(board, d->seen[i].board) != 0)) {
		ttt_fail("game %s: its two players saw two different ends", game);
	}
	s->seated = false;
	s->game[0] = '\0';
	/* A game that ended on the stopped node, before it stopped, did not
	 * move. */
	for (size_t k = 0; k < d->nmoved; k++)
		if (d->moved[k].answered_ns == 0 && strcmp(d->moved[k].game, game) == 0)
			d->moved[k] = d->moved[--d->nmoved];
	uv_mutex_unlock(&d->lock);
}

static void answered(void *ctx, const char *game, uint64_t node)
{
	slot_t *s = ctx;
	demo_t *d = s->demo;
	uv_mutex_lock(&d->lock);
	/* Only an answer from the game's new home counts. */
	if (d->stop_ns != 0 && node != d->victim)
		for (size_t i = 0; i < d->nmoved; i++)
			if (d->moved[i].answered_ns == 0 && strcmp(d->moved[i].game, game) == 0)
				d->moved[i].answered_ns = now_ns();
	uv_mutex_unlock(&d->lock);
}

static void probed(void *ctx, bool refused)
{
	slot_t *s = ctx;
	uv_mutex_lock(&s->demo->lock);
	s->demo->probes++;
	s->demo->refused += refused;
	uv_mutex_unlock(&s->demo->lock);
	if (!refused)
		ttt_fail("%s: an illegal move was not refused", s->id);
}

static void fault(void *ctx, const char *player, const char *what)
{
	ttt_fail("%s: %s", player, what);
}

static const char *seen_board(void *ctx, const char *game)
{
	demo_t *d = ctx;
	for (size_t i = 0; i < d->nseen; i++)
		if (strcmp(d->seen[i].game, game) == 0)
			return d->seen[i].board;
	return NULL;
}

static int start_bot(demo_t *d, slot_t *s, const char *resume)
{
	ttt_autoplay_t a = {
	        .seed = s->seed,
	        .probe_percent = PROBE_PERCENT,
	        .think_ms = THINK_MS,
	        .ctx = s,
	        .want_game = want_game,
	        .playing = playing,
	        .game_over = game_over,
	        .answered = answered,
	        .probed = probed,
	        .fault = fault,
	};
	snprintf(a.resume, sizeof a.resume, "%s", resume);
	skald_ref_t ref;
	return ttt_player_start(ttt_node_system(d->nodes[s->node]), s->id, s->name, &a, &ref);
}

/* ------------------------------------------------------------------------ */
/* The cluster                                                               */

static bool converged(demo_t *d, unsigned n)
{
	uint64_t host0 = 0;
	for (unsigned i = 0; i < n; i++) {
		skald_system_t *sys = ttt_node_system(d->nodes[i]);
		size_t k = 0;
		uint64_t host = 0, owner = 0;
		if (skald_cluster_members(sys, NULL, 0, &k) < 0 || k != n ||
		    skald_singleton_host(ttt_node_lobby(d->nodes[i]), &host) < 0 || host == 0 ||
		    (i > 0 && host != host0) ||
		    skald_sharding_owner(ttt_node_games(sys), "g1", &owner) < 0 || owner == 0)
			return false;
		host0 = host;
	}
	return true;
}

static int start_nodes(demo_t *d)
{
	const ttt_demo_options_t *o = d->o;
	for (unsigned i = 0; i < o->nodes; i++) {
		char name[8], why[256];
		snprintf(name, sizeof name, "%c", 'a' + i);
		const char *seeds[1] = {i > 0 ? ttt_node_addr(d->nodes[0]) : NULL};
		ttt_node_config_t cfg = {
		        .name = name,
		        .listen = "tcp://127.0.0.1:0",
		        .seeds = seeds,
		        .nseeds = i > 0 ? 1 : 0,
		        .secret = SECRET,
		        .store = o->store,
		        .threads = o->threads > 0 ? o->threads : 1,
		};
		int rc = ttt_node_start(&cfg, &d->nodes[i], why, sizeof why);
		if (rc < 0) {
			fprintf(stderr, "tictactoe: cannot start node %s: %s\n", name, why);
			return rc;
		}
	}
	uint64_t end = now_ns() + 20000000000ull;
	while (!converged(d, o->nodes)) {
		if (now_ns() > end) {
			fprintf(stderr,
			        "tictactoe: the nodes did not agree on a cluster in 20 s\n");
			return SKALD_ETIMEDOUT;
		}
		uv_sleep(10);
	}
	return 0;
}

/* The index of the node whose id is node (0 if none is). */
static unsigned node_index(demo_t *d, uint64_t node)
{
	for (unsigned i = 0; i < d->o->nodes; i++)
		if (d->nodes[i] != NULL && skald_system_node(ttt_node_system(d->nodes[i])) == node)
			return i;
	return 0;
}

/* The node to stop: -1 for none. */
static int victim_of(demo_t *d)
{
	const ttt_demo_options_t *o = d->o;
	if (o->nodes < 2 || strcmp(o->stop, "none") == 0)
		return -1;
	uint64_t host = 0;
	skald_singleton_host(ttt_node_lobby(d->nodes[0]), &host);
	for (unsigned i = 0; i < o->nodes; i++) {
		if (strcmp(o->stop, "lobby") == 0
		            ? skald_system_node(ttt_node_system(d->nodes[i])) == host
		            : strcmp(o->stop, ttt_node_name(d->nodes[i])) == 0)
			return (int)i;
	}
	return -1;
}

/* Stops node v abruptly, and starts its bots again on the other nodes. */
static void stop_node(demo_t *d, unsigned v, unsigned *moved_bots)
{
	const ttt_demo_options_t *o = d->o;
	unsigned other = (v + 1) % o->nodes;
	skald_sharding_t *games = ttt_node_games(ttt_node_system(d->nodes[other]));
	uv_mutex_lock(&d->lock);
	d->victim = skald_system_node(ttt_node_system(d->nodes[v]));
	/* The games in progress that live on it. */
	for (long i = 0; i < o->players; i++) {
		const char *game = d->slots[i].game;
		uint64_t owner = 0;
		if (game[0] == '\0' || skald_sharding_owner(games, game, &owner) < 0 ||
		    owner != d->victim)
			continue;
		bool known = false;
		for (size_t k = 0; k < d->nmoved && !known; k++)
			known = strcmp(d->moved[k].game, game) == 0;
		if (!known && ttt_grow(&d->moved, &d->capmoved, d->nmoved, sizeof *d->moved) == 0) {
			snprintf(d->moved[d->nmoved].game, TTT_NAME_MAX, "%s", game);
			d->moved[d->nmoved++].answered_ns = 0;
		}
	}
	d->stop_ns = now_ns();
	uv_mutex_unlock(&d->lock);

	ttt_node_stop(d->nodes[v], false);
	d->nodes[v] = NULL;

	/* Its bots come back on the others, as clients reconnecting there,
	 * and go on with the game each was playing. */
	unsigned next = 0;
	for (long i = 0; i < o->players; i++) {
		slot_t *s = &d->slots[i];
		if (s->node != v)
			continue;
		do
			next = (next + 1) % o->nodes;
		while (next == v);
		uv_mutex_lock(&d->lock);
		s->node = next;
		char resume[TTT_NAME_MAX];
		snprintf(resume, sizeof resume, "%s", s->game);
		uv_mutex_unlock(&d->lock);
		int rc = start_bot(d, s, resume);
		if (rc < 0)
			ttt_fail("cannot start bot %s again: %s", s->id, skald_strerror(rc));
		(*moved_bots)++;
	}
}

/* ------------------------------------------------------------------------ */
/* The run                                                                   */

static size_t finished(demo_t *d)
{
	uv_mutex_lock(&d->lock);
	size_t n = d->nseen;
	uv_mutex_unlock(&d->lock);
	return n;
}

static bool all_free(demo_t *d)
{
	bool free_ = true;
	uv_mutex_lock(&d->lock);
	for (long i = 0; i < d->o->players && free_; i++)
		free_ = !d->slots[i].seated;
	uv_mutex_unlock(&d->lock);
	return free_;
}

/* The lobby's counts (ttt.lobby), asked through node n; NULL if it does
 * not answer. New reference. */
static json_t *lobby_status(ttt_node_t *n)
{
	uint32_t type;
	void *reply = NULL;
	int rc = skald_singleton_system_ask(ttt_node_lobby(n), ttt_type.status, json_object(), 2000,
	                                    &type, &reply);
	if (rc == 0 && type == ttt_type.lobby)
		return reply;
	if (rc == 0)
		skald_payload_free(type, reply);
	return NULL;
}

static ttt_node_t *any_node(demo_t *d)
{
	for (unsigned i = 0; i < d->o->nodes; i++)
		if (d->nodes[i] != NULL)
			return d->nodes[i];
	return NULL;
}

/* Waits until the lobby has recorded the end of every game it opened
 * (the last ends reach it a moment after the bots see them). */
static void await_lobby(demo_t *d)
{
	uint64_t end = now_ns() + 10000000000ull;
	while (now_ns() < end) {
		json_t *st = lobby_status(any_node(d));
		bool done = st != NULL && json_integer_value(json_object_get(st, "ready")) == 0 &&
		            json_integer_value(json_object_get(st, "playing")) == 0;
		json_decref(st);
		if (done)
			return;
		uv_sleep(20);
	}
	ttt_fail("the lobby still has games open 10 s after the last one ended");
}

static int percentile_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The nearest-rank percentile p of k sorted values: an index. */
static size_t rank(size_t k, double p)
{
	size_t r = (size_t)(p * (double)k + 0.999999);
	return r > 0 ? r - 1 : 0;
}

static void print_moved(demo_t *d, const char *victim)
{
	double *ms = calloc(d->nmoved + 1, sizeof *ms);
	size_t k = 0;
	for (size_t i = 0; ms != NULL && i < d->nmoved; i++)
		if (d->moved[i].answered_ns != 0)
			ms[k++] = (double)(d->moved[i].answered_ns - d->stop_ns) / 1e6;
	if (k > 0) {
		qsort(ms, k, sizeof *ms, percentile_cmp);
		printf("tictactoe: %zu games in progress lived on node %s; they answered again "
		       "from "
		       "another node after p50 %.1f ms, p99 %.1f ms\n",
		       d->nmoved, victim, ms[rank(k, 0.50)], ms[rank(k, 0.99)]);
	} else {
		printf("tictactoe: no game in progress lived on node %s when it stopped\n", victim);
	}
	if (k < d->nmoved)
		ttt_fail("%zu of the games that lived on node %s never answered again",
		         d->nmoved - k, victim);
	free(ms);
}

int ttt_demo(const ttt_demo_options_t *o)
{
	int rc = ttt_protocol_register();
	if (rc < 0) {
		fprintf(stderr, "tictactoe: cannot register the messages: %s\n",
		        skald_strerror(rc));
		return 1;
	}
	/* What the store held before: a durable store may hold earlier runs.
	 * Opening it here is also where a bad --store is reported. */
	ttt_survey_t before, after;
	if (ttt_survey(o->store, &before) < 0)
		return 1;
	demo_t d = {.o = o};
	uv_mutex_init(&d.lock);
	d.slots = calloc((size_t)o->players, sizeof *d.slots);
	uint64_t t0 = now_ns();
	if (d.slots == NULL || start_nodes(&d) < 0) {
		rc = 1;
		goto out;
	}
	uint64_t host = 0;
	skald_singleton_host(ttt_node_lobby(d.nodes[0]), &host);
	printf("tictactoe: %u node%s in this process, joined over loopback TCP, on %s; the lobby "
	       "lives on node %c; %ld bots start playing %ld games\n",
	       o->nodes, o->nodes == 1 ? "" : "s", o->store, 'a' + (int)(node_index(&d, host)),
	       o->players, o->games);
	fflush(stdout);
	for (long i = 0; i < o->players; i++) {
		slot_t *s = &d.slots[i];
		s->demo = &d;
		snprintf(s->id, sizeof s->id, "b%ld", i + 1);
		snprintf(s->name, sizeof s->name, "bot %ld", i + 1);
		s->node = (unsigned)(i % o->nodes);
		s->seed = o->seed * 0x9e3779b97f4a7c15ull + (uint64_t)i * 1000003u;
		if ((rc = start_bot(&d, s, "")) < 0) {
			fprintf(stderr, "tictactoe: cannot start the bots: %s\n",
			        skald_strerror(rc));
			rc = 1;
			goto out;
		}
	}

	int victim = victim_of(&d);
	char victim_name[64] = "";
	bool lobby_host = false;
	unsigned moved_bots = 0;
	size_t last = 0;
	uint64_t last_change = now_ns();
	while (finished(&d) < (size_t)o->games || !all_free(&d)) {
		size_t f = finished(&d);
		if (f != last) {
			last = f;
			last_change = now_ns();
		} else if (now_ns() - last_change > STALL_MS * 1000000ull) {
			json_t *st = lobby_status(any_node(&d));
			char *text = st != NULL ? json_dumps(st, JSON_COMPACT) : NULL;
			ttt_fail("no game finished for %d s (%zu of %ld done); the lobby says %s",
			         STALL_MS / 1000, f, o->games, text != NULL ? text : "nothing");
			free(text);
			json_decref(st);
			uv_mutex_lock(&d.lock);
			for (long i = 0; i < o->players; i++)
				if (d.slots[i].seated)
					fprintf(stderr,
					        "tictactoe: bot %s on node %s still %s %s\n",
					        d.slots[i].id,
					        d.nodes[d.slots[i].node] != NULL
					                ? ttt_node_name(d.nodes[d.slots[i].node])
					                : "(stopped)",
					        d.slots[i].game[0] ? "plays" : "seeks",
					        d.slots[i].game);
			uv_mutex_unlock(&d.lock);
			break;
		}
		if (victim >= 0 && d.stop_ns == 0 && f >= (size_t)o->games / 2) {
			uint64_t lobby_node = 0;
			skald_singleton_host(ttt_node_lobby(d.nodes[victim]), &lobby_node);
			lobby_host =
			        lobby_node == skald_system_node(ttt_node_system(d.nodes[victim]));
			snprintf(victim_name, sizeof victim_name, "%s",
			         ttt_node_name(d.nodes[victim]));
			stop_node(&d, (unsigned)victim, &moved_bots);
			printf("tictactoe: stopped node %s%s abruptly after %zu games; its %u bots "
			       "reconnected to the other nodes\n",
			       victim_name, lobby_host ? " (the lobby's host)" : "", f, moved_bots);
		}
		uv_sleep(10);
	}
	await_lobby(&d);
	double secs = (double)(now_ns() - t0) / 1e9;
	for (unsigned i = 0; i < o->nodes; i++)
		ttt_node_stop(d.nodes[i], false);
	memset(d.nodes, 0, sizeof d.nodes);

	if (ttt_survey(o->store, &after) < 0) {
		rc = 1;
		goto out;
	}
	ttt_tally_t t;
	ttt_check_games(o->store, &after, before.nmatched, seen_board, &d, &t);
	long long events = t.events + (long long)(after.lobby_seq - before.lobby_seq);
	printf("tictactoe: %ld games finished on %u node%s (%s) by %ld bots (seed %" PRIu64 ")\n",
	       t.games, o->nodes, o->nodes == 1 ? "" : "s", o->store, o->players, o->seed);
	printf("tictactoe: X won %ld, O won %ld, draws %ld; %lld moves\n", t.x_wins, t.o_wins,
	       t.draws, t.moves);
	if (d.stop_ns != 0)
		print_moved(&d, victim_name);
	printf("tictactoe: %lld events persisted in %.3f s (%.0f events/s)\n", events, secs,
	       (double)events / secs);
	printf("tictactoe: %ld illegal moves tried, %ld refused with nothing written\n", d.probes,
	       d.refused);
	printf("tictactoe: checked %ld games by replaying their histories: each is finished, as "
	       "the lobby recorded and the bots saw it\n",
	       t.games);
	if (t.games < o->games)
		ttt_fail("%ld games were checked, %ld were to be played", t.games, o->games);
	if (t.games > 0) {
		ttt_game_t *g = &t.last_game;
		printf("tictactoe: last game %s, X %s, O %s: %s\n", t.last, g->x, g->o,
		       g->status == TTT_DRAW    ? "draw"
		       : g->status == TTT_X_WON ? "X won"
		                                : "O won");
		tictactoe_game.print(g, stdout);
	}
	ttt_survey_free(&after);
	rc = 0;
out:
	for (unsigned i = 0; i < MAX_NODES; i++)
		ttt_node_stop(d.nodes[i], false);
	ttt_survey_free(&before);
	free(d.slots);
	free(d.seen);
	free(d.moved);
	uv_mutex_destroy(&d.lock);
	if (rc == 0 && ttt_failures() > 0) {
		printf("tictactoe: INCONSISTENT: %u checks failed\n", ttt_failures());
		rc = 1;
	}
	return rc;
}
