/*
 * examples/tictactoe/lobby.c - the lobby (see lobby.h).
 *
 * The lobby never trusts its own record of an open game blindly: before it
 * sends a player to a game, or after a restart, it asks the session to start
 * (which is idempotent) and looks at the answer. A game found over is closed
 * then and there. This one check covers every gap between the lobby's
 * history and a game's: a restart between lobby.opened and game.started, or
 * between game.finished and lobby.closed, or a player who comes back from a
 * game before the game's own ttt.finished has reached the lobby.
 *
 * An entity writes one thing at a time: a decision that would need a second
 * write while one is in flight is handed back to the players (ttt.retry), who
 * ask again; their next ttt.join arrives after the write.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lobby.h"
#include "node.h"

/* How long the lobby waits for a session to answer. Sessions answer after
 * one journal write, so this only fires when something is broken. */
#define ASK_MS 5000

/* Retries of a session that turned out to be gone (it is started again). */
#define MAX_TRIES 3

static int grow(void *vp, size_t *cap, size_t n, size_t size)
{
	void **v = vp;
	if (n < *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : 8;
	void *p = realloc(*v, c * size);
	if (p == NULL)
		return SKALD_ENOMEM;
	*v = p;
	*cap = c;
	return 0;
}

static void complain(ttt_lobby_t *lb, const char *game, const char *what)
{
	lb->errors++;
	fprintf(stderr, "tictactoe: lobby: %s: %s\n", game, what);
}

/* ------------------------------------------------------------------------ */
/* The history                                                               */

static int open_index(const ttt_lobby_t *lb, const char *game)
{
	for (size_t i = 0; i < lb->nopen; i++)
		if (strcmp(lb->open[i].game, game) == 0)
			return (int)i;
	return -1;
}

static int open_of_player(const ttt_lobby_t *lb, const char *player)
{
	for (size_t i = 0; i < lb->nopen; i++)
		if (strcmp(lb->open[i].x, player) == 0 || strcmp(lb->open[i].o, player) == 0)
			return (int)i;
	return -1;
}

static int add_open(ttt_lobby_t *lb, const json_t *g)
{
	ttt_open_game_t o;
	if (ttt_name(g, "game", o.game) < 0 || ttt_name(g, "x", o.x) < 0 ||
	    ttt_name(g, "o", o.o) < 0 || open_index(lb, o.game) >= 0)
		return SKALD_EDECODE;
	if (grow(&lb->open, &lb->capopen, lb->nopen, sizeof o) < 0)
		return SKALD_ENOMEM;
	lb->open[lb->nopen++] = o;
	return 0;
}

static int apply_closed(ttt_lobby_t *lb, const json_t *data)
{
	const char *game = ttt_str(data, "game"), *result = ttt_str(data, "result");
	const json_t *moves = json_object_get(data, "moves");
	int i = game != NULL ? open_index(lb, game) : -1;
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
	memmove(&lb->open[i], &lb->open[i + 1], (lb->nopen - (size_t)i - 1) * sizeof lb->open[0]);
	lb->nopen--;
	return 0;
}

static int apply(void *state, const skald_event_t *ev)
{
	ttt_lobby_t *lb = state;
	if (ev->version != 1)
		return SKALD_EDECODE;
	if (strcmp(ev->type, "lobby.opened") == 0) {
		int rc = add_open(lb, ev->data);
		if (rc == 0)
			lb->opened++;
		return rc;
	}
	if (strcmp(ev->type, "lobby.closed") == 0)
		return apply_closed(lb, ev->data);
	return SKALD_EDECODE;
}

static void fini(void *state)
{
	ttt_lobby_t *lb = state;
	free(lb->open);
	free(lb->waiting);
	free(lb->sessions);
	/* The callback of a write still in flight never runs once the lobby
	 * has stopped: what it would have freed goes here. */
	free(lb->writing);
}

static int snapshot(const void *state, json_t **out)
{
	const ttt_lobby_t *lb = state;
	json_t *open = json_array();
	for (size_t i = 0; open != NULL && i < lb->nopen; i++)
		json_array_append_new(open, json_pack("{s:s, s:s, s:s}", "game", lb->open[i].game,
		                                      "x", lb->open[i].x, "o", lb->open[i].o));
	/* json_pack "o" steals open. */
	*out = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "opened", (json_int_t)lb->opened,
	                 "finished", (json_int_t)lb->finished, "x_wins", (json_int_t)lb->x_wins,
	                 "o_wins", (json_int_t)lb->o_wins, "draws", (json_int_t)lb->draws, "moves",
	                 (json_int_t)lb->moves, "open", open);
	return *out != NULL ? 0 : SKALD_ENOMEM;
}

