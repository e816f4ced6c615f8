/*
 * examples/tictactoe/run.c - running the example on a system (see run.h).
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "game.h"
#include "node.h"
#include "player.h"
#include "protocol.h"
#include "run.h"

#define ASK_MS 10000
/* A run that finishes no game for this long is stuck. */
#define STALL_MS 15000
/* Chance that a player also tries an illegal move on a turn, in percent. */
#define PROBE_PERCENT 10

/* ------------------------------------------------------------------------ */
/* Running                                                                   */

/* Main starts and stops systems; what happens inside is driven by actors,
 * which wake main through one of these when they are done. */
typedef struct {
	uv_mutex_t lock;
	uv_cond_t cond;
	bool raised;
} signal_t;

static void signal_init(signal_t *s)
{
	uv_mutex_init(&s->lock);
	uv_cond_init(&s->cond);
	s->raised = false;
}

static void signal_raise(signal_t *s)
{
	uv_mutex_lock(&s->lock);
	s->raised = true;
	uv_cond_signal(&s->cond);
	uv_mutex_unlock(&s->lock);
}

/* Waits for the signal, then destroys it. */
static void signal_wait(signal_t *s)
{
	uv_mutex_lock(&s->lock);
	while (!s->raised)
		uv_cond_wait(&s->cond, &s->lock);
	uv_mutex_unlock(&s->lock);
	uv_cond_destroy(&s->cond);
	uv_mutex_destroy(&s->lock);
}

static long long jint(const json_t *obj, const char *key)
{
	return (long long)json_integer_value(json_object_get(obj, key));
}

void ttt_phase_add(ttt_phase_t *sum, const ttt_phase_t *p)
{
	sum->probes += p->probes;
	sum->rejected += p->rejected;
	sum->unanswered += p->unanswered;
	sum->errors += p->errors;
	sum->lobby_errors += p->lobby_errors;
}

/* One run on one system, shared by main and the referee. */
typedef struct {
	const ttt_options_t *o;
	int phase;
	long games;   /* for ttt.configure */
	bool partial; /* players walk away mid-game (leave_after), then stop */
	ttt_player_totals_t totals;
	ttt_phase_t out;
	int rc;
	signal_t over;
} run_t;

/*
 * The referee starts the lobby and the players, watches the lobby's
 * progress (ttt.status every POLL_MS) and raises run->over when the run is
 * complete and every player has heard so, or when something is wrong. In a
 * partial run it raises it once players have walked away and no move has
 * been made for QUIET_MS: every game then waits for someone who left.
 */
#define POLL_MS  2
#define QUIET_MS 20

typedef struct {
	run_t *run;
	skald_ref_t lobby;
	long long finished0, last;
	uint64_t last_change;
	bool asking; /* a ttt.status is on its way */
	bool complete;
	bool over;
	unsigned waited; /* for the players, after complete */
	long moves;      /* the players' moves at the last tick */
	unsigned quiet;  /* ticks since a move, once a player walked away */
} referee_t;

static void referee_end(referee_t *r, int rc)
{
	if (r->over)
		return;
	r->over = true;
	r->run->rc = rc;
	signal_raise(&r->run->over);
}

static void status_answered(skald_actor_t *self, void *state, int status, skald_msg_t *reply,
                            void *arg)
{
	referee_t *r = state;
	run_t *run = r->run;
	r->asking = false;
	const json_t *st = status == 0 && reply->type == ttt_type.lobby ? ttt_payload(reply) : NULL;
	if (status == SKALD_ECANCELED || r->over)
		return;
	if (st == NULL) {
		fprintf(stderr, "tictactoe: the lobby stopped answering: %s\n",
		        skald_strerror(status));
		referee_end(r, status < 0 ? status : SKALD_EBACKEND);
		return;
	}
	long long finished = jint(st, "finished");
	run->out.lobby_errors = jint(st, "errors");
	r->complete = run->out.complete = json_is_true(json_object_get(st, "complete"));
	if (run->out.lobby_errors > 0) {
		referee_end(r, 0);
	} else if (finished != r->last) {
		r->last = finished;
		r->last_change = uv_hrtime();
	} else if (!r->complete && uv_hrtime() - r->last_change > STALL_MS * 1000000ull) {
		fprintf(stderr, "tictactoe: no game finished for %d s\n", STALL_MS / 1000);
		referee_end(r, SKALD_ETIMEDOUT);
	}
}

