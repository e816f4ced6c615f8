/*
 * tests/tool/test_tictactoe.c - the tic-tac-toe cluster as a user runs it:
 * three `tictactoe node` processes on PostgreSQL, played through the HTTP
 * API by this test's client, checked by reading the journal back.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "../../examples/tictactoe/game.h"
#include "ttt.h"

#define GAMES 200

TestSuite(tictactoe, .fini = tn_cleanup);

/* A game as the client knows it from the answers it got. */
typedef struct {
	char id[32], x[32], o[32];
	char board[10];
	int moves;
	bool over;
	char owner[32]; /* the node that answered for it last */
	/* The moves answered 200: cell and side of the k-th move. */
	int acked_cell[9], acked_side[9];
	bool acked[9];
} tgame_t;

static void take_state(tgame_t *g, const json_t *st)
{
	snprintf(g->board, sizeof g->board, "%s", tn_str(st, "board"));
	g->moves = (int)json_integer_value(json_object_get(st, "moves"));
	g->over = !json_is_null(json_object_get(st, "result"));
}

/* The next live node, round-robin. */
static tn_node_t *next_node(tn_node_t *nodes, int k, int *rr)
{
	for (int i = 0; i < k; i++) {
		tn_node_t *n = &nodes[(*rr)++ % k];
		if (n->alive)
			return n;
	}
	cr_assert_fail("no node is alive");
	return NULL;
}

/* Reads the game until some node answers (after an answer that left the
 * outcome of a move unknown). */
static void resync(tgame_t *g, tn_node_t *nodes, int k, int *rr)
{
	char path[96];
	snprintf(path, sizeof path, "/games/%.31s", g->id);
	for (int tries = 0;; tries++) {
		json_t *st = NULL;
		int status =
		        tn_request(next_node(nodes, k, rr), "GET", path, NULL, NULL, &st, g->owner);
		if (status == 200)
			take_state(g, st);
		json_decref(st);
		if (status == 200)
			return;
		cr_assert(status == 0 || status == 503, "GET %s: %d", path, status);
		cr_assert_lt(tries, 400, "game %s did not answer for 20 s", g->id);
		usleep(50 * 1000);
	}
}

/* One move of the player on turn, a random free cell, through node `via`
 * (NULL: the next live one); with kill, via is killed while the move is on
 * its way. Returns the HTTP status (0: no answer). */
static int play_one(tgame_t *g, tn_node_t *nodes, int k, int *rr, unsigned *seed, tn_node_t *via,
                    bool kill)
{
	int side = g->moves % 2, free_cells[9], nfree = 0;
	for (int i = 0; i < 9; i++)
		if (g->board[i] == '.')
			free_cells[nfree++] = i;
	cr_assert_gt(nfree, 0, "game %s: no free cell and not over", g->id);
	int cell = free_cells[rand_r(seed) % nfree];
	char path[96], body[160];
	snprintf(path, sizeof path, "/games/%.31s/moves", g->id);
	snprintf(body, sizeof body, "{\"player_id\":\"%s\",\"row\":%d,\"col\":%d}",
	         side == 0 ? g->x : g->o, cell / 3, cell % 3);
	json_t *st = NULL;
	int before = g->moves;
	if (via == NULL)
		via = next_node(nodes, k, rr);
	int status = kill ? tn_request_and_kill(via, "POST", path, body)
	                  : tn_request(via, "POST", path, NULL, body, &st, g->owner);
	if (status == 200) {
		cr_assert_eq(json_integer_value(json_object_get(st, "moves")), before + 1,
		             "game %s: a move answered 200 with %lld moves, it had %d", g->id,
		             (long long)json_integer_value(json_object_get(st, "moves")), before);
		cr_assert_eq(tn_str(st, "board")[cell], side == 0 ? 'X' : 'O');
		g->acked[before] = true;
		g->acked_cell[before] = cell;
		g->acked_side[before] = side;
		take_state(g, st);
	} else {
		/* 503 or a node gone: the move may or may not have landed; 409:
		 * an earlier move of unknown outcome did land meanwhile. Either
		 * way, read the game. */
		cr_assert(status == 0 || status == 503 || status == 409, "move in %s: %d", g->id,
		          status);
		resync(g, nodes, k, rr);
	}
	json_decref(st);
	return status;
}

