/*
 * examples/tictactoe/lobby.c - GameLobby (see lobby.h).
 *
 * An entity writes one thing at a time, and the lobby hears more than it
 * can write at once: players join and leave, games answer, games end. So
 * the handlers only note what they heard (the session lists of lobby.h)
 * and flush() turns the notes into events, one write after the other, each
 * decided against the state as it is when its turn comes. After each write
 * the lobby does what the new state asks for (tells the players of a game
 * that started, asks a game it matched to start) and flushes again.
 *
 * The lobby never trusts its record of a game blindly: it asks the session
 * to start (which is idempotent and answers with the game's state) when it
 * matched the game and again after every recovery, so a game that ended
 * while the lobby was moving is recorded then.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lobby.h"
#include "node.h"

/* How long the lobby waits for a game session to answer, and how long it
 * waits before asking again when it did not. */
#define ASK_MS   10000
#define RETRY_MS 500

static void complain(ttt_lobby_t *lb, const char *game, const char *what)
{
	lb->errors++;
	fprintf(stderr, "tictactoe: lobby: %s: %s\n", game, what);
}

/* ------------------------------------------------------------------------ */
/* The history                                                               */

static int waiting_index(const ttt_lobby_t *lb, const char *id)
{
	for (size_t i = 0; i < lb->nwaiting; i++)
		if (strcmp(lb->waiting[i].id, id) == 0)
			return (int)i;
	return -1;
}

static int game_index(const ttt_lobby_t *lb, const char *game)
{
	for (size_t i = 0; i < lb->ngames; i++)
		if (strcmp(lb->games[i].game, game) == 0)
			return (int)i;
	return -1;
}

/* The game a player (not the bot) is in, or -1. */
static int game_of_player(const ttt_lobby_t *lb, const char *id)
{
	if (strcmp(id, TTT_BOT) == 0)
		return -1;
	for (size_t i = 0; i < lb->ngames; i++)
		if (strcmp(lb->games[i].x.id, id) == 0 || strcmp(lb->games[i].o.id, id) == 0)
			return (int)i;
	return -1;
}

static int waiter_of(const json_t *d, const char *id_key, const char *name_key, const char *ref_key,
                     ttt_waiter_t *w)
{
	memset(w, 0, sizeof *w);
	if (ttt_name(d, id_key, w->id) < 0 || ttt_name(d, name_key, w->name) < 0 ||
	    ttt_ref_parse(ttt_str(d, ref_key), &w->ref) < 0)
		return SKALD_EDECODE;
	return 0;
}

static void remove_at(void *v, size_t *n, size_t i, size_t size)
{
	char *base = v;
	memmove(base + i * size, base + (i + 1) * size, (*n - i - 1) * size);
	(*n)--;
}

static int apply_waiting(ttt_lobby_t *lb, const json_t *d)
{
	ttt_waiter_t w;
	if (waiter_of(d, "player", "name", "ref", &w) < 0 || game_of_player(lb, w.id) >= 0)
		return SKALD_EDECODE;
	int i = waiting_index(lb, w.id);
	if (i >= 0) {
		lb->waiting[i] = w; /* the same player, from somewhere else now */
		return 0;
	}
	if (ttt_grow(&lb->waiting, &lb->capwaiting, lb->nwaiting, sizeof w) < 0)
		return SKALD_ENOMEM;
	lb->waiting[lb->nwaiting++] = w;
	return 0;
}

