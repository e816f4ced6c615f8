/*
 * examples/tictactoe/player.c - Player (see player.h).
 *
 * A bot acts on game states: the answer to its own watch or move, or the
 * state its game sends after every change. It acts on a state only if it
 * has more moves than the last one it acted on, so that a late or repeated
 * notice never makes it move twice; after an answer it cannot trust (503:
 * the move may or may not have been applied) it reads the game again and
 * acts on what it finds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "node.h"
#include "player.h"

/* Pause before trying again after a game did not answer. */
#define RETRY_MS 50

typedef struct {
	char id[TTT_NAME_MAX], name[TTT_NAME_MAX];
	bool bot;
	ttt_autoplay_t autoplay;
} player_arg_t;

typedef struct {
	const player_arg_t *arg;
	/* The client's matchmaking stream (not for bots). */
	skald_ref_t stream;
	bool seeking, want_bot;
	uint64_t rejoin_timer, idle_timer;

	/* A bot's game. */
	uint64_t rng;
	char game[TTT_NAME_MAX]; /* "" between games */
	skald_ref_t session;     /* the game's session, watched */
	long seen;               /* moves of the last state acted on; -1: none */
	bool moving;             /* a watch or a move is on its way */
	json_t *latest;          /* the newest notice that came meanwhile */
	char board[10];          /* of the state it moves on */
} player_t;

/* ------------------------------------------------------------------------ */
/* Seeking a game                                                            */

static void join(skald_actor_t *self, player_t *p)
{
	ttt_node_t *n = ttt_node_of(skald_actor_system(self));
	json_t *m = json_pack("{s:s, s:s, s:b}", "player", p->arg->id, "name", p->arg->name, "bot",
	                      p->want_bot);
	if (n == NULL || m == NULL ||
	    skald_singleton_tell(ttt_node_lobby(n), self, ttt_type.join, m) < 0)
		json_decref(m);
}

static void rejoin(skald_actor_t *self, void *state, void *arg)
{
	player_t *p = state;
	if (p->seeking)
		join(self, p);
}

static void seek(skald_actor_t *self, player_t *p, bool bot)
{
	p->want_bot = bot;
	join(self, p);
	if (!p->seeking)
		skald_timer_start(self, TTT_REJOIN_MS, TTT_REJOIN_MS, rejoin, NULL,
		                  &p->rejoin_timer);
	p->seeking = true;
}

static void stop_seeking(skald_actor_t *self, player_t *p)
{
	if (p->seeking)
		skald_timer_cancel(self, p->rejoin_timer);
	p->seeking = false;
}

/* A line for the client's stream, if it has one. Steals line. */
static void to_stream(skald_actor_t *self, player_t *p, json_t *line)
{
	if (skald_ref_is_null(p->stream))
		json_decref(line);
	else
		ttt_tell(self, p->stream, ttt_type.line, line);
}

static void idle(skald_actor_t *self, void *state, void *arg)
{
	player_t *p = state;
	if (skald_ref_is_null(p->stream))
		skald_stop_self(self);
}

/* ------------------------------------------------------------------------ */
/* A bot's games                                                             */