static bool has_line(const resp_t *r, void *arg)
{
	return r->body != NULL && strchr(r->body, '\n') != NULL;
}

/* GET /games/{id}/stream on n, read up to its first line (the state now),
 * then left to fill the socket while the test plays. */
static void open_stream(client_t *c, resp_t *r, tn_node_t *n, const char *game)
{
	char req[128];
	snprintf(req, sizeof req, "GET /games/%.31s/stream HTTP/1.1\r\nHost: x\r\n\r\n", game);
	cl_connect(c, n->port);
	cl_send(c, req, 0);
	cr_assert(cl_read_until(c, r, has_line, NULL), "no stream of %s", game);
	cr_assert_eq(r->status, 200, "the stream of %s: %d %s", game, r->status, r->body);
}

/* The stream of a game whose node was killed while it was watched: the
 * state when it opened, then newer states only, to the game's end. */
static void check_stream(client_t *c, resp_t *r, const tgame_t *g)
{
	cr_assert(cl_read_until(c, r, NULL, NULL) && r->done, "the stream of %s did not end",
	          g->id);
	json_t *lines = tt_json_lines(r->body);
	size_t n = json_array_size(lines);
	cr_assert_geq(n, 2, "%s", r->body);
	long moves = -1;
	size_t i;
	json_t *st;
	json_array_foreach(lines, i, st)
	{
		long m = (long)json_integer_value(json_object_get(st, "moves"));
		cr_assert_gt(m, moves, "the stream of %s went back: %s", g->id, r->body);
		moves = m;
		cr_assert_eq(json_is_null(json_object_get(st, "result")), i + 1 < n,
		             "only the last line of the stream is over: %s", r->body);
	}
	cr_assert_str_eq(tn_str(json_array_get(lines, n - 1), "board"), g->board);
	json_decref(lines);
	resp_free(r);
	cl_close(c);
}

/* The game's history in the journal against what the client was told. */
static void check_history(const char *uri, const tgame_t *g)
{
	char pid[64];
	snprintf(pid, sizeof pid, "game-%.31s", g->id);
	json_t *events = tn_events(uri, pid);
	ttt_game_t state;
	memset(&state, 0, sizeof state);
	cr_assert_eq(tictactoe_game.init(&state, g->id), 0);
	size_t i;
	json_t *ev;
	int moved = 0;
	json_array_foreach(events, i, ev)
	{
		/* No seq twice, none missing. */
		cr_assert_eq(json_integer_value(json_object_get(ev, "seq")), (json_int_t)i + 1,
		             "%s: event %zu has seq %lld", pid, i,
		             (long long)json_integer_value(json_object_get(ev, "seq")));
		skald_event_t e = {.persistence_id = pid,
		                   .seq = i + 1,
		                   .type = tn_str(ev, "type"),
		                   .version = 1,
		                   .data = json_object_get(ev, "data")};
		cr_assert_eq(tictactoe_game.apply(&state, &e), 0,
		             "%s seq %zu (%s) breaks the rules", pid, i + 1, e.type);
		if (strcmp(e.type, "game.moved") != 0)
			continue;
		/* Every move answered 200 is the move the journal holds. */
		if (g->acked[moved]) {
			const json_t *d = e.data;
			cr_assert_eq(json_integer_value(json_object_get(d, "cell")),
			             g->acked_cell[moved],
			             "%s: move %d was acknowledged on cell %d", pid, moved + 1,
			             g->acked_cell[moved]);
			cr_assert_str_eq(tn_str(d, "player"),
			                 g->acked_side[moved] == 0 ? g->x : g->o);
		}
		moved++;
	}
	cr_assert_gt(state.status, TTT_PLAYING, "%s is not finished in the journal", pid);
	cr_assert_str_eq(state.board, g->board, "%s: the journal's board is not the last answered",
	                 pid);
	cr_assert_eq((size_t)state.moves + 2, json_array_size(events),
	             "%s: %zu events for %u moves", pid, json_array_size(events), state.moves);
	json_decref(events);
}

