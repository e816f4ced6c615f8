/*
 * examples/tictactoe/streams.c - the streamed answers (see streams.h).
 *
 * Each stream is an actor that owns its HTTP answer: its stop callback
 * gives the final answer if nothing else did, so that a stream ends however
 * its actor ends (the client went, the node stops).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "protocol.h"
#include "streams.h"

/* How often a game stream checks that its client is still there (it sends
 * nothing while the game is quiet). */
#define CLOSED_CHECK_MS 5000
/* Pause before watching a game again after it did not answer. */
#define RETRY_MS 200

typedef struct {
	skald_http_res_t *res;
	char id[TTT_NAME_MAX]; /* the player's or the game's */
	bool bot;
	unsigned heartbeat_ms;
} stream_arg_t;

typedef struct {
	stream_arg_t *arg;
	bool streaming;   /* the head is sent */
	bool done;        /* the final answer is given: res is gone */
	skald_ref_t peer; /* the player, or the game's session (watched) */
	long last_moves;  /* of the last line of a game stream; -1: none */
} stream_t;

static void finish(stream_t *s)
{
	if (s->done)
		return;
	s->done = true;
	if (s->streaming)
		skald_http_stream_end(s->arg->res);
	else
		skald_http_respond_error(s->arg->res, 503, "unavailable", "the node is stopping");
	s->arg->res = NULL;
}

/* Answers with status and body (stolen) instead of a stream, and stops. */
static void refuse(skald_actor_t *self, stream_t *s, int status, json_t *body)
{
	if (status == 503)
		skald_http_res_header(s->arg->res, "Retry-After", "1");
	skald_http_respond_json(s->arg->res, status, body);
	s->arg->res = NULL;
	s->done = true;
	skald_stop_self(self);
}

/* Sends one line (stolen); a client that has gone stops the stream. */
static void send_line(skald_actor_t *self, stream_t *s, json_t *line)
{
	if (s->done) {
		json_decref(line);
		return;
	}
	int rc = skald_http_stream_send_json(s->arg->res, line);
	if (rc == SKALD_ECLOSED) {
		finish(s);
		skald_stop_self(self);
	}
}

static int stream_init(skald_actor_t *self, void *state, void *arg)
{
	stream_t *s = state;
	s->arg = arg;
	s->last_moves = -1;
	return 0;
}

static void stream_stop(skald_actor_t *self, void *state, int reason)
{
	finish(state);
}

static void free_arg(void *arg)
{
	free(arg);
}

static int start(skald_system_t *sys, const skald_behavior_t *b, skald_http_res_t *res,
                 const char *id, bool bot, unsigned heartbeat_ms)
{
	stream_arg_t *a = calloc(1, sizeof *a);
	if (a == NULL)
		return SKALD_ENOMEM;
	*a = (stream_arg_t){.res = res, .bot = bot, .heartbeat_ms = heartbeat_ms};
	snprintf(a->id, sizeof a->id, "%s", id);
	skald_ref_t ref;
	int rc = skald_spawn(sys, b, a, NULL, &ref);
	if (rc < 0)
		free(a);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* POST /matchmaking                                                         */

static void heartbeat(skald_actor_t *self, void *state, void *arg)
{
	send_line(self, state, json_pack("{s:s}", "type", "heartbeat"));
}

static void player_found(skald_actor_t *self, void *state, int status, skald_ref_t ref, void *arg)
{
	stream_t *s = state;
	if (status < 0) {
		refuse(self, s, status == SKALD_ECANCELED ? 503 : 404,
		       status == SKALD_ECANCELED
		               ? ttt_api_error("unavailable", "the node is stopping")
		               : ttt_api_error(
		                         "unknown_player",
		                         "no player %s in the cluster (POST /players makes one)",
		                         s->arg->id));
		return;
	}
	if (skald_http_stream_start(s->arg->res, 200, "application/jsonl") < 0) {
		finish(s);
		skald_stop_self(self);
		return;
	}
	s->streaming = true;
	s->peer = ref;
	skald_watch(self, ref);
	ttt_tell(self, ref, ttt_type.seek, json_pack("{s:b}", "bot", s->arg->bot));
	skald_timer_start(self, s->arg->heartbeat_ms, s->arg->heartbeat_ms, heartbeat, NULL, NULL);
}

static int match_init(skald_actor_t *self, void *state, void *arg)
{
	stream_init(self, state, arg);
	stream_t *s = state;
	char name[TTT_NAME_MAX + 16];
	ttt_api_player_name(s->arg->id, name, sizeof name);
	int rc = skald_cluster_lookup(self, name, 1000, player_found, NULL);
	if (rc < 0)
		refuse(self, s, 503, ttt_api_error("unavailable", "%s", skald_strerror(rc)));
	return 0;
}

static int match_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	stream_t *s = state;
	if (msg->type == SKALD_TYPE_DOWN) {
		send_line(self, s,
		          json_pack("{s:s, s:s, s:s}", "type", "error", "code", "player_gone",
		                    "error", "the player's node went; make a new player"));
		finish(s);
		skald_stop_self(self);
		return 0;
	}
	json_t *line = msg->type == ttt_type.line ? ttt_payload(msg) : NULL;
	if (line == NULL || !skald_ref_eq(msg->sender, s->peer))
		return 0;
	const char *type = ttt_str(line, "type");
	bool last = type != NULL && (strcmp(type, "matched") == 0 || strcmp(type, "error") == 0);
	send_line(self, s, skald_msg_take(msg));
	if (last) {
		finish(s);
		skald_stop_self(self);
	}
	return 0;
}