static void referee_tick(skald_actor_t *self, void *state, void *arg)
{
	referee_t *r = state;
	run_t *run = r->run;
	if (r->over)
		return;
	if (run->partial) {
		long moves = atomic_load(&run->totals.moves), gone = atomic_load(&run->totals.gone);
		r->quiet = gone > 0 && moves == r->moves ? r->quiet + 1 : 0;
		r->moves = moves;
		if (gone == run->o->players || r->quiet * POLL_MS >= QUIET_MS || r->complete) {
			referee_end(r, 0);
			return;
		}
	}
	if (r->complete) {
		/* Every player hears ttt.done when it comes back for another
		 * game: give them a moment to get there. */
		if (atomic_load(&run->totals.done) == run->o->players) {
			referee_end(r, 0);
		} else if (++r->waited * POLL_MS > STALL_MS) {
			ttt_fail("%ld of %ld players never heard that the games are over",
			         run->o->players - atomic_load(&run->totals.done), run->o->players);
			referee_end(r, 0);
		}
		return;
	}
	if (r->asking)
		return;
	json_t *q = json_object();
	if (q != NULL &&
	    skald_ask(self, r->lobby, ttt_type.status, q, ASK_MS, status_answered, NULL) == 0)
		r->asking = true;
	else
		json_decref(q);
}

static void configured(skald_actor_t *self, void *state, int status, skald_msg_t *reply, void *arg)
{
	referee_t *r = state;
	run_t *run = r->run;
	const json_t *st = status == 0 && reply->type == ttt_type.lobby ? ttt_payload(reply) : NULL;
	if (status == SKALD_ECANCELED)
		return;
	if (st == NULL) {
		fprintf(stderr, "tictactoe: the lobby did not recover (see the log above)\n");
		referee_end(r, status < 0 ? status : SKALD_EBACKEND);
		return;
	}
	r->finished0 = r->last = jint(st, "finished");
	r->last_change = uv_hrtime();
	unsigned long leave_span = (unsigned long)(run->games * 4 / run->o->players) + 1;
	/* The players come after the lobby is configured, so nobody is
	 * turned away. */
	for (long i = 0; i < run->o->players; i++) {
		ttt_player_arg_t *a = calloc(1, sizeof *a);
		skald_ref_t ref;
		int rc = a != NULL ? 0 : SKALD_ENOMEM;
		if (a != NULL) {
			snprintf(a->name, sizeof a->name, "p%ld", i + 1);
			a->lobby = r->lobby;
			/* Distinct streams per player and per phase. */
			a->seed = run->o->seed * 0x9e3779b97f4a7c15ull + (uint64_t)i * 1000003u +
			          (uint64_t)run->phase;
			a->probe_percent = PROBE_PERCENT;
			a->totals = &run->totals;
			/* Each leaves after its own number of moves, the first of
			 * them well before the games run out. */
			if (run->partial)
				a->leave_after = 1 + (a->seed >> 11) % leave_span;
			rc = skald_spawn(skald_actor_system(self), &ttt_player, a, NULL, &ref);
			if (rc < 0)
				free(a);
		}
		if (rc < 0) {
			fprintf(stderr, "tictactoe: cannot start the players: %s\n",
			        skald_strerror(rc));
			referee_end(r, rc);
			return;
		}
	}
	int rc = skald_timer_start(self, POLL_MS, POLL_MS, referee_tick, NULL, NULL);
	if (rc < 0)
		referee_end(r, rc);
}

static int referee_init(skald_actor_t *self, void *state, void *arg)
{
	referee_t *r = state;
	r->run = arg;
	int rc = ttt_node_lobby(skald_actor_system(self), &r->lobby);
	if (rc < 0) {
		fprintf(stderr, "tictactoe: cannot start the lobby: %s\n", skald_strerror(rc));
		referee_end(r, rc);
		return 0;
	}
	/* Answered once the lobby has recovered its history. */
	json_t *q = json_pack("{s:I}", "games", (json_int_t)r->run->games);
	if (q == NULL ||
	    (rc = skald_ask(self, r->lobby, ttt_type.configure, q, ASK_MS, configured, NULL)) < 0) {
		json_decref(q);
		referee_end(r, rc < 0 ? rc : SKALD_ENOMEM);
	}
	return 0;
}

static int referee_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	return 0;
}

static const skald_behavior_t referee = {
        .state_size = sizeof(referee_t),
        .init = referee_init,
        .receive = referee_receive,
};

/* Plays on a new system until the run is complete (or, partial, until the
 * players walked away mid-game), then stops the system with whatever is in
 * flight. games: ttt.configure's. */
int ttt_run_phase(const ttt_options_t *o, int phase, long games, bool partial, ttt_phase_t *out)
{
	skald_system_t *sys = NULL;
	skald_config_t cfg = {.name = "tictactoe", .journal = o->store, .threads = o->threads};
	run_t run = {.o = o, .phase = phase, .games = games, .partial = partial};
	skald_ref_t ref;
	signal_init(&run.over);
	int rc = skald_system_new(&cfg, &sys);
	if (rc == 0)
		rc = skald_spawn(sys, &referee, &run, NULL, &ref);
	if (rc < 0) {
		fprintf(stderr, "tictactoe: cannot start a system: %s\n", skald_strerror(rc));
		signal_raise(&run.over);
	}
	signal_wait(&run.over);
	skald_system_stop(sys);
	*out = run.out;
	out->complete = run.rc == 0 && run.out.complete;
	out->probes = atomic_load(&run.totals.probes);
	out->rejected = atomic_load(&run.totals.rejected);
	out->unanswered = atomic_load(&run.totals.unanswered);
	out->errors = atomic_load(&run.totals.errors);
	return rc < 0 ? rc : run.rc;
}