Test(tictactoe, a_killed_node_s_games_finish_on_the_others_and_no_acknowledged_move_is_lost,
     .timeout = TT_TIMEOUT)
{
	tt_db_t db;
	tt_db_new(&db, tt_stores());
	tn_node_t nodes[3];
	tn_start(&nodes[0], "a", NULL, db.uri, NULL);
	tn_start(&nodes[1], "b", &nodes[0], db.uri, NULL);
	tn_start(&nodes[2], "c", &nodes[0], db.uri, NULL);
	tn_await_up(nodes, 3, 3);

	/* 400 players and 200 games, made on every node in turn. */
	static tgame_t games[GAMES];
	memset(games, 0, sizeof games);
	int rr = 0;
	for (int i = 0; i < GAMES; i++) {
		tgame_t *g = &games[i];
		for (int side = 0; side < 2; side++) {
			json_t *p = tn_call(next_node(nodes, 3, &rr), 201, "POST", "/players",
			                    "{s:s}", "name", side == 0 ? "ex" : "oh");
			snprintf(side == 0 ? g->x : g->o, sizeof g->x, "%s",
			         tn_str(p, "player_id"));
			json_decref(p);
		}
		json_t *c = tn_call(next_node(nodes, 3, &rr), 201, "POST", "/games", "{s:s, s:s}",
		                    "x", g->x, "o", g->o);
		snprintf(g->id, sizeof g->id, "%s", tn_str(c, "game_id"));
		json_decref(c);
		memcpy(g->board, ".........", 10);
	}

	/* Rounds of one move per unfinished game. Halfway, after four rounds
	 * (no game can end before its fifth move), the node that answers for
	 * the most games is killed while a move of one of its games is on its
	 * way to it. */
	unsigned seed = 7;
	int killed = -1, owned = 0, round = 0, unanswered = 0;
	client_t watch;
	resp_t watch_r;
	tgame_t *watched = NULL;
	for (int left = GAMES; left > 0; round++) {
		cr_assert_lt(round, 40, "the games do not end");
		if (round == 4) {
			int count[3] = {0};
			for (int i = 0; i < GAMES; i++)
				for (int k = 0; k < 3 && !games[i].over; k++)
					count[k] += strcmp(games[i].owner, nodes[k].name) == 0;
			killed = count[0] >= count[1] && count[0] >= count[2] ? 0
			         : count[1] >= count[2]                       ? 1
			                                                      : 2;
			owned = count[killed];
			for (int i = 0; i < GAMES; i++) {
				if (!games[i].over &&
				    strcmp(games[i].owner, nodes[killed].name) == 0) {
					/* Someone watches the game from another node. */
					watched = &games[i];
					open_stream(&watch, &watch_r, &nodes[(killed + 1) % 3],
					            watched->id);
					play_one(&games[i], nodes, 3, &rr, &seed, &nodes[killed],
					         true);
					break;
				}
			}
			cr_assert(!nodes[killed].alive);
		}
		left = 0;
		for (int i = 0; i < GAMES; i++) {
			if (games[i].over)
				continue;
			unanswered += play_one(&games[i], nodes, 3, &rr, &seed, NULL, false) != 200;
			left += !games[i].over;
		}
	}
	cr_assert_gt(owned, 0, "the killed node answered for no unfinished game");
	check_stream(&watch, &watch_r, watched);

	for (int k = 0; k < 3; k++)
		if (nodes[k].alive)
			tn_stop(&nodes[k]);
	for (int i = 0; i < GAMES; i++)
		check_history(db.uri, &games[i]);
	cr_log_info("node %s killed with %d unfinished games; %d moves were not answered 200 "
	            "after",
	            nodes[killed].name, owned, unanswered);
	tt_db_drop(&db);
}