static int restore(void *state, const json_t *snap, int version)
{
	ttt_lobby_t *lb = state;
	json_int_t opened, finished, x_wins, o_wins, draws, moves;
	json_t *open;
	if (version != 1 ||
	    json_unpack((json_t *)snap, "{s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "opened", &opened,
	                "finished", &finished, "x_wins", &x_wins, "o_wins", &o_wins, "draws",
	                &draws, "moves", &moves, "open", &open) < 0 ||
	    !json_is_array(open))
		return SKALD_EDECODE;
	lb->opened = (uint64_t)opened;
	lb->finished = (uint64_t)finished;
	lb->x_wins = (uint64_t)x_wins;
	lb->o_wins = (uint64_t)o_wins;
	lb->draws = (uint64_t)draws;
	lb->moves = (uint64_t)moves;
	lb->nopen = 0;
	size_t i;
	json_t *g;
	json_array_foreach(open, i, g)
	{
		int rc = add_open(lb, g);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void print(const void *state, FILE *out)
{
	const ttt_lobby_t *lb = state;
	fprintf(out,
	        "games opened %" PRIu64 ", finished %" PRIu64 " (X %" PRIu64 ", O %" PRIu64
	        ", draws %" PRIu64 "), %" PRIu64 " moves\n",
	        lb->opened, lb->finished, lb->x_wins, lb->o_wins, lb->draws, lb->moves);
	for (size_t i = 0; i < lb->nopen; i++)
		fprintf(out, "open: %s (X %s, O %s)\n", lb->open[i].game, lb->open[i].x,
		        lb->open[i].o);
}

/* ------------------------------------------------------------------------ */
/* Sessions and players                                                      */

static ttt_seat_t *seat_find(ttt_seat_t *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			return &v[i];
	return NULL;
}

static void seat_remove(ttt_seat_t *v, size_t *n, ttt_seat_t *s)
{
	memmove(s, s + 1, (size_t)(v + *n - (s + 1)) * sizeof *s);
	(*n)--;
}

/* The session of an open game: the live one, or a new one started. A
 * session that died is noticed when it is next asked (its ask fails with
 * SKALD_ENOACTOR, see `started`) and is started again then. The lobby does
 * not watch sessions: today the runtime leaks a watch request that reaches
 * an actor which stops before handling it (a session still recovering when
 * the system stops), and the ask covers the same ground. */
static int session_of(skald_actor_t *self, ttt_lobby_t *lb, const char *game, skald_ref_t *out)
{
	ttt_seat_t *s = seat_find(lb->sessions, lb->nsessions, game);
	if (s != NULL) {
		*out = s->ref;
		return 0;
	}
	if (grow(&lb->sessions, &lb->capsessions, lb->nsessions, sizeof *s) < 0)
		return SKALD_ENOMEM;
	int rc = ttt_node_game(self, game, out);
	if (rc < 0)
		return rc;
	s = &lb->sessions[lb->nsessions++];
	snprintf(s->name, sizeof s->name, "%s", game);
	s->ref = *out;
	return 0;
}

static void session_forget(ttt_lobby_t *lb, const char *game, skald_ref_t ref)
{
	ttt_seat_t *s = seat_find(lb->sessions, lb->nsessions, game);
	if (s != NULL && skald_ref_eq(s->ref, ref))
		seat_remove(lb->sessions, &lb->nsessions, s);
}

/* A question to a session, and who waits for its answer. */
typedef struct {
	/* The lobby's state; it lives as long as the ask can complete (pending
	 * asks are cancelled before the state is freed). */
	ttt_lobby_t *lb;
	char game[TTT_NAME_MAX];
	skald_ref_t session;
	int tries;
	size_t nplayers;
	ttt_seat_t players[2];
} check_t;

static check_t *check_new(ttt_lobby_t *lb, const char *game)
{
	check_t *c = calloc(1, sizeof *c);
	if (c != NULL) {
		c->lb = lb;
		snprintf(c->game, sizeof c->game, "%s", game);
	}
	return c;
}

static void tell_players(skald_actor_t *self, const check_t *c, uint32_t type, const char *why)
{
	for (size_t i = 0; c != NULL && i < c->nplayers; i++)
		ttt_tell(self, c->players[i].ref, type, json_pack("{s:s}", "reason", why));
}

static void join(skald_actor_t *self, ttt_lobby_t *lb, const char *name, skald_ref_t ref);

static void assign(skald_actor_t *self, const check_t *c, const json_t *state)
{
	const char *x = ttt_str(state, "x"), *o = ttt_str(state, "o");
	for (size_t i = 0; x != NULL && o != NULL && i < c->nplayers; i++) {
		const char *mark = strcmp(c->players[i].name, x) == 0 ? "X" : "O";
		ttt_tell(self, c->players[i].ref, ttt_type.assigned,
		         json_pack("{s:s, s:s, s:s, s:s, s:o}", "game", c->game, "mark", mark, "x",
		                   x, "o", o, "session", ttt_ref_json(c->session)));
	}
}

static void closed(skald_actor_t *self, void *state, int status, void *arg)
{
	ttt_lobby_t *lb = state;
	check_t *c = arg;
	lb->writing = NULL;
	if (status == 0) {
		/* The game is over for good: its session may go. A later
		 * question about it would start a new one, which recovers. */
		ttt_seat_t *s = seat_find(lb->sessions, lb->nsessions, c->game);
		if (s != NULL) {
			skald_stop(skald_actor_system(self), s->ref);
			seat_remove(lb->sessions, &lb->nsessions, s);
		}
	} else {
		complain(lb, c->game, "lobby.closed was not stored");
	}
	/* A persist callback may write again: the players who were on their
	 * way back to this game go on to the next one. */
	for (size_t i = 0; i < c->nplayers; i++)
		join(self, lb, c->players[i].name, c->players[i].ref);
	free(c);
}

/* Records that c->game is over, then lets c's players join again. Takes c. */
static void close_game(skald_actor_t *self, ttt_lobby_t *lb, check_t *c, const char *result,
                       json_int_t moves)
{
	if (open_index(lb, c->game) < 0) {
		/* Closed meanwhile, by the game's own ttt.finished. */
		for (size_t i = 0; i < c->nplayers; i++)
			join(self, lb, c->players[i].name, c->players[i].ref);
		free(c);
		return;
	}
	json_t *ev =
	        json_pack("{s:s, s:s, s:I}", "game", c->game, "result", result, "moves", moves);
	int rc = ev != NULL ? skald_persist(self, "lobby.closed", 1, ev, closed, c) : SKALD_ENOMEM;
	if (rc == 0)
		lb->writing = c;
	if (rc < 0) {
		json_decref(ev);
		if (rc != SKALD_EBUSY)
			complain(lb, c->game, skald_strerror(rc));
		tell_players(self, c, ttt_type.retry, "the lobby is busy");
		free(c);
	}
}

static void check_session(skald_actor_t *self, ttt_lobby_t *lb, check_t *c);

static void started(skald_actor_t *self, void *unused, int status, skald_msg_t *reply, void *arg)
{
	check_t *c = arg;
	ttt_lobby_t *lb = c->lb;
	if (status == SKALD_ECANCELED) {
		free(c); /* the lobby is stopping */
		return;
	}
	if (status == SKALD_ENOACTOR && c->tries++ < MAX_TRIES) {
		/* The session is gone (stopped after a failure, or by us after the
		 * game closed): start it again, if the game is still open. A
		 * timeout is not handled this way, since the session may only
		 * be slow, and two sessions of one game would conflict. */
		session_forget(lb, c->game, c->session);
		check_session(self, lb, c);
		return;
	}
	const json_t *st = status == 0 ? ttt_payload(reply) : NULL;
	const char *s = ttt_str(st, "status");
	if (status < 0 || reply->type != ttt_type.state || s == NULL) {
		char why[160];
		snprintf(why, sizeof why, "the session did not start: %s",
		         status < 0             ? skald_strerror(status)
		         : ttt_str(st, "error") ? ttt_str(st, "error")
		                                : "bad answer");
		complain(lb, c->game, why);
		tell_players(self, c, ttt_type.retry, "the game is unavailable");
		free(c);
		return;
	}
	if (strcmp(s, "playing") == 0) {
		assign(self, c, st);
		free(c);
		return;
	}
	/* A reply comes through the mailbox, which is held while the lobby
	 * writes: nothing is in flight here, so closing may write. */
	const char *result = strcmp(s, "x_won") == 0   ? "X"
	                     : strcmp(s, "o_won") == 0 ? "O"
	                     : strcmp(s, "draw") == 0  ? "draw"
	                                               : NULL;
	if (result == NULL) {
		complain(lb, c->game, "the session answered ttt.start with a game not started");
		tell_players(self, c, ttt_type.retry, "the game is unavailable");
		free(c);
		return;
	}
	close_game(self, lb, c, result, json_integer_value(json_object_get(st, "moves")));
}

/* Asks the session of c->game to start (it may be started already) and
 * goes on in `started`. Takes c. Never writes, so it is safe from any
 * callback. */
static void check_session(skald_actor_t *self, ttt_lobby_t *lb, check_t *c)
{
	int i = open_index(lb, c->game);
	if (i < 0) {
		/* Closed while we were asking: the players start over. */
		tell_players(self, c, ttt_type.retry, "the game is over");
		free(c);
		return;
	}
	int rc = session_of(self, lb, c->game, &c->session);
	if (rc == 0) {
		json_t *start = json_pack("{s:s, s:s}", "x", lb->open[i].x, "o", lb->open[i].o);
		rc = start != NULL ? skald_ask(self, c->session, ttt_type.start, start, ASK_MS,
		                               started, c)
		                   : SKALD_ENOMEM;
		if (rc == 0)
			return;
		json_decref(start);
	}
	if (rc == SKALD_ESTOPPING) {
		free(c); /* nothing to do: everyone is stopping */
		return;
	}
	complain(lb, c->game, skald_strerror(rc));
	tell_players(self, c, ttt_type.retry, "the game is unavailable");
	free(c);
}

static void flush_waiting_if_done(skald_actor_t *self, ttt_lobby_t *lb)
{
	if (lb->opened < lb->target)
		return;
	for (size_t i = 0; i < lb->nwaiting; i++)
		ttt_tell(self, lb->waiting[i].ref, ttt_type.done, json_object());
	lb->nwaiting = 0;
}

static void opened(skald_actor_t *self, void *state, int status, void *arg)
{
	ttt_lobby_t *lb = state;
	check_t *c = arg;
	lb->writing = NULL;
	if (status < 0) {
		complain(lb, c->game, "lobby.opened was not stored");
		tell_players(self, c, ttt_type.retry, "the lobby could not open a game");
		free(c);
		return;
	}
	check_session(self, lb, c);
	flush_waiting_if_done(self, lb);
}

/* Opens the next game for x and o. */
static void open_game(skald_actor_t *self, ttt_lobby_t *lb, ttt_seat_t x, ttt_seat_t o)
{
	char game[TTT_NAME_MAX];
	snprintf(game, sizeof game, "g%" PRIu64, lb->opened + 1);
	check_t *c = check_new(lb, game);
	json_t *ev = json_pack("{s:s, s:s, s:s}", "game", game, "x", x.name, "o", o.name);
	int rc = c != NULL && ev != NULL ? skald_persist(self, "lobby.opened", 1, ev, opened, c)
	                                 : SKALD_ENOMEM;
	if (rc == 0) {
		c->players[0] = x;
		c->players[1] = o;
		c->nplayers = 2;
		lb->writing = c;
		return;
	}
	json_decref(ev);
	free(c);
	if (rc != SKALD_EBUSY)
		complain(lb, game, skald_strerror(rc));
	check_t tmp = {.nplayers = 2, .players = {x, o}};
	tell_players(self, &tmp, ttt_type.retry, "the lobby is busy");
}

static void join(skald_actor_t *self, ttt_lobby_t *lb, const char *name, skald_ref_t ref)
{
	ttt_seat_t me = {.ref = ref};
	snprintf(me.name, sizeof me.name, "%s", name);
	ttt_seat_t *w = seat_find(lb->waiting, lb->nwaiting, name);
	if (w != NULL) {
		w->ref = ref; /* asked twice: the latest reference wins */
		return;
	}
	int i = open_of_player(lb, name);
	if (i >= 0) {
		/* A returning player (after a restart, or straight from a game
		 * that may just have ended): check the game before sending the
		 * player back to it. */
		check_t *c = check_new(lb, lb->open[i].game);
		if (c == NULL) {
			ttt_tell(self, ref, ttt_type.retry,
			         json_pack("{s:s}", "reason", "no memory"));
			return;
		}
		c->players[0] = me;
		c->nplayers = 1;
		check_session(self, lb, c);
		return;
	}
	if (lb->opened >= lb->target) {
		ttt_tell(self, ref, ttt_type.done, json_object());
		return;
	}
	if (lb->nwaiting > 0) {
		ttt_seat_t x = lb->waiting[0];
		seat_remove(lb->waiting, &lb->nwaiting, &lb->waiting[0]);
		open_game(self, lb, x, me);
		return;
	}
	if (grow(&lb->waiting, &lb->capwaiting, lb->nwaiting, sizeof me) < 0) {
		ttt_tell(self, ref, ttt_type.retry, json_pack("{s:s}", "reason", "no memory"));
		return;
	}
	lb->waiting[lb->nwaiting++] = me;
}

/* ------------------------------------------------------------------------ */
/* Commands                                                                  */

static json_t *status_json(skald_actor_t *self, const ttt_lobby_t *lb)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "opened",
	                 (json_int_t)lb->opened, "finished", (json_int_t)lb->finished, "open",
	                 (json_int_t)lb->nopen, "x_wins", (json_int_t)lb->x_wins, "o_wins",
	                 (json_int_t)lb->o_wins, "draws", (json_int_t)lb->draws, "moves",
	                 (json_int_t)lb->moves, "target", (json_int_t)lb->target, "errors",
	                 (json_int_t)lb->errors, "waiting", (json_int_t)lb->nwaiting, "seq",
	                 (json_int_t)skald_entity_seq(self), "complete",
	                 lb->opened >= lb->target && lb->nopen == 0);
}

