/*
 * examples/tictactoe/game.c - GameSession, the persistent entity "game"
 * (see game.h).
 *
 * The command handler decides: it checks a command against the state and
 * either rejects it with a reply (nothing is written) or persists the events
 * that describe it, and answers once they are stored. apply is the only code
 * that changes the game; it runs the same way live, in recovery and in
 * `skald replay`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "game.h"

/* ------------------------------------------------------------------------ */
/* Rules                                                                     */

static const unsigned char lines[8][3] = {
        {0, 1, 2}, {3, 4, 5}, {6, 7, 8}, /* rows */
        {0, 3, 6}, {1, 4, 7}, {2, 5, 8}, /* columns */
        {0, 4, 8}, {2, 4, 6},            /* diagonals */
};

char ttt_outcome(const char board[9])
{
	for (int i = 0; i < 8; i++) {
		char c = board[lines[i][0]];
		if (c != '.' && c == board[lines[i][1]] && c == board[lines[i][2]])
			return c;
	}
	return memchr(board, '.', 9) == NULL ? 'D' : 0;
}

static const char *const status_names[] = {"new", "playing", "x_won", "o_won", "draw"};

const char *ttt_status_name(ttt_status_t s)
{
	return (unsigned)s < sizeof status_names / sizeof status_names[0] ? status_names[s] : "?";
}

char ttt_turn(const ttt_game_t *g)
{
	return g->moves % 2 == 0 ? 'X' : 'O';
}

int ttt_bot_cell(const char board[9], char mark)
{
	char other = mark == 'X' ? 'O' : 'X';
	/* A line where `who` has two and the third is free: win or block. */
	for (int pass = 0; pass < 2; pass++) {
		char who = pass == 0 ? mark : other;
		for (int i = 0; i < 8; i++) {
			int free_cell = -1, mine = 0;
			for (int k = 0; k < 3; k++) {
				char c = board[lines[i][k]];
				if (c == who)
					mine++;
				else if (c == '.')
					free_cell = lines[i][k];
			}
			if (mine == 2 && free_cell >= 0)
				return free_cell;
		}
	}
	static const int order[9] = {4, 0, 2, 6, 8, 1, 3, 5, 7};
	for (int i = 0; i < 9; i++)
		if (board[order[i]] == '.')
			return order[i];
	return -1;
}

static ttt_status_t status_of_outcome(char outcome)
{
	return outcome == 'X' ? TTT_X_WON : outcome == 'O' ? TTT_O_WON : TTT_DRAW;
}

static int is_over(const ttt_game_t *g)
{
	return g->status > TTT_PLAYING;
}

/* 0 for X, 1 for O, -1 if name does not play in g. */
static int side_of(const ttt_game_t *g, const char *name)
{
	if (name == NULL || g->status == TTT_NEW)
		return -1;
	return strcmp(name, g->x) == 0 ? 0 : strcmp(name, g->o) == 0 ? 1 : -1;
}

/* ------------------------------------------------------------------------ */
/* Events: apply is the only writer of the game                              */

static int init(void *state, const char *id)
{
	ttt_game_t *g = state;
	if (strlen(id) >= sizeof g->id)
		return SKALD_EINVAL;
	strcpy(g->id, id);
	memset(g->board, '.', 9);
	g->board[9] = '\0';
	g->status = TTT_NEW;
	return 0;
}

static int apply_started(ttt_game_t *g, const json_t *data)
{
	char x[TTT_NAME_MAX], o[TTT_NAME_MAX];
	if (g->status != TTT_NEW || ttt_name(data, "x", x) < 0 || ttt_name(data, "o", o) < 0 ||
	    strcmp(x, o) == 0)
		return SKALD_EDECODE;
	strcpy(g->x, x);
	strcpy(g->o, o);
	g->lobby = json_is_true(json_object_get(data, "lobby"));
	g->status = TTT_PLAYING;
	return 0;
}