/* Reads lines of a streamed answer until one has type want; returns it
 * (owned). */
typedef struct {
	size_t seen; /* bytes of the body already looked at */
	const char *want;
	json_t *found;
	int heartbeats, waiting;
} lines_t;

static bool line_found(const resp_t *r, void *arg)
{
	lines_t *l = arg;
	while (l->found == NULL && r->body != NULL) {
		const char *start = r->body + l->seen, *nl = strchr(start, '\n');
		if (nl == NULL)
			break;
		json_t *v = json_loadb(start, (size_t)(nl - start), 0, NULL);
		cr_assert_not_null(v, "a line that is not JSON: %.*s", (int)(nl - start), start);
		l->seen += (size_t)(nl - start) + 1;
		const char *type = tn_str(v, "type");
		l->heartbeats += strcmp(type, "heartbeat") == 0;
		l->waiting += strcmp(type, "waiting") == 0;
		if (strcmp(type, l->want) == 0)
			l->found = v;
		else
			json_decref(v);
	}
	return l->found != NULL;
}

static void open_matchmaking(client_t *c, tn_node_t *n, const char *player)
{
	char req[256];
	snprintf(req, sizeof req,
	         "POST /matchmaking HTTP/1.1\r\nHost: x\r\nplayer_id: %s\r\nContent-Length: "
	         "0\r\n\r\n",
	         player);
	cl_connect(c, n->port);
	cl_send(c, req, 0);
}

Test(tictactoe, matchmaking_pairs_players_who_reached_different_nodes, .timeout = TT_TIMEOUT)
{
	tt_db_t db;
	tt_db_new(&db, tt_stores());
	tn_node_t nodes[3];
	tn_start(&nodes[0], "a", NULL, db.uri, "--heartbeat-ms", "100", NULL);
	tn_start(&nodes[1], "b", &nodes[0], db.uri, "--heartbeat-ms", "100", NULL);
	tn_start(&nodes[2], "c", &nodes[0], db.uri, "--heartbeat-ms", "100", NULL);
	tn_await_up(nodes, 3, 3);
	json_t *pa = tn_call(&nodes[1], 201, "POST", "/players", "{s:s}", "name", "alice");
	json_t *pb = tn_call(&nodes[2], 201, "POST", "/players", "{s:s}", "name", "bob");
	const char *a = tn_str(pa, "player_id"), *b = tn_str(pb, "player_id");

	/* Alice waits on node b: lobby updates, then heartbeats. */
	client_t ca, cb;
	resp_t ra, rb;
	lines_t la = {.want = "heartbeat"}, lb = {.want = "matched"};
	open_matchmaking(&ca, &nodes[1], a);
	cr_assert(cl_read_until(&ca, &ra, line_found, &la), "alice's stream ended");
	cr_assert_eq(ra.status, 200);
	cr_assert_str_eq(resp_header(&ra, "content-type"), "application/jsonl");
	cr_assert_gt(la.waiting, 0, "no lobby update before the heartbeat");
	json_decref(la.found);
	la = (lines_t){.seen = la.seen, .want = "matched"};

	/* Bob, on node c, is matched with her. */
	open_matchmaking(&cb, &nodes[2], b);
	cr_assert(cl_read_until(&cb, &rb, line_found, &lb), "bob's stream ended");
	cr_assert(cl_read_until(&ca, &ra, line_found, &la), "alice's stream ended");
	cr_assert_not_null(la.found, "alice: %s", ra.body);
	cr_assert_not_null(lb.found, "bob: %s", rb.body);
	cr_assert_str_eq(tn_str(la.found, "game_id"), tn_str(lb.found, "game_id"));
	cr_assert_str_eq(tn_str(la.found, "you"), "X");
	cr_assert_str_eq(tn_str(lb.found, "you"), "O");
	cr_assert_str_eq(tn_str(la.found, "opponent"), "bob");
	cr_assert_str_eq(tn_str(la.found, "opponent_id"), b);
	cr_assert_str_eq(tn_str(lb.found, "opponent"), "alice");
	/* The streams end after the match. */
	cr_assert(cl_read_until(&ca, &ra, NULL, NULL) && ra.done);
	cr_assert(cl_read_until(&cb, &rb, NULL, NULL) && rb.done);

	/* The game is theirs, on any node; the lobby recorded the match. */
	char path[96];
	snprintf(path, sizeof path, "/games/%s", tn_str(la.found, "game_id"));
	json_t *st = tn_call(&nodes[0], 200, "GET", path, NULL);
	cr_assert_str_eq(tn_str(st, "x"), a);
	cr_assert_str_eq(tn_str(st, "o"), b);
	cr_assert_str_eq(tn_str(st, "next"), a);
	json_t *lobby = tn_events(db.uri, "lobby-main");
	bool matched = false, started = false;
	size_t i;
	json_t *ev;
	json_array_foreach(lobby, i, ev)
	{
		const json_t *d = json_object_get(ev, "data");
		matched = matched ||
		          (strcmp(tn_str(ev, "type"), "lobby.matched") == 0 &&
		           strcmp(tn_str(d, "x"), a) == 0 && strcmp(tn_str(d, "o"), b) == 0);
		started = started || strcmp(tn_str(ev, "type"), "lobby.started") == 0;
	}
	cr_assert(matched && started, "the lobby's history has no match of alice and bob");
	json_decref(lobby);
	json_decref(st);
	json_decref(la.found);
	json_decref(lb.found);
	resp_free(&ra);
	resp_free(&rb);
	cl_close(&ca);
	cl_close(&cb);
	json_decref(pa);
	json_decref(pb);
	for (int k = 0; k < 3; k++)
		tn_stop(&nodes[k]);
	tt_db_drop(&db);
}