static uint64_t next_random(player_t *p)
{
	/* splitmix64: tiny, and good enough to pick cells. */
	uint64_t z = (p->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void fault(player_t *p, const char *what)
{
	if (p->arg->autoplay.fault != NULL)
		p->arg->autoplay.fault(p->arg->autoplay.ctx, p->arg->id, what);
}

static void next_game(skald_actor_t *self, player_t *p)
{
	const ttt_autoplay_t *a = &p->arg->autoplay;
	p->game[0] = '\0';
	if (a->want_game(a->ctx, p->arg->id))
		seek(self, p, false);
}

static void play(skald_actor_t *self, player_t *p, const char *game);
static void act(skald_actor_t *self, player_t *p, const json_t *st);

static void retry(skald_actor_t *self, void *state, void *arg)
{
	player_t *p = state;
	if (p->game[0] != '\0')
		play(self, p, p->game);
}

/* The request on its way was answered: act on its state, then on a newer
 * notice that came meanwhile. */
static void answered_with(skald_actor_t *self, player_t *p, const json_t *st)
{
	p->moving = false;
	json_t *latest = p->latest;
	p->latest = NULL;
	act(self, p, st);
	if (latest != NULL)
		act(self, p, latest);
	json_decref(latest);
}

static void retry_later(skald_actor_t *self, player_t *p)
{
	p->moving = false;
	json_decref(p->latest);
	p->latest = NULL;
	p->seen = -1; /* the state read again is acted on */
	if (skald_timer_start(self, RETRY_MS, 0, retry, NULL, NULL) < 0)
		fault(p, "cannot start a timer");
}

static void watched(skald_actor_t *self, int status, json_t *body, skald_ref_t game, void *arg)
{
	player_t *p = skald_actor_state(self);
	char *which = arg;
	if (strcmp(which, p->game) != 0) {
		free(which); /* an answer about an earlier game */
		json_decref(body);
		return;
	}
	free(which);
	if (status == 200) {
		p->arg->autoplay.answered(p->arg->autoplay.ctx, p->game, game.node);
		/* The session may move or stop: its down notice makes the bot
		 * watch its game again, wherever it is then. */
		if (!skald_ref_eq(game, p->session)) {
			p->session = game;
			skald_watch(self, game);
		}
		answered_with(self, p, body);
	} else if (status == 404) {
		fault(p, "its game does not exist");
		next_game(self, p);
	} else {
		retry_later(self, p);
	}
	json_decref(body);
}

/* Watches game (again) and acts on its state. */
static void play(skald_actor_t *self, player_t *p, const char *game)
{
	if (game != p->game)
		snprintf(p->game, sizeof p->game, "%s", game);
	char *which = strdup(game);
	p->moving = true;
	if (which == NULL || ttt_api_watch(self, game, watched, which) < 0) {
		free(which);
		retry_later(self, p);
	}
}

static void moved(skald_actor_t *self, int status, json_t *body, skald_ref_t game, void *arg)
{
	player_t *p = skald_actor_state(self);
	char *which = arg;
	bool current = strcmp(which, p->game) == 0;
	free(which);
	if (!current) {
		json_decref(body);
		return;
	}
	if (status == 200) {
		p->arg->autoplay.answered(p->arg->autoplay.ctx, p->game, game.node);
		answered_with(self, p, body);
	} else if (status == 503) {
		/* Applied or not: read the game again and act on what it says. */
		retry_later(self, p);
	} else {
		char why[160];
		snprintf(why, sizeof why, "a legal move was refused (%d %s)", status,
		         ttt_str(body, "error") ? ttt_str(body, "error") : "");
		fault(p, why);
		retry_later(self, p);
	}
	json_decref(body);
}

static void probed(skald_actor_t *self, int status, json_t *body, skald_ref_t game, void *arg)
{
	player_t *p = skald_actor_state(self);
	if (status != 503)
		p->arg->autoplay.probed(p->arg->autoplay.ctx, status == 409);
	json_decref(body);
}

/* Tries a move the game must refuse: an occupied cell on the bot's turn,
 * any cell out of turn. */
static void probe(skald_actor_t *self, player_t *p, const char *board)
{
	int occupied[9], n = 0;
	for (int i = 0; i < 9; i++)
		if (board[i] != '.')
			occupied[n++] = i;
	if (n == 0)
		return;
	ttt_api_move(self, p->game, p->arg->id, occupied[next_random(p) % (unsigned)n], probed,
	             NULL);
}

/* Its move, on the board of the state it acts on. */
static void move_now(skald_actor_t *self, void *state, void *arg)
{
	player_t *p = state;
	int empty[9], n = 0;
	for (int i = 0; i < 9; i++)
		if (p->board[i] == '.')
			empty[n++] = i;
	if (p->game[0] == '\0')
		return; /* the game ended meanwhile */
	if (n == 0) {
		fault(p, "its turn on a full board");
		return;
	}
	if (next_random(p) % 100 < p->arg->autoplay.probe_percent)
		probe(self, p, p->board);
	char *which = strdup(p->game);
	int cell = empty[next_random(p) % (unsigned)n];
	if (which == NULL || ttt_api_move(self, p->game, p->arg->id, cell, moved, which) < 0) {
		free(which);
		retry_later(self, p);
	}
}

static void act(skald_actor_t *self, player_t *p, const json_t *st)
{
	const char *board = ttt_str(st, "board"), *next = ttt_str(st, "next");
	const char *game = ttt_str(st, "game_id");
	long moves = (long)json_integer_value(json_object_get(st, "moves"));
	if (board == NULL || strlen(board) != 9 || game == NULL || strcmp(game, p->game) != 0)
		return; /* of another game */
	if (!json_is_null(json_object_get(st, "result"))) {
		char over[TTT_NAME_MAX];
		snprintf(over, sizeof over, "%s", p->game);
		if (!skald_ref_is_null(p->session))
			skald_unwatch(self, p->session);
		p->session = SKALD_REF_NULL;
		p->game[0] = '\0';
		p->moving = false;
		json_decref(p->latest);
		p->latest = NULL;
		p->arg->autoplay.game_over(p->arg->autoplay.ctx, p->arg->id, over, st);
		next_game(self, p);
		return;
	}
	if (p->moving) {
		/* Kept for when the answer on its way has come. */
		if (p->latest == NULL ||
		    moves > (long)json_integer_value(json_object_get(p->latest, "moves"))) {
			json_decref(p->latest);
			p->latest = json_deep_copy(st);
		}
		return;
	}
	if (moves <= p->seen)
		return; /* not newer than what it acted on */
	p->seen = moves;
	if (next == NULL || strcmp(next, p->arg->id) != 0)
		return;
	/* It thinks a little first, as players do; notices that come
	 * meanwhile wait in p->latest. */
	memcpy(p->board, board, 10);
	p->moving = true;
	uint64_t think = p->arg->autoplay.think_ms;
	think = think > 0 ? next_random(p) % (2 * think + 1) : 0;
	if (skald_timer_start(self, think, 0, move_now, NULL, NULL) < 0)
		retry_later(self, p);
}

/* ------------------------------------------------------------------------ */
/* The actor                                                                 */

static void matched(skald_actor_t *self, player_t *p, const json_t *body)
{
	const char *game = ttt_str(body, "game"), *you = ttt_str(body, "you");
	if (game == NULL || you == NULL)
		return;
	stop_seeking(self, p);
	const char *opponent = ttt_str(body, "opponent"),
	           *opponent_id = ttt_str(body, "opponent_id");
	to_stream(self, p,
	          json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "matched", "game_id", game, "you",
	                    you, "opponent", opponent != NULL ? opponent : "", "opponent_id",
	                    opponent_id != NULL ? opponent_id : ""));
	if (p->arg->bot && strcmp(p->game, game) != 0) {
		p->arg->autoplay.playing(p->arg->autoplay.ctx, p->arg->id, game);
		p->seen = -1;
		play(self, p, game);
	}
}

static int player_init(skald_actor_t *self, void *state, void *arg)
{
	player_t *p = state;
	p->arg = arg;
	p->seen = -1;
	if (!p->arg->bot)
		return skald_timer_start(self, TTT_PLAYER_IDLE_MS, TTT_PLAYER_IDLE_MS, idle, NULL,
		                         &p->idle_timer);
	p->rng = p->arg->autoplay.seed;
	if (p->arg->autoplay.resume[0] != '\0')
		play(self, p, p->arg->autoplay.resume);
	else
		next_game(self, p);
	return 0;
}

static int player_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	player_t *p = state;
	if (msg->type == SKALD_TYPE_DOWN) {
		skald_ref_t ref = ((const skald_down_t *)msg->payload)->ref;
		if (skald_ref_eq(ref, p->stream)) {
			/* The client went away before it was matched. */
			p->stream = SKALD_REF_NULL;
			if (p->seeking) {
				stop_seeking(self, p);
				ttt_node_t *n = ttt_node_of(skald_actor_system(self));
				json_t *m = json_pack("{s:s}", "player", p->arg->id);
				if (n == NULL || m == NULL ||
				    skald_singleton_tell(ttt_node_lobby(n), self, ttt_type.leave,
				                         m) < 0)
					json_decref(m);
			}
		} else if (skald_ref_eq(ref, p->session) && p->game[0] != '\0') {
			/* The game's session stopped or its node went: watch it
			 * again; sharding starts it on its new owner. */
			p->session = SKALD_REF_NULL;
			play(self, p, p->game);
		}
		return 0;
	}
	const json_t *body = ttt_payload(msg);
	if (body == NULL)
		return 0;
	if (msg->type == ttt_type.seek && !skald_ref_is_null(msg->sender)) {
		if (!skald_ref_is_null(p->stream) && !skald_ref_eq(p->stream, msg->sender)) {
			to_stream(self, p,
			          json_pack("{s:s, s:s, s:s}", "type", "error", "code", "replaced",
			                    "error", "another matchmaking request of this player"));
			skald_unwatch(self, p->stream);
		}
		p->stream = msg->sender;
		skald_watch(self, p->stream);
		seek(self, p, json_is_true(json_object_get(body, "bot")));
	} else if (msg->type == ttt_type.update) {
		const char *error = ttt_str(body, "error");
		to_stream(self, p,
		          error != NULL ? json_pack("{s:s, s:s, s:s}", "type", "error", "code",
		                                    "lobby_full", "error", error)
		                        : json_pack("{s:s, s:O, s:O}", "type", "waiting", "waiting",
		                                    json_object_get(body, "waiting"), "playing",
		                                    json_object_get(body, "playing")));
	} else if (msg->type == ttt_type.matched) {
		matched(self, p, body);
	} else if (msg->type == ttt_type.state && p->arg->bot && p->game[0] != '\0') {
		json_t *s = ttt_api_state(body);
		if (s != NULL)
			act(self, p, s);
		json_decref(s);
	}
	return 0;
}