static int add_game(ttt_lobby_t *lb, const json_t *d, bool started)
{
	ttt_match_t m = {.started = started};
	if (ttt_name(d, "game", m.game) < 0 || game_index(lb, m.game) >= 0 ||
	    waiter_of(d, "x", "x_name", "x_ref", &m.x) < 0 ||
	    waiter_of(d, "o", "o_name", "o_ref", &m.o) < 0 || strcmp(m.x.id, m.o.id) == 0 ||
	    game_of_player(lb, m.x.id) >= 0 || game_of_player(lb, m.o.id) >= 0)
		return SKALD_EDECODE;
	if (ttt_grow(&lb->games, &lb->capgames, lb->ngames, sizeof m) < 0)
		return SKALD_ENOMEM;
	lb->games[lb->ngames++] = m;
	/* The two players no longer wait. */
	int i = waiting_index(lb, m.x.id);
	if (i >= 0)
		remove_at(lb->waiting, &lb->nwaiting, (size_t)i, sizeof *lb->waiting);
	if ((i = waiting_index(lb, m.o.id)) >= 0)
		remove_at(lb->waiting, &lb->nwaiting, (size_t)i, sizeof *lb->waiting);
	return 0;
}

static int apply_finished(ttt_lobby_t *lb, const json_t *d)
{
	const char *game = ttt_str(d, "game"), *result = ttt_str(d, "result");
	const json_t *moves = json_object_get(d, "moves");
	int i = game != NULL ? game_index(lb, game) : -1;
	if (i < 0 || result == NULL || !json_is_integer(moves))
		return SKALD_EDECODE;
	if (strcmp(result, "X") == 0)
		lb->x_wins++;
	else if (strcmp(result, "O") == 0)
		lb->o_wins++;
	else if (strcmp(result, "draw") == 0)
		lb->draws++;
	else
		return SKALD_EDECODE;
	lb->moves += (uint64_t)json_integer_value(moves);
	lb->finished++;
	remove_at(lb->games, &lb->ngames, (size_t)i, sizeof *lb->games);
	return 0;
}

static int apply(void *state, const skald_event_t *ev)
{
	ttt_lobby_t *lb = state;
	const json_t *d = ev->data;
	if (ev->version != 1)
		return SKALD_EDECODE;
	if (strcmp(ev->type, "lobby.waiting") == 0)
		return apply_waiting(lb, d);
	if (strcmp(ev->type, "lobby.left") == 0) {
		const char *id = ttt_str(d, "player");
		int i = id != NULL ? waiting_index(lb, id) : -1;
		if (i < 0)
			return SKALD_EDECODE;
		remove_at(lb->waiting, &lb->nwaiting, (size_t)i, sizeof *lb->waiting);
		return 0;
	}
	if (strcmp(ev->type, "lobby.matched") == 0) {
		int rc = add_game(lb, d, false);
		if (rc == 0)
			lb->matched++;
		return rc;
	}
	if (strcmp(ev->type, "lobby.started") == 0) {
		const char *game = ttt_str(d, "game");
		int i = game != NULL ? game_index(lb, game) : -1;
		if (i < 0 || lb->games[i].started)
			return SKALD_EDECODE;
		lb->games[i].started = true;
		return 0;
	}
	if (strcmp(ev->type, "lobby.finished") == 0)
		return apply_finished(lb, d);
	return SKALD_EDECODE;
}

static void fini(void *state)
{
	ttt_lobby_t *lb = state;
	free(lb->waiting);
	free(lb->games);
	free(lb->joins);
	free(lb->writing);
	free(lb->lefts);
	free(lb->results);
}

static json_t *waiter_json(const ttt_waiter_t *w)
{
	return json_pack("{s:s, s:s, s:o}", "player", w->id, "name", w->name, "ref",
	                 ttt_ref_json(w->ref));
}

static json_t *match_json(const ttt_match_t *m)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "game", m->game, "x", m->x.id, "o",
	                 m->o.id, "x_name", m->x.name, "o_name", m->o.name, "x_ref",
	                 ttt_ref_json(m->x.ref), "o_ref", ttt_ref_json(m->o.ref));
}