/* ------------------------------------------------------------------------ */
/* Recovering every game                                                     */

/*
 * The verifier recovers every game of a run in a fresh system (from its
 * snapshot and the events after it), asks each for its state and compares
 * it with the history folded from the journal; it also checks that a
 * finished game refuses a move and writes nothing. It raises `over` when
 * every answer is in. ttt_fail() is main's, called here while main waits.
 */
typedef struct {
	char (*ids)[TTT_NAME_MAX];
	const ttt_game_view_t *views;
	size_t n, pending;
	skald_ref_t *refs;
	signal_t over;
} verify_t;

static void verify_done_one(verify_t *v)
{
	if (--v->pending == 0)
		signal_raise(&v->over);
}

static void refused(skald_actor_t *self, void *state, int status, skald_msg_t *reply, void *arg)
{
	verify_t *v = *(verify_t **)state;
	size_t i = (size_t)(uintptr_t)arg;
	const json_t *r =
	        status == 0 && reply->type == ttt_type.rejected ? ttt_payload(reply) : NULL;
	const char *err = ttt_str(r, "error");
	if (err == NULL || strcmp(err, "game over") != 0 ||
	    (uint64_t)jint(r, "seq") != v->views[i].seq)
		ttt_fail("game %s did not reject a move after the end", v->ids[i]);
	verify_done_one(v);
}

static void recovered_state(skald_actor_t *self, void *state, int status, skald_msg_t *reply,
                            void *arg)
{
	verify_t *v = *(verify_t **)state;
	size_t i = (size_t)(uintptr_t)arg;
	const json_t *got =
	        status == 0 && reply->type == ttt_type.state ? ttt_payload(reply) : NULL;
	json_t *want = NULL;
	tictactoe_game.snapshot(&v->views[i].g, &want);
	const char *key;
	json_t *value;
	if (got == NULL || want == NULL) {
		ttt_fail("game %s did not recover: %s", v->ids[i], skald_strerror(status));
	} else if ((uint64_t)jint(got, "seq") != v->views[i].seq) {
		ttt_fail("game %s recovered at seq %lld, its history ends at %" PRIu64, v->ids[i],
		         jint(got, "seq"), v->views[i].seq);
	} else {
		json_object_foreach(want, key, value)
		{
			if (!json_equal(value, json_object_get(got, key))) {
				ttt_fail("game %s recovered with a different %s than its history",
				         v->ids[i], key);
				break;
			}
		}
	}
	json_decref(want);
	/* Then a move, which the game must refuse: it is over. */
	json_t *m = json_pack("{s:s, s:i}", "player", v->views[i].g.x, "cell", 4);
	if (m != NULL && skald_ask(self, v->refs[i], ttt_type.move, m, ASK_MS, refused, arg) == 0)
		return;
	json_decref(m);
	ttt_fail("cannot ask game %s", v->ids[i]);
	verify_done_one(v);
}

static int verifier_init(skald_actor_t *self, void *state, void *arg)
{
	verify_t *v = arg;
	*(verify_t **)state = v;
	v->pending = 1; /* until every question is out */
	/* Spawn all first, so that they recover side by side on every thread. */
	for (size_t i = 0; i < v->n; i++)
		if (skald_entity_spawn(skald_actor_system(self), &tictactoe_game, v->ids[i], NULL,
		                       &v->refs[i]) < 0)
			ttt_fail("cannot start game %s", v->ids[i]);
	for (size_t i = 0; i < v->n; i++) {
		json_t *q = json_object();
		if (skald_ref_is_null(v->refs[i]) || q == NULL ||
		    skald_ask(self, v->refs[i], ttt_type.get, q, ASK_MS, recovered_state,
		              (void *)(uintptr_t)i) < 0) {
			json_decref(q);
			ttt_fail("cannot ask game %s", v->ids[i]);
			continue;
		}
		v->pending++;
	}
	verify_done_one(v);
	return 0;
}

static int verifier_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	return 0;
}

static const skald_behavior_t verifier = {
        .state_size = sizeof(verify_t *),
        .init = verifier_init,
        .receive = verifier_receive,
};

void ttt_recover_and_compare(const char *store, char (*ids)[TTT_NAME_MAX],
                             const ttt_game_view_t *views, size_t n)
{
	skald_system_t *sys = NULL;
	skald_config_t cfg = {.name = "tictactoe-check", .journal = store};
	verify_t v = {.ids = ids, .views = views, .n = n, .refs = calloc(n + 1, sizeof *v.refs)};
	skald_ref_t ref;
	signal_init(&v.over);
	if (v.refs == NULL || skald_system_new(&cfg, &sys) < 0 ||
	    skald_spawn(sys, &verifier, &v, NULL, &ref) < 0) {
		ttt_fail("cannot start a system to recover the games");
		signal_raise(&v.over);
	}
	signal_wait(&v.over);
	skald_system_stop(sys);
	free(v.refs);
}