static void player_stop(skald_actor_t *self, void *state, int reason)
{
	player_t *p = state;
	json_decref(p->latest);
	p->latest = NULL;
}

static const skald_behavior_t player_behavior = {
        .state_size = sizeof(player_t),
        .init = player_init,
        .receive = player_receive,
        .stop = player_stop,
        .free_arg = free,
};

int ttt_player_start(skald_system_t *sys, const char *id, const char *name,
                     const ttt_autoplay_t *autoplay, skald_ref_t *out)
{
	player_arg_t *a = calloc(1, sizeof *a);
	if (a == NULL)
		return SKALD_ENOMEM;
	snprintf(a->id, sizeof a->id, "%s", id);
	snprintf(a->name, sizeof a->name, "%s", name);
	if (autoplay != NULL) {
		a->bot = true;
		a->autoplay = *autoplay;
	}
	int rc = skald_spawn(sys, &player_behavior, a, NULL, out);
	if (rc < 0) {
		free(a);
		return rc;
	}
	if (autoplay != NULL)
		return 0; /* bots are found by nobody: the demo drives them */
	char reg[TTT_NAME_MAX + 16];
	ttt_api_player_name(id, reg, sizeof reg);
	if ((rc = skald_cluster_register(sys, reg, *out)) < 0)
		skald_stop(sys, *out);
	return rc;
}