/* Every event of the journal: how a test sees that nothing was written. */
static long long journal_events(const char *uri, const char *const *pids, size_t n)
{
	long long total = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *e = tn_events(uri, pids[i]);
		total += (long long)json_array_size(e);
		json_decref(e);
	}
	return total;
}

static void expect(tn_node_t *n, const char *method, const char *path, const char *headers,
                   const char *body, int want, const char *code)
{
	json_t *out = NULL;
	int status = tn_request(n, method, path, headers, body, &out, NULL);
	cr_assert_eq(status, want, "%s %s with %.80s: %d, want %d", method, path,
	             body != NULL ? body : "no body", status, want);
	if (code != NULL) {
		cr_assert_str_eq(tn_str(out, "code"), code, "%s %s", method, path);
		cr_assert_neq(tn_str(out, "error")[0], '\0', "no message");
	}
	json_decref(out);
}

Test(tictactoe, bad_input_gets_a_4xx_that_says_why_and_writes_nothing, .timeout = TT_TIMEOUT)
{
	tt_db_t db;
	tt_db_new(&db, tt_stores());
	tn_node_t n;
	tn_start(&n, "a", NULL, db.uri, "--max-connections", "8", NULL);
	tn_await_up(&n, 1, 1);
	json_t *px = tn_call(&n, 201, "POST", "/players", "{s:s}", "name", "x");
	json_t *po = tn_call(&n, 201, "POST", "/players", "{s:s}", "name", "o");
	const char *x = tn_str(px, "player_id"), *o = tn_str(po, "player_id");
	json_t *g = tn_call(&n, 201, "POST", "/games", "{s:s, s:s}", "x", x, "o", o);
	char moves[96], pid[64];
	snprintf(moves, sizeof moves, "/games/%s/moves", tn_str(g, "game_id"));
	snprintf(pid, sizeof pid, "game-%s", tn_str(g, "game_id"));
	json_decref(tn_call(&n, 200, "POST", moves, "{s:s, s:i, s:i}", "player_id", x, "row", 1,
	                    "col", 1));
	const char *pids[] = {pid, "lobby-main"};
	long long before = journal_events(db.uri, pids, 2);

	expect(&n, "POST", "/players", NULL, "{\"name\":", 400, "bad_json");
	expect(&n, "POST", "/players", NULL, "[1]", 400, "bad_request");
	expect(&n, "POST", "/players", NULL, "{\"name\":5}", 400, "bad_request");
	expect(&n, "POST", "/players", NULL, "{}", 400, "bad_request");
	expect(&n, "POST", "/players", NULL, "{\"name\":\"a\",\"admin\":true}", 400, "bad_request");
	expect(&n, "POST", "/games", NULL, "{\"x\":\"p1\"}", 400, "bad_request");
	expect(&n, "POST", "/games", NULL, "{\"x\":\"a b\",\"o\":\"p\"}", 400, "bad_request");
	char same[128];
	snprintf(same, sizeof same, "{\"x\":\"%s\",\"o\":\"%s\"}", x, x);
	expect(&n, "POST", "/games", NULL, same, 400, "bad_request");
	expect(&n, "POST", "/games", NULL, "{\"x\":\"nobody\",\"o\":\"bot\"}", 422,
	       "unknown_player");
	char body[256];
	snprintf(body, sizeof body, "{\"player_id\":\"%s\",\"row\":3,\"col\":0}", o);
	expect(&n, "POST", moves, NULL, body, 400, "bad_request");
	snprintf(body, sizeof body, "{\"player_id\":\"%s\",\"row\":\"0\",\"col\":0}", o);
	expect(&n, "POST", moves, NULL, body, 400, "bad_request");
	expect(&n, "POST", moves, NULL, "{\"row\":0,\"col\":0}", 400, "bad_request");
	/* Illegal moves: 409, nothing written. */
	snprintf(body, sizeof body, "{\"player_id\":\"%s\",\"row\":1,\"col\":1}", o);
	expect(&n, "POST", moves, NULL, body, 409, "occupied");
	snprintf(body, sizeof body, "{\"player_id\":\"%s\",\"row\":0,\"col\":0}", x);
	expect(&n, "POST", moves, NULL, body, 409, "not_your_turn");
	snprintf(body, sizeof body, "{\"player_id\":\"pnobody\",\"row\":0,\"col\":0}");
	expect(&n, "POST", moves, NULL, body, 409, "not_a_player");
	expect(&n, "GET", "/games/nosuchgame", NULL, NULL, 404, "unknown_game");
	expect(&n, "POST", "/games/nosuchgame/moves", NULL, body, 404, "unknown_game");
	expect(&n, "POST", "/matchmaking", NULL, NULL, 400, "bad_request");
	expect(&n, "POST", "/matchmaking", "player_id: nobody\r\n", NULL, 404, "unknown_player");
	expect(&n, "POST", "/matchmaking", "player_id: nobody\r\n", "{\"bot\":1}", 400,
	       "bad_request");
	/* A body over 64 KiB. */
	size_t big = 70 * 1024;
	char *huge = malloc(big + 1);
	memset(huge, ' ', big);
	huge[0] = '{';
	memcpy(huge + big - 12, "\"name\":\"x\"}", 12);
	expect(&n, "POST", "/players", NULL, huge, 413, NULL);
	free(huge);
	cr_assert_eq(journal_events(db.uri, pids, 2), before, "bad input wrote events");

	/* Too many connections: the one past the bound is refused. */
	client_t held[8];
	for (int i = 0; i < 8; i++)
		cl_connect(&held[i], n.port);
	usleep(200 * 1000);
	resp_t r;
	cr_assert(cl_request(n.port, "GET /cluster HTTP/1.1\r\nHost: x\r\n\r\n", &r));
	cr_assert_eq(r.status, 503, "the connection past the bound got %d", r.status);
	resp_free(&r);
	for (int i = 0; i < 8; i++)
		cl_close(&held[i]);

	/* Headers that never finish: 408 after the header timeout. */
	client_t slow;
	usleep(200 * 1000);
	cl_connect(&slow, n.port);
	struct timeval patience = {.tv_sec = 30};
	setsockopt(slow.fd, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof patience);
	cl_send(&slow, "POST /players HTTP/1.1\r\nHost: x\r\n", 0);
	cr_assert(cl_read(&slow, &r, false), "no answer to headers that never finish");
	cr_assert_eq(r.status, 408);
	resp_free(&r);
	cl_close(&slow);

	json_decref(px);
	json_decref(po);
	json_decref(g);
	tn_stop(&n);
	tt_db_drop(&db);
}