static int apply_moved(ttt_game_t *g, const json_t *data)
{
	const json_t *cell = json_object_get(data, "cell");
	if (g->status != TTT_PLAYING || ttt_outcome(g->board) != 0 || !json_is_integer(cell))
		return SKALD_EDECODE;
	char mark = ttt_turn(g);
	if (side_of(g, ttt_str(data, "player")) != (mark == 'X' ? 0 : 1))
		return SKALD_EDECODE;
	json_int_t c = json_integer_value(cell);
	if (c < 0 || c > 8 || g->board[c] != '.')
		return SKALD_EDECODE;
	g->board[c] = mark;
	g->moves++;
	return 0;
}

static int apply_finished(ttt_game_t *g, const json_t *data)
{
	const char *result = ttt_str(data, "result");
	char outcome = ttt_outcome(g->board);
	if (g->status != TTT_PLAYING || result == NULL || outcome == 0)
		return SKALD_EDECODE;
	/* The recorded result must be the board's: a history where they
	 * disagree was not written by this code. */
	if (strcmp(result, outcome == 'D' ? "draw" : outcome == 'X' ? "X" : "O") != 0)
		return SKALD_EDECODE;
	g->status = status_of_outcome(outcome);
	return 0;
}

static int apply(void *state, const skald_event_t *ev)
{
	ttt_game_t *g = state;
	if (ev->version != 1)
		return SKALD_EDECODE;
	if (strcmp(ev->type, "game.moved") == 0)
		return apply_moved(g, ev->data);
	if (strcmp(ev->type, "game.started") == 0)
		return apply_started(g, ev->data);
	if (strcmp(ev->type, "game.finished") == 0)
		return apply_finished(g, ev->data);
	return SKALD_EDECODE;
}

static void fini(void *state)
{
	ttt_game_t *g = state;
	free(g->writing);
}

/* ------------------------------------------------------------------------ */
/* Snapshots and printing                                                    */

static int snapshot(const void *state, json_t **out)
{
	const ttt_game_t *g = state;
	*out = json_pack("{s:s, s:s, s:s, s:i, s:s}", "x", g->x, "o", g->o, "board", g->board,
	                 "moves", (int)g->moves, "status", ttt_status_name(g->status));
	if (*out != NULL && g->lobby)
		json_object_set_new(*out, "lobby", json_true());
	return *out != NULL ? 0 : SKALD_ENOMEM;
}

static int restore(void *state, const json_t *snap, int version)
{
	ttt_game_t *g = state;
	const char *board = ttt_str(snap, "board"), *status = ttt_str(snap, "status");
	const json_t *moves = json_object_get(snap, "moves");
	if (version != 1 || board == NULL || strlen(board) != 9 || status == NULL ||
	    !json_is_integer(moves))
		return SKALD_EDECODE;
	int xs = 0, os = 0;
	for (int i = 0; i < 9; i++) {
		if (board[i] == 'X')
			xs++;
		else if (board[i] == 'O')
			os++;
		else if (board[i] != '.')
			return SKALD_EDECODE;
	}
	int s = 0;
	while (s <= TTT_DRAW && strcmp(status_names[s], status) != 0)
		s++;
	/* The same invariants apply keeps, so that a snapshot cannot smuggle in
	 * a board that no history leads to. */
	if (s > TTT_DRAW || json_integer_value(moves) != xs + os || (xs != os && xs != os + 1))
		return SKALD_EDECODE;
	g->status = (ttt_status_t)s;
	if (g->status != TTT_NEW &&
	    (ttt_name(snap, "x", g->x) < 0 || ttt_name(snap, "o", g->o) < 0))
		return SKALD_EDECODE;
	char outcome = ttt_outcome(board);
	if ((g->status == TTT_PLAYING && outcome != 0) ||
	    (is_over(g) && (outcome == 0 || status_of_outcome(outcome) != g->status)) ||
	    (g->status == TTT_NEW && xs + os != 0))
		return SKALD_EDECODE;
	memcpy(g->board, board, 10);
	g->moves = (unsigned)(xs + os);
	g->lobby = json_is_true(json_object_get(snap, "lobby"));
	return 0;
}