static int snapshot(const void *state, json_t **out)
{
	const ttt_lobby_t *lb = state;
	json_t *waiting = json_array(), *games = json_array();
	for (size_t i = 0; waiting != NULL && i < lb->nwaiting; i++)
		json_array_append_new(waiting, waiter_json(&lb->waiting[i]));
	for (size_t i = 0; games != NULL && i < lb->ngames; i++) {
		json_t *g = match_json(&lb->games[i]);
		json_object_set_new(g, "started", json_boolean(lb->games[i].started));
		json_array_append_new(games, g);
	}
	/* json_pack "o" steals waiting and games. */
	*out = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o}", "matched",
	                 (json_int_t)lb->matched, "finished", (json_int_t)lb->finished, "x_wins",
	                 (json_int_t)lb->x_wins, "o_wins", (json_int_t)lb->o_wins, "draws",
	                 (json_int_t)lb->draws, "moves", (json_int_t)lb->moves, "waiting", waiting,
	                 "games", games);
	return *out != NULL ? 0 : SKALD_ENOMEM;
}

static int restore(void *state, const json_t *snap, int version)
{
	ttt_lobby_t *lb = state;
	json_int_t matched, finished, x_wins, o_wins, draws, moves;
	json_t *waiting, *games;
	if (version != 1 ||
	    json_unpack((json_t *)snap, "{s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o}", "matched",
	                &matched, "finished", &finished, "x_wins", &x_wins, "o_wins", &o_wins,
	                "draws", &draws, "moves", &moves, "waiting", &waiting, "games",
	                &games) < 0 ||
	    !json_is_array(waiting) || !json_is_array(games))
		return SKALD_EDECODE;
	lb->matched = (uint64_t)matched;
	lb->finished = (uint64_t)finished;
	lb->x_wins = (uint64_t)x_wins;
	lb->o_wins = (uint64_t)o_wins;
	lb->draws = (uint64_t)draws;
	lb->moves = (uint64_t)moves;
	lb->nwaiting = lb->ngames = 0;
	size_t i;
	json_t *v;
	json_array_foreach(games, i, v)
	{
		int rc = add_game(lb, v, json_is_true(json_object_get(v, "started")));
		if (rc < 0)
			return rc;
	}
	json_array_foreach(waiting, i, v)
	{
		int rc = apply_waiting(lb, v);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void print(const void *state, FILE *out)
{
	const ttt_lobby_t *lb = state;
	fprintf(out,
	        "games matched %" PRIu64 ", finished %" PRIu64 " (X %" PRIu64 ", O %" PRIu64
	        ", draws %" PRIu64 "), %" PRIu64 " moves\n",
	        lb->matched, lb->finished, lb->x_wins, lb->o_wins, lb->draws, lb->moves);
	for (size_t i = 0; i < lb->nwaiting; i++)
		fprintf(out, "waiting: %s (%s)\n", lb->waiting[i].id, lb->waiting[i].name);
	for (size_t i = 0; i < lb->ngames; i++)
		fprintf(out, "%s: %s (X %s, O %s)\n", lb->games[i].started ? "playing" : "opening",
		        lb->games[i].game, lb->games[i].x.id, lb->games[i].o.id);
}

/* ------------------------------------------------------------------------ */
/* Telling players, asking games                                             */

static void tell_update(skald_actor_t *self, const ttt_lobby_t *lb, skald_ref_t to)
{
	if (!skald_ref_is_null(to))
		ttt_tell(self, to, ttt_type.update,
		         json_pack("{s:I, s:I}", "waiting", (json_int_t)lb->nwaiting, "playing",
		                   (json_int_t)lb->ngames));
}

static void tell_matched(skald_actor_t *self, const ttt_match_t *m, const ttt_waiter_t *to,
                         const char *you, const ttt_waiter_t *other)
{
	if (!skald_ref_is_null(to->ref))
		ttt_tell(self, to->ref, ttt_type.matched,
		         json_pack("{s:s, s:s, s:s, s:s}", "game", m->game, "you", you, "opponent",
		                   other->name, "opponent_id", other->id));
}

static void flush(skald_actor_t *self, ttt_lobby_t *lb);
static void ask_start(skald_actor_t *self, ttt_lobby_t *lb, ttt_match_t *m);

static void retry_timer(skald_actor_t *self, void *state, void *arg)
{
	ttt_lobby_t *lb = state;
	for (size_t i = 0; i < lb->ngames; i++) {
		if (lb->games[i].retry) {
			lb->games[i].retry = false;
			ask_start(self, lb, &lb->games[i]);
		}
	}
}

/* Notes a game's end, to be stored by flush. */
static void note_result(ttt_lobby_t *lb, const char *game, const char *result, long moves)
{
	for (size_t i = 0; i < lb->nresults; i++)
		if (strcmp(lb->results[i].game, game) == 0)
			return;
	if (ttt_grow(&lb->results, &lb->capresults, lb->nresults, sizeof *lb->results) < 0) {
		complain(lb, game, "no memory to note its end");
		return;
	}
	ttt_result_t *r = &lb->results[lb->nresults++];
	snprintf(r->game, sizeof r->game, "%s", game);
	snprintf(r->result, sizeof r->result, "%s", result);
	r->moves = moves;
}

static void started(skald_actor_t *self, void *state, int status, skald_msg_t *reply, void *arg)
{
	ttt_lobby_t *lb = state;
	char *game = arg;
	if (status == SKALD_ECANCELED) {
		free(game); /* the lobby is stopping */
		return;
	}
	int i = game_index(lb, game);
	if (i < 0) {
		free(game); /* recorded as finished meanwhile */
		return;
	}
	ttt_match_t *m = &lb->games[i];
	m->asking = false;
	const json_t *st = status == 0 ? ttt_payload(reply) : NULL;
	const char *s =
	        reply != NULL && reply->type == ttt_type.state ? ttt_str(st, "status") : NULL;
	if (s == NULL || strcmp(s, "new") == 0) {
		const char *code = ttt_str(st, "code");
		if (code != NULL && strcmp(code, TTT_ESTARTED) == 0) {
			complain(lb, game, "the game was started by other players");
			free(game);
			return;
		}
		/* The game is moving or recovering, or its node went: ask
		 * again soon (starting is idempotent). */
		free(game);
		m->retry = true;
		if (skald_timer_start(self, RETRY_MS, 0, retry_timer, NULL, NULL) < 0)
			complain(lb, m->game, "cannot start a timer to ask it again");
		return;
	}
	free(game);
	m->confirmed = true;
	bool over = strcmp(s, "playing") != 0;
	if (over) {
		const char *result = strcmp(s, "x_won") == 0   ? "X"
		                     : strcmp(s, "o_won") == 0 ? "O"
		                                               : "draw";
		note_result(lb, m->game, result,
		            (long)json_integer_value(json_object_get(st, "moves")));
	}
	/* Players who came back: to their game if it goes on; otherwise they
	 * wait for a new one (their joins are stored after the game's end). */
	const ttt_waiter_t *back[2] = {m->back_x ? &m->x : NULL, m->back_o ? &m->o : NULL};
	m->back_x = m->back_o = false;
	for (int k = 0; k < 2; k++) {
		if (back[k] == NULL)
			continue;
		if (!over)
			tell_matched(self, m, back[k], k == 0 ? "X" : "O", k == 0 ? &m->o : &m->x);
		else if (ttt_grow(&lb->joins, &lb->capjoins, lb->njoins, sizeof *lb->joins) == 0)
			lb->joins[lb->njoins++] = (ttt_join_t){*back[k], false};
	}
	flush(self, lb);
}

/* Asks the session of m to start: it answers with its state, also when it
 * is started already. Never writes. */
static void ask_start(skald_actor_t *self, ttt_lobby_t *lb, ttt_match_t *m)
{
	skald_sharding_t *games = ttt_node_games(skald_actor_system(self));
	if (m->asking || games == NULL)
		return;
	json_t *start = json_pack("{s:s, s:s, s:b}", "x", m->x.id, "o", m->o.id, "lobby", 1);
	char *game = strdup(m->game);
	int rc = start != NULL && game != NULL
	                 ? skald_sharding_ask(games, self, m->game, ttt_type.start, start, ASK_MS,
	                                      started, game)
	                 : SKALD_ENOMEM;
	if (rc == 0) {
		m->asking = true;
		return;
	}
	json_decref(start);
	free(game);
	if (rc != SKALD_ESTOPPING)
		complain(lb, m->game, skald_strerror(rc));
}

/* ------------------------------------------------------------------------ */
/* Writing what was heard, one event at a time                               */

/* What the write in flight is; the persist callback acts on it. */
typedef enum { W_WAITING = 1, W_LEFT, W_MATCHED, W_STARTED, W_FINISHED } write_t;

typedef struct {
	write_t kind;
	char game[TTT_NAME_MAX];
	skald_ref_t ref; /* W_WAITING: the player's */
} written_t;

static void after_write(skald_actor_t *self, void *state, int status, void *arg)
{
	ttt_lobby_t *lb = state;
	written_t w = *(written_t *)arg;
	free(arg);
	lb->writing = NULL;
	if (status < 0) {
		complain(lb, w.game[0] ? w.game : "lobby", "an event was not stored");
		flush(self, lb);
		return;
	}
	int i = w.game[0] ? game_index(lb, w.game) : -1;
	if (w.kind == W_WAITING && !skald_ref_is_null(w.ref)) {
		/* A waiting player whose actor stops, or whose node goes, no
		 * longer waits. */
		skald_watch(self, w.ref);
		tell_update(self, lb, w.ref);
	} else if (w.kind == W_MATCHED && i >= 0) {
		ask_start(self, lb, &lb->games[i]);
	} else if (w.kind == W_STARTED && i >= 0) {
		ttt_match_t *m = &lb->games[i];
		tell_matched(self, m, &m->x, "X", &m->o);
		tell_matched(self, m, &m->o, "O", &m->x);
	}
	flush(self, lb);
}

/* Persists one event, to be acted on in after_write. Takes data. */
static int write_event(skald_actor_t *self, ttt_lobby_t *lb, const char *type, json_t *data,
                       write_t kind, const char *game, skald_ref_t ref)
{
	written_t *w = calloc(1, sizeof *w);
	int rc = w != NULL && data != NULL ? 0 : SKALD_ENOMEM;
	if (rc == 0) {
		w->kind = kind;
		snprintf(w->game, sizeof w->game, "%s", game != NULL ? game : "");
		w->ref = ref;
		rc = skald_persist(self, type, 1, data, after_write, w);
	}
	if (rc < 0) {
		json_decref(data);
		free(w);
		complain(lb, game != NULL ? game : "lobby", skald_strerror(rc));
		return rc;
	}
	/* Kept in the state: if the lobby stops before the write completes,
	 * the callback never runs and fini frees it. */
	lb->writing = w;
	return 0;
}

static int write_matched(skald_actor_t *self, ttt_lobby_t *lb, const ttt_waiter_t *x,
                         const ttt_waiter_t *o)
{
	ttt_match_t m = {.x = *x, .o = *o};
	snprintf(m.game, sizeof m.game, "g%" PRIu64, lb->matched + 1);
	return write_event(self, lb, "lobby.matched", match_json(&m), W_MATCHED, m.game,
	                   SKALD_REF_NULL);
}

/* The next note that still means a change, as an event. */
static bool flush_one(skald_actor_t *self, ttt_lobby_t *lb)
{
	for (size_t i = 0; i < lb->ngames; i++) {
		ttt_match_t *m = &lb->games[i];
		if (m->confirmed && !m->started)
			return write_event(self, lb, "lobby.started",
			                   json_pack("{s:s}", "game", m->game), W_STARTED, m->game,
			                   SKALD_REF_NULL) == 0;
	}
	while (lb->nresults > 0) {
		ttt_result_t r = lb->results[0];
		remove_at(lb->results, &lb->nresults, 0, sizeof r);
		if (game_index(lb, r.game) >= 0)
			return write_event(self, lb, "lobby.finished",
			                   json_pack("{s:s, s:s, s:I}", "game", r.game, "result",
			                             r.result, "moves", (json_int_t)r.moves),
			                   W_FINISHED, r.game, SKALD_REF_NULL) == 0;
	}
	while (lb->nlefts > 0) {
		ttt_waiter_t w = lb->lefts[0];
		remove_at(lb->lefts, &lb->nlefts, 0, sizeof w);
		int i = waiting_index(lb, w.id);
		if (i >= 0 && (skald_ref_is_null(w.ref) || skald_ref_eq(w.ref, lb->waiting[i].ref)))
			return write_event(self, lb, "lobby.left",
			                   json_pack("{s:s}", "player", w.id), W_LEFT, NULL,
			                   SKALD_REF_NULL) == 0;
	}
	while (lb->njoins > 0) {
		ttt_waiter_t w = lb->joins[0].who;
		bool bot = lb->joins[0].bot;
		remove_at(lb->joins, &lb->njoins, 0, sizeof *lb->joins);
		if (game_of_player(lb, w.id) >= 0)
			continue; /* matched meanwhile: it hears of its game */
		if (bot) {
			ttt_waiter_t b = {.id = TTT_BOT, .name = TTT_BOT};
			return write_matched(self, lb, &w, &b) == 0;
		}
		int i = waiting_index(lb, w.id);
		if (i >= 0 && skald_ref_eq(lb->waiting[i].ref, w.ref)) {
			tell_update(self, lb, w.ref);
			continue;
		}
		if (i < 0 && lb->nwaiting >= TTT_LOBBY_MAX_WAITING) {
			ttt_tell(self, w.ref, ttt_type.update,
			         json_pack("{s:s}", "error", "the lobby is full; try again later"));
			continue;
		}
		return write_event(self, lb, "lobby.waiting", waiter_json(&w), W_WAITING, NULL,
		                   w.ref) == 0;
	}
	if (lb->nwaiting >= 2) {
		ttt_waiter_t x = lb->waiting[0], o = lb->waiting[1];
		return write_matched(self, lb, &x, &o) == 0;
	}
	return false;
}

/* Starts the next write, if none is in flight and something is to be
 * stored. */
static void flush(skald_actor_t *self, ttt_lobby_t *lb)
{
	/* A note whose write could not even start is dropped and counted
	 * (complain); the next event heard flushes again. */
	if (!lb->writing)
		flush_one(self, lb);
}

/* ------------------------------------------------------------------------ */
/* Commands                                                                  */

static void cmd_join(skald_actor_t *self, ttt_lobby_t *lb, const skald_msg_t *msg,
                     const json_t *body)
{
	ttt_waiter_t w = {.ref = msg->sender};
	if (ttt_name(body, "player", w.id) < 0 || ttt_name(body, "name", w.name) < 0 ||
	    strcmp(w.id, TTT_BOT) == 0 || skald_ref_is_null(w.ref))
		return;
	int gi = game_of_player(lb, w.id);
	if (gi >= 0) {
		/* Back from elsewhere (a reconnect, another node), or back from
		 * a game that ended a moment ago (its end may not have reached
		 * the lobby yet): the game is asked where it stands, and the
		 * player is sent back to it or waits for a new one. A game
		 * still opening tells its players when it has started. */
		ttt_match_t *m = &lb->games[gi];
		bool is_x = strcmp(m->x.id, w.id) == 0;
		(is_x ? &m->x : &m->o)->ref = w.ref;
		if (m->started) {
			*(is_x ? &m->back_x : &m->back_o) = true;
			ask_start(self, lb, m);
		}
		return;
	}
	bool bot = json_is_true(json_object_get(body, "bot"));
	for (size_t i = 0; i < lb->njoins; i++) {
		if (strcmp(lb->joins[i].who.id, w.id) == 0) {
			lb->joins[i].who = w;
			lb->joins[i].bot = lb->joins[i].bot || bot;
			flush(self, lb);
			return;
		}
	}
	if (ttt_grow(&lb->joins, &lb->capjoins, lb->njoins, sizeof *lb->joins) < 0) {
		complain(lb, w.id, "no memory to note a join");
		return;
	}
	lb->joins[lb->njoins++] = (ttt_join_t){w, bot};
	flush(self, lb);
}

static void note_left(ttt_lobby_t *lb, const char *id, skald_ref_t ref)
{
	ttt_waiter_t w = {.ref = ref};
	snprintf(w.id, sizeof w.id, "%s", id);
	if (ttt_grow(&lb->lefts, &lb->caplefts, lb->nlefts, sizeof w) == 0)
		lb->lefts[lb->nlefts++] = w;
	/* A join noted and not yet stored goes too. */
	for (size_t i = 0; i < lb->njoins; i++) {
		if (strcmp(lb->joins[i].who.id, id) == 0) {
			remove_at(lb->joins, &lb->njoins, i, sizeof *lb->joins);
			break;
		}
	}
}

static json_t *status_json(const ttt_lobby_t *lb)
{
	size_t playing = 0;
	for (size_t i = 0; i < lb->ngames; i++)
		playing += lb->games[i].started;
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "waiting",
	                 (json_int_t)lb->nwaiting, "ready", (json_int_t)(lb->ngames - playing),
	                 "playing", (json_int_t)playing, "matched", (json_int_t)lb->matched,
	                 "finished", (json_int_t)lb->finished, "x_wins", (json_int_t)lb->x_wins,
	                 "o_wins", (json_int_t)lb->o_wins, "draws", (json_int_t)lb->draws, "moves",
	                 (json_int_t)lb->moves, "errors", (json_int_t)lb->errors);
}

static int command(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	ttt_lobby_t *lb = state;
	if (msg->type == SKALD_TYPE_DOWN) {
		skald_ref_t ref = ((const skald_down_t *)msg->payload)->ref;
		for (size_t i = 0; i < lb->nwaiting; i++)
			if (skald_ref_eq(lb->waiting[i].ref, ref))
				note_left(lb, lb->waiting[i].id, ref);
		flush(self, lb);
		return 0;
	}
	const json_t *body = ttt_payload(msg);
	if (body == NULL)
		return 0;
	if (msg->type == ttt_type.join) {
		cmd_join(self, lb, msg, body);
	} else if (msg->type == ttt_type.leave) {
		const char *id = ttt_str(body, "player");
		if (id != NULL && waiting_index(lb, id) >= 0) {
			note_left(lb, id, SKALD_REF_NULL);
			flush(self, lb);
		}
	} else if (msg->type == ttt_type.finished) {
		const char *game = ttt_str(body, "game"), *result = ttt_str(body, "result");
		if (game != NULL && result != NULL && game_index(lb, game) >= 0) {
			note_result(lb, game, result,
			            (long)json_integer_value(json_object_get(body, "moves")));
			flush(self, lb);
		}
	} else if (msg->type == ttt_type.status) {
		ttt_reply(self, msg, ttt_type.lobby, status_json(lb));
	}
	return 0;
}

static void recovered(skald_actor_t *self, void *state)
{
	ttt_lobby_t *lb = state;
	/* The lobby may have moved: the waiting players' actors are watched
	 * again (a notice comes at once for those that are gone), and every
	 * game is asked where it stands. */
	for (size_t i = 0; i < lb->nwaiting; i++)
		if (!skald_ref_is_null(lb->waiting[i].ref))
			skald_watch(self, lb->waiting[i].ref);
	for (size_t i = 0; i < lb->ngames; i++)
		ask_start(self, lb, &lb->games[i]);
	flush(self, lb);
}

const skald_entity_type_t tictactoe_lobby = {
        .name = "lobby",
        .state_size = sizeof(ttt_lobby_t),
        .command = command,
        .apply = apply,
        .recovered = recovered,
        .fini = fini,
        .snapshot = snapshot,
        .restore = restore,
        .snapshot_every = 100,
        .snapshot_version = 1,
        .print = print,
};
