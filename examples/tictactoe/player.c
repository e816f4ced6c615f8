/*
 * examples/tictactoe/player.c - a simulated player (see player.h).
 *
 * The player acts on game states: the answer to its own ttt.get or ttt.move,
 * or the state a game sends when the opponent has moved. States carry the
 * game's seq, and one no newer than the last acted on is ignored, so that a
 * late or repeated notice can never make the player move twice.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "player.h"

/* A game answers after one journal write; this only fires if it is gone. */
#define ASK_MS 5000
/* Pause before asking the lobby again after a ttt.retry or a lost game. */
#define RETRY_MS 5

typedef struct {
	const ttt_player_arg_t *arg;
	uint64_t rng;
	char game[TTT_NAME_MAX]; /* "" between games */
	skald_ref_t session;
	char mark;
	uint64_t seen; /* seq of the latest state acted on */
	bool moving;   /* a legal move is on its way */
	bool done;
	bool gone;           /* walked away: ignores everything */
	unsigned long moves; /* legal moves made, in every game */
} player_t;

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
	atomic_fetch_add(&p->arg->totals->errors, 1);
	fprintf(stderr, "tictactoe: %s in %s: %s\n", p->arg->name, p->game, what);
}

static void join(skald_actor_t *self, player_t *p)
{
	if (p->gone)
		return;
	p->game[0] = '\0';
	ttt_tell(self, p->arg->lobby, ttt_type.join, json_pack("{s:s}", "player", p->arg->name));
}

static void rejoin_timer(skald_actor_t *self, void *state, void *arg)
{
	join(self, state);
}

static void rejoin_later(skald_actor_t *self, player_t *p)
{
	p->game[0] = '\0';
	if (skald_timer_start(self, RETRY_MS, 0, rejoin_timer, NULL, NULL) < 0)
		join(self, p);
}

static void handle_state(skald_actor_t *self, player_t *p, const json_t *st);

static void got_state(skald_actor_t *self, void *state, int status, skald_msg_t *reply, void *arg)
{
	player_t *p = state;
	if (status == SKALD_ECANCELED)
		return;
	if (status < 0 || reply->type != ttt_type.state) {
		/* The session went away (the lobby starts it again when asked). */
		rejoin_later(self, p);
		return;
	}
	handle_state(self, p, ttt_payload(reply));
}

static void probed(skald_actor_t *self, void *state, int status, skald_msg_t *reply, void *arg)
{
	player_t *p = state;
	uint64_t expect_seq = (uint64_t)(uintptr_t)arg;
	if (status == SKALD_ECANCELED)
		return;
	if (status < 0) {
		/* The game closed (and its session stopped) before the probe
		 * arrived: nothing to learn about the rules. */
		atomic_fetch_add(&p->arg->totals->unanswered, 1);
		return;
	}
	const json_t *r = ttt_payload(reply);
	if (reply->type != ttt_type.rejected) {
		fault(p, "an illegal move was accepted");
		return;
	}
	atomic_fetch_add(&p->arg->totals->rejected, 1);
	/* A probe made on our turn is answered before our real move is
	 * handled, so the game must still be at the seq we saw. */
	if (expect_seq != 0 &&
	    (uint64_t)json_integer_value(json_object_get(r, "seq")) != expect_seq)
		fault(p, "a rejected move changed the game");
}

static void moved(skald_actor_t *self, void *state, int status, skald_msg_t *reply, void *arg)
{
	player_t *p = state;
	p->moving = false;
	if (status == SKALD_ECANCELED)
		return;
	if (status < 0) {
		rejoin_later(self, p);
		return;
	}
	const json_t *r = ttt_payload(reply);
	if (reply->type != ttt_type.state) {
		char why[160];
		const char *err = ttt_str(r, "error");
		snprintf(why, sizeof why, "a legal move was rejected: %s", err ? err : "?");
		fault(p, why);
		rejoin_later(self, p);
		return;
	}
	p->moves++;
	atomic_fetch_add(&p->arg->totals->moves, 1);
	handle_state(self, p, r);
}

/* Tries a move the game must reject. On our turn the cell is occupied or
 * out of range; out of turn it is either, so that it stays illegal even if
 * the opponent moves before the probe arrives. */