static void print(const void *state, FILE *out)
{
	const ttt_game_t *g = state;
	for (int r = 0; r < 3; r++)
		fprintf(out, " %c | %c | %c \n", g->board[3 * r], g->board[3 * r + 1],
		        g->board[3 * r + 2]);
}

/* ------------------------------------------------------------------------ */
/* Commands                                                                  */

void (*ttt_game_on_finished)(skald_actor_t *self, const ttt_game_t *g);

/* The state as sent to players and the lobby: the snapshot, plus what a
 * player needs to act on it. */
static json_t *state_json(skald_actor_t *self, const ttt_game_t *g)
{
	json_t *s = NULL;
	if (snapshot(g, &s) < 0)
		return NULL;
	json_object_set_new(s, "game", json_string(g->id));
	json_object_set_new(s, "seq", json_integer((json_int_t)skald_entity_seq(self)));
	if (g->status == TTT_PLAYING)
		json_object_set_new(s, "turn", json_stringn(&(char){ttt_turn(g)}, 1));
	return s;
}

static json_t *rejected_json(skald_actor_t *self, const ttt_game_t *g, const char *code,
                             const char *why)
{
	return json_pack("{s:s, s:s, s:s, s:I}", "game", g->id, "error", why, "code", code, "seq",
	                 (json_int_t)skald_entity_seq(self));
}

/* Answers a command that changes nothing. Returns 0: a command the game
 * refuses, or an answer that cannot be delivered, is no failure of the
 * game. */
static int reject(skald_actor_t *self, const ttt_game_t *g, const skald_msg_t *msg,
                  const char *code, const char *why)
{
	ttt_reply(self, msg, ttt_type.rejected, rejected_json(self, g, code, why));
	return 0;
}

/* A write in flight, and the command waiting for it (none for the bot's
 * moves). */
typedef struct {
	skald_msg_t request; /* sender and ask id; the payload is not kept */
	bool answer;
} pending_t;

static void stored(skald_actor_t *self, void *state, int status, void *arg);

/* skald_persist_all, with the data references released on failure too.
 * The pending command is also kept in the state until its callback runs:
 * if the entity stops first, the callback never runs, and fini frees it.
 * request may be NULL (nobody to answer). */
static int persist(skald_actor_t *self, ttt_game_t *g, skald_new_event_t *ev, size_t n,
                   const skald_msg_t *request)
{
	bool built = true;
	for (size_t i = 0; i < n; i++)
		built = built && ev[i].data != NULL;
	pending_t *p = built ? calloc(1, sizeof *p) : NULL;
	int rc = SKALD_ENOMEM;
	if (p != NULL) {
		if (request != NULL) {
			p->request = *request;
			p->request.payload = NULL;
			p->answer = true;
		}
		if ((rc = skald_persist_all(self, ev, n, stored, p)) == 0) {
			g->writing = p;
			return 0;
		}
	}
	for (size_t i = 0; i < n; i++)
		json_decref(ev[i].data);
	free(p);
	return rc;
}

/* The events of `who` (side 0 for X, 1 for O) playing cell c, which the
 * caller checked: game.moved, and game.finished if the move ends the game.
 * Returns how many. Decided on a copy of the board: the state itself
 * changes only when the events are applied. */
static size_t move_events(const ttt_game_t *g, const char *who, int side, int c,
                          skald_new_event_t ev[2])
{
	char board[9], mark = side == 0 ? 'X' : 'O';
	memcpy(board, g->board, 9);
	board[c] = mark;
	char outcome = ttt_outcome(board);
	size_t n = 0;
	ev[n++] = (skald_new_event_t){"game.moved", 1,
	                              json_pack("{s:s, s:i}", "player", who, "cell", c)};
	if (outcome == 'D')
		ev[n++] = (skald_new_event_t){"game.finished", 1,
		                              json_pack("{s:s}", "result", "draw")};
	else if (outcome != 0)
		ev[n++] = (skald_new_event_t){"game.finished", 1,
		                              json_pack("{s:s, s:s}", "result",
		                                        outcome == 'X' ? "X" : "O", "winner", who)};
	return n;
}