static int command(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	ttt_lobby_t *lb = state;
	const json_t *body = ttt_payload(msg);
	if (body == NULL)
		return 0;
	if (msg->type == ttt_type.join) {
		char name[TTT_NAME_MAX];
		if (ttt_name(body, "player", name) == 0 && !skald_ref_is_null(msg->sender))
			join(self, lb, name, msg->sender);
	} else if (msg->type == ttt_type.finished) {
		/* Only the live session of a game speaks for it. */
		const char *game = ttt_str(body, "game"), *result = ttt_str(body, "result");
		ttt_seat_t *s = game != NULL ? seat_find(lb->sessions, lb->nsessions, game) : NULL;
		if (s != NULL && result != NULL && skald_ref_eq(s->ref, msg->sender)) {
			check_t *c = check_new(lb, game);
			if (c != NULL)
				close_game(self, lb, c, result,
				           json_integer_value(json_object_get(body, "moves")));
		}
	} else if (msg->type == ttt_type.status) {
		ttt_reply(self, msg, ttt_type.lobby, status_json(self, lb));
	} else if (msg->type == ttt_type.configure) {
		/* The games already open count towards the target: a restarted
		 * run finishes them first and opens fewer new ones. */
		json_int_t games = json_integer_value(json_object_get(body, "games"));
		lb->target = lb->finished + (games > 0 ? (uint64_t)games : 0);
		flush_waiting_if_done(self, lb);
		ttt_reply(self, msg, ttt_type.lobby, status_json(self, lb));
	}
	return 0;
}

static void recovered(skald_actor_t *self, void *state)
{
	ttt_lobby_t *lb = state;
	/* Every unfinished game gets its session back at once: it recovers
	 * its moves from the journal, and a game that ended while the lobby
	 * was down is closed now. */
	for (size_t i = 0; i < lb->nopen; i++) {
		check_t *c = check_new(lb, lb->open[i].game);
		if (c != NULL)
			check_session(self, lb, c);
	}
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