static const skald_behavior_t match_behavior = {
        .state_size = sizeof(stream_t),
        .init = match_init,
        .receive = match_receive,
        .stop = stream_stop,
        .free_arg = free_arg,
};

int ttt_stream_matchmaking(skald_system_t *sys, skald_http_res_t *res, const char *player, bool bot,
                           unsigned heartbeat_ms)
{
	return start(sys, &match_behavior, res, player, bot, heartbeat_ms);
}

/* ------------------------------------------------------------------------ */
/* GET /games/{id}/stream                                                    */

static void watch_game(skald_actor_t *self, stream_t *s);

/* A state of the game (the API's shape, borrowed): a line if it is newer
 * than the last, and the end after the last move. */
static void game_state(skald_actor_t *self, stream_t *s, const json_t *st)
{
	long moves = (long)json_integer_value(json_object_get(st, "moves"));
	if (moves <= s->last_moves)
		return;
	s->last_moves = moves;
	send_line(self, s, json_deep_copy(st));
	if (!json_is_null(json_object_get(st, "result"))) {
		finish(s);
		skald_stop_self(self);
	}
}

static void rewatch(skald_actor_t *self, void *state, void *arg)
{
	watch_game(self, state);
}

static void watched(skald_actor_t *self, int status, json_t *body, skald_ref_t game, void *arg)
{
	stream_t *s = skald_actor_state(self);
	if (s->done) {
		json_decref(body);
		return;
	}
	if (status != 200) {
		if (!s->streaming) {
			refuse(self, s, status, body);
			return;
		}
		json_decref(body);
		if (skald_timer_start(self, RETRY_MS, 0, rewatch, NULL, NULL) < 0) {
			finish(s);
			skald_stop_self(self);
		}
		return;
	}
	if (!s->streaming) {
		if (skald_http_stream_start(s->arg->res, 200, "application/jsonl") < 0) {
			json_decref(body);
			finish(s);
			skald_stop_self(self);
			return;
		}
		s->streaming = true;
	}
	if (!skald_ref_eq(game, s->peer)) {
		s->peer = game;
		skald_watch(self, game);
	}
	game_state(self, s, body);
	json_decref(body);
}

static void watch_game(skald_actor_t *self, stream_t *s)
{
	int rc = ttt_api_watch(self, s->arg->id, watched, NULL);
	if (rc < 0 && !s->streaming)
		refuse(self, s, 503, ttt_api_error("unavailable", "%s", skald_strerror(rc)));
	else if (rc < 0)
		skald_timer_start(self, RETRY_MS, 0, rewatch, NULL, NULL);
}

static void check_closed(skald_actor_t *self, void *state, void *arg)
{
	stream_t *s = state;
	if (s->streaming && skald_http_res_closed(s->arg->res)) {
		finish(s);
		skald_stop_self(self);
	}
}

static int game_init(skald_actor_t *self, void *state, void *arg)
{
	stream_init(self, state, arg);
	watch_game(self, state);
	skald_timer_start(self, CLOSED_CHECK_MS, CLOSED_CHECK_MS, check_closed, NULL, NULL);
	return 0;
}

static int game_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	stream_t *s = state;
	if (msg->type == SKALD_TYPE_DOWN) {
		/* The session stopped or its node went: the game lives on
		 * elsewhere (or starts again on its next message). */
		if (skald_ref_eq(((const skald_down_t *)msg->payload)->ref, s->peer)) {
			s->peer = SKALD_REF_NULL;
			watch_game(self, s);
		}
		return 0;
	}
	json_t *st = msg->type == ttt_type.state ? ttt_payload(msg) : NULL;
	json_t *api = st != NULL ? ttt_api_state(st) : NULL;
	if (api != NULL)
		game_state(self, s, api);
	json_decref(api);
	return 0;
}

static const skald_behavior_t game_behavior = {
        .state_size = sizeof(stream_t),
        .init = game_init,
        .receive = game_receive,
        .stop = stream_stop,
        .free_arg = free_arg,
};

int ttt_stream_game(skald_system_t *sys, skald_http_res_t *res, const char *game)
{
	return start(sys, &game_behavior, res, game, false, 0);
}