static void probe(skald_actor_t *self, player_t *p, const char *board, bool my_turn, uint64_t seq)
{
	int occupied[9], n = 0;
	for (int i = 0; i < 9; i++)
		if (board[i] != '.')
			occupied[n++] = i;
	int roll = (int)(next_random(p) % 3);
	json_int_t cell = n > 0 && roll > 0 ? occupied[next_random(p) % (unsigned)n]
	                  : roll == 1       ? -1
	                                    : 9;
	json_t *m = json_pack("{s:s, s:I}", "player", p->arg->name, "cell", cell);
	if (m != NULL && skald_ask(self, p->session, ttt_type.move, m, ASK_MS, probed,
	                           (void *)(uintptr_t)(my_turn ? seq : 0)) == 0)
		atomic_fetch_add(&p->arg->totals->probes, 1);
	else
		json_decref(m);
}

static void play(skald_actor_t *self, player_t *p, const char *board, uint64_t seq)
{
	int empty[9], n = 0;
	for (int i = 0; i < 9; i++)
		if (board[i] == '.')
			empty[n++] = i;
	if (n == 0) {
		fault(p, "our turn on a full board");
		return;
	}
	if (p->arg->leave_after > 0 && p->moves >= p->arg->leave_after) {
		/* On our turn, so the game is certainly left unfinished. */
		p->gone = true;
		atomic_fetch_add(&p->arg->totals->gone, 1);
		return;
	}
	if (next_random(p) % 100 < p->arg->probe_percent)
		probe(self, p, board, true, seq);
	json_t *m = json_pack("{s:s, s:i}", "player", p->arg->name, "cell",
	                      empty[next_random(p) % (unsigned)n]);
	if (m == NULL || skald_ask(self, p->session, ttt_type.move, m, ASK_MS, moved, NULL) < 0) {
		json_decref(m);
		rejoin_later(self, p);
		return;
	}
	p->moving = true;
}

static void handle_state(skald_actor_t *self, player_t *p, const json_t *st)
{
	const char *game = ttt_str(st, "game"), *status = ttt_str(st, "status");
	const char *board = ttt_str(st, "board"), *turn = ttt_str(st, "turn");
	uint64_t seq = (uint64_t)json_integer_value(json_object_get(st, "seq"));
	if (p->gone || game == NULL || strcmp(game, p->game) != 0 || status == NULL ||
	    board == NULL || strlen(board) != 9 || seq <= p->seen)
		return; /* from an earlier game, or already acted on */
	p->seen = seq;
	if (strcmp(status, "playing") != 0) {
		if (strcmp(status, "new") == 0)
			fault(p, "the game has not started");
		atomic_fetch_add(&p->arg->totals->games, 1);
		join(self, p);
		return;
	}
	bool mine = turn != NULL && turn[0] == p->mark;
	if (mine && !p->moving)
		play(self, p, board, seq);
	else if (!mine && next_random(p) % 100 < p->arg->probe_percent)
		probe(self, p, board, false, seq);
}

static void assigned(skald_actor_t *self, player_t *p, const json_t *body)
{
	const char *mark = ttt_str(body, "mark");
	skald_ref_t session;
	if (ttt_name(body, "game", p->game) < 0 || mark == NULL ||
	    ttt_ref_parse(ttt_str(body, "session"), &session) < 0) {
		fault(p, "malformed ttt.assigned");
		rejoin_later(self, p);
		return;
	}
	p->session = session;
	p->mark = mark[0];
	p->seen = 0;
	p->moving = false;
	/* Ask where the game stands: it is new, or resumed after a restart.
	 * Asking also tells the game where to send the opponent's moves. */
	json_t *get = json_pack("{s:s}", "player", p->arg->name);
	if (get == NULL ||
	    skald_ask(self, session, ttt_type.get, get, ASK_MS, got_state, NULL) < 0) {
		json_decref(get);
		rejoin_later(self, p);
	}
}

static int player_init(skald_actor_t *self, void *state, void *arg)
{
	player_t *p = state;
	p->arg = arg;
	p->rng = p->arg->seed;
	join(self, p);
	return 0;
}

static int player_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	player_t *p = state;
	const json_t *body = ttt_payload(msg);
	if (body == NULL || p->gone)
		return 0;
	if (msg->type == ttt_type.state) {
		handle_state(self, p, body);
	} else if (msg->type == ttt_type.assigned) {
		assigned(self, p, body);
	} else if (msg->type == ttt_type.retry) {
		rejoin_later(self, p);
	} else if (msg->type == ttt_type.done && !p->done) {
		p->done = true;
		atomic_fetch_add(&p->arg->totals->done, 1);
	}
	return 0;
}

const skald_behavior_t ttt_player = {
        .state_size = sizeof(player_t),
        .init = player_init,
        .receive = player_receive,
        .free_arg = free,
};