/* If the seat on turn is the bot's, writes its move. Called only when no
 * write is in flight: after recovery and from the persist callback. */
static void play_bot(skald_actor_t *self, ttt_game_t *g)
{
	if (g->status != TTT_PLAYING)
		return;
	int side = ttt_turn(g) == 'X' ? 0 : 1;
	const char *who = side == 0 ? g->x : g->o;
	if (strcmp(who, TTT_BOT) != 0)
		return;
	int c = ttt_bot_cell(g->board, ttt_turn(g));
	skald_new_event_t ev[2];
	size_t n = move_events(g, who, side, c, ev);
	int rc = persist(self, g, ev, n, NULL);
	if (rc < 0)
		fprintf(stderr, "tictactoe: game %s: the bot cannot move: %s\n", g->id,
		        skald_strerror(rc));
}

/* The game changed: its watchers hear the new state, and the lobby that
 * opened it hears when it is over. */
static void changed(skald_actor_t *self, ttt_game_t *g)
{
	for (unsigned i = 0; i < g->nwatchers; i++)
		ttt_tell(self, g->watchers[i], ttt_type.state, state_json(self, g));
	if (is_over(g) && g->lobby && ttt_game_on_finished != NULL)
		ttt_game_on_finished(self, g);
}

static void stored(skald_actor_t *self, void *state, int status, void *arg)
{
	ttt_game_t *g = state;
	pending_t *p = arg;
	g->writing = NULL;
	if (p->answer) {
		if (status < 0) {
			char why[128];
			snprintf(why, sizeof why, "journal: %s", skald_strerror(status));
			ttt_reply(self, &p->request, ttt_type.rejected,
			          rejected_json(self, g, TTT_EJOURNAL, why));
		} else {
			ttt_reply(self, &p->request, ttt_type.state, state_json(self, g));
		}
	}
	free(p);
	if (status == 0) {
		changed(self, g);
		play_bot(self, g);
	}
}

static int cmd_start(skald_actor_t *self, ttt_game_t *g, skald_msg_t *msg, const json_t *body)
{
	char x[TTT_NAME_MAX], o[TTT_NAME_MAX];
	if (ttt_name(body, "x", x) < 0 || ttt_name(body, "o", o) < 0 || strcmp(x, o) == 0)
		return reject(self, g, msg, TTT_EPLAYERS, "a game needs two different players");
	/* Starting is idempotent, so that a lobby that lost track of a game
	 * (it moved between its event and ours) can simply ask again. */
	if (g->status != TTT_NEW) {
		if (strcmp(g->x, x) != 0 || strcmp(g->o, o) != 0)
			return reject(self, g, msg, TTT_ESTARTED,
			              "already started by other players");
		ttt_reply(self, msg, ttt_type.state, state_json(self, g));
		return 0;
	}
	json_t *data = json_pack("{s:s, s:s}", "x", x, "o", o);
	if (data != NULL && json_is_true(json_object_get(body, "lobby")))
		json_object_set_new(data, "lobby", json_true());
	skald_new_event_t ev = {"game.started", 1, data};
	int rc = persist(self, g, &ev, 1, msg);
	return rc < 0 ? reject(self, g, msg, TTT_EJOURNAL, skald_strerror(rc)) : 0;
}

static int cmd_get(skald_actor_t *self, ttt_game_t *g, skald_msg_t *msg)
{
	if (g->status == TTT_NEW)
		return reject(self, g, msg, TTT_EUNKNOWN, "no such game");
	ttt_reply(self, msg, ttt_type.state, state_json(self, g));
	return 0;
}