/* The value of attribute name of the element with id in html, or NULL.
 * A static buffer. */
static const char *attribute(const char *html, const char *id, const char *name)
{
	static char out[256];
	char key[64];
	snprintf(key, sizeof key, "id=\"%s\"", id);
	const char *el = strstr(html, key), *end = el != NULL ? strchr(el, '>') : NULL;
	snprintf(key, sizeof key, " %s=\"", name);
	const char *a = el != NULL ? strstr(el, key) : NULL;
	if (a == NULL || a > end)
		return NULL;
	a += strlen(key);
	snprintf(out, sizeof out, "%.*s", (int)strcspn(a, "\""), a);
	return out;
}

Test(tictactoe, chromium_plays_a_whole_game_against_the_bot_on_the_page, .timeout = TT_TIMEOUT)
{
	tt_db_t db;
	tt_db_new(&db, tt_stores());
	tn_node_t nodes[2];
	tn_start(&nodes[0], "a", NULL, db.uri, NULL);
	tn_start(&nodes[1], "b", &nodes[0], db.uri, NULL);
	tn_await_up(nodes, 2, 2);

	/* The page joins, asks for the bot, plays the first free cell on each
	 * of its turns, and follows the game's stream to its end. */
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/?autoplay=1&name=chromium", nodes[0].port);
	tt_result_t r;
	tt_chromium_dom(&r, url, 60000);
	char game[64], board[16], result[16];
	const char *v = attribute(r.out, "game", "data-game");
	cr_assert(v != NULL && v[0] != '\0', "the page has no game: %.3000s", r.out);
	snprintf(game, sizeof game, "%s", v);
	v = attribute(r.out, "game", "data-board");
	snprintf(board, sizeof board, "%s", v != NULL ? v : "");
	v = attribute(r.out, "game", "data-result");
	snprintf(result, sizeof result, "%s", v != NULL ? v : "");
	cr_assert(result[0] != '\0', "the game on the page is not over (board %s): %.3000s", board,
	          r.out);
	/* The cells show the board too. */
	cr_assert_not_null(strstr(r.out, "data-cell=\"4\""), "no cells: %.3000s", r.out);
	tt_free(&r);

	/* What the page shows is what the cluster and the journal hold. */
	char path[96];
	snprintf(path, sizeof path, "/games/%s", game);
	json_t *st = tn_call(&nodes[1], 200, "GET", path, NULL);
	cr_assert_str_eq(tn_str(st, "board"), board);
	cr_assert_str_eq(tn_str(st, "result"), result);
	cr_assert_str_eq(tn_str(st, "o"), "bot");
	tgame_t g = {0};
	snprintf(g.id, sizeof g.id, "%.31s", game);
	snprintf(g.x, sizeof g.x, "%s", tn_str(st, "x"));
	snprintf(g.o, sizeof g.o, "%s", "bot");
	snprintf(g.board, sizeof g.board, "%.9s", board);
	check_history(db.uri, &g);
	json_decref(st);
	for (int k = 0; k < 2; k++)
		tn_stop(&nodes[k]);
	tt_db_drop(&db);
}