static int cmd_watch(skald_actor_t *self, ttt_game_t *g, skald_msg_t *msg)
{
	if (g->status == TTT_NEW)
		return reject(self, g, msg, TTT_EUNKNOWN, "no such game");
	bool known = skald_ref_is_null(msg->sender);
	for (unsigned i = 0; i < g->nwatchers && !known; i++)
		known = skald_ref_eq(g->watchers[i], msg->sender);
	if (!known) {
		if (g->nwatchers == TTT_WATCHERS)
			return reject(self, g, msg, TTT_EWATCHERS,
			              "too many watchers of this game");
		/* A watcher that stops, or whose node goes, is forgotten. */
		if (skald_watch(self, msg->sender) == 0)
			g->watchers[g->nwatchers++] = msg->sender;
	}
	ttt_reply(self, msg, ttt_type.state, state_json(self, g));
	return 0;
}

static void watcher_down(ttt_game_t *g, skald_ref_t ref)
{
	for (unsigned i = 0; i < g->nwatchers; i++) {
		if (skald_ref_eq(g->watchers[i], ref)) {
			g->watchers[i] = g->watchers[--g->nwatchers];
			return;
		}
	}
}

static int cmd_move(skald_actor_t *self, ttt_game_t *g, skald_msg_t *msg, const json_t *body)
{
	const char *who = ttt_str(body, "player");
	const json_t *cell = json_object_get(body, "cell");
	int side = side_of(g, who);

	/* The checks, in the order a player would want to hear about them. */
	if (g->status == TTT_NEW)
		return reject(self, g, msg, TTT_EUNKNOWN, "no such game");
	if (is_over(g))
		return reject(self, g, msg, TTT_EOVER, "game over");
	if (side < 0 || strcmp(who, TTT_BOT) == 0)
		return reject(self, g, msg, TTT_ENOTPLAYER, "not a player of this game");
	char mark = side == 0 ? 'X' : 'O';
	if (mark != ttt_turn(g))
		return reject(self, g, msg, TTT_ETURN, "not your turn");
	json_int_t c = json_is_integer(cell) ? json_integer_value(cell) : -1;
	if (c < 0 || c > 8)
		return reject(self, g, msg, TTT_ERANGE, "cell out of range");
	if (g->board[c] != '.')
		return reject(self, g, msg, TTT_EOCCUPIED, "cell occupied");

	skald_new_event_t ev[2];
	size_t n = move_events(g, who, side, (int)c, ev);
	/* Both events in one write: a game is never stored half-finished. */
	int rc = persist(self, g, ev, n, msg);
	return rc < 0 ? reject(self, g, msg, TTT_EJOURNAL, skald_strerror(rc)) : 0;
}

static int command(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	ttt_game_t *g = state;
	if (msg->type == SKALD_TYPE_DOWN) {
		watcher_down(g, ((const skald_down_t *)msg->payload)->ref);
		return 0;
	}
	const json_t *body = ttt_payload(msg);
	if (body == NULL)
		return 0; /* not one of ours: nothing to answer */
	if (msg->type == ttt_type.move)
		return cmd_move(self, g, msg, body);
	if (msg->type == ttt_type.get)
		return cmd_get(self, g, msg);
	if (msg->type == ttt_type.watch)
		return cmd_watch(self, g, msg);
	if (msg->type == ttt_type.start)
		return cmd_start(self, g, msg, body);
	return 0;
}

static void recovered(skald_actor_t *self, void *state)
{
	/* A game that stopped (or whose node went) between a player's move and
	 * the bot's answer owes that answer now. */
	play_bot(self, state);
}

const skald_entity_type_t tictactoe_game = {
        .name = "game",
        .state_size = sizeof(ttt_game_t),
        .init = init,
        .command = command,
        .apply = apply,
        .recovered = recovered,
        .fini = fini,
        .snapshot = snapshot,
        .restore = restore,
        /* Far more often than a real game would need: with a game of 7 to 11
         * events, this makes every recovery of a finished game go through
         * restore, so the demo checks snapshots as well as events. */
        .snapshot_every = 4,
        .snapshot_version = 1,
        .print = print,
};
