/*
 * examples/tictactoe/api.c - the operations behind the HTTP API (api.h).
 */
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "node.h"

/* How long creating a game waits for a player registered on another node
 * a moment ago to be known here. */
#define LOOKUP_MS 3000

json_t *ttt_api_error(const char *code, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return json_pack("{s:s, s:s}", "error", msg, "code", code);
}

bool ttt_api_id_ok(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;
	if (n == 0 || n >= TTT_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

void ttt_api_new_id(char prefix, char *out)
{
	unsigned char b[8];
	if (RAND_bytes(b, sizeof b) != 1) {
		/* No entropy at all: time and address still differ per call. */
		uint64_t t = uv_hrtime() ^ (uint64_t)(uintptr_t)out;
		memcpy(b, &t, sizeof b);
	}
	snprintf(out, TTT_NAME_MAX, "%c%02x%02x%02x%02x%02x%02x%02x%02x", prefix, b[0], b[1], b[2],
	         b[3], b[4], b[5], b[6], b[7]);
}

void ttt_api_player_name(const char *player, char *out, size_t len)
{
	snprintf(out, len, "ttt.player/%s", player);
}

json_t *ttt_api_state(const json_t *st)
{
	const char *game = ttt_str(st, "game"), *x = ttt_str(st, "x"), *o = ttt_str(st, "o");
	const char *board = ttt_str(st, "board"), *status = ttt_str(st, "status");
	const char *turn = ttt_str(st, "turn");
	if (game == NULL || x == NULL || o == NULL || board == NULL || status == NULL)
		return NULL;
	json_t *next = turn == NULL ? json_null() : json_string(turn[0] == 'X' ? x : o);
	json_t *result = strcmp(status, "x_won") == 0   ? json_string("x")
	                 : strcmp(status, "o_won") == 0 ? json_string("o")
	                 : strcmp(status, "draw") == 0  ? json_string("draw")
	                                                : json_null();
	/* "o" steals next and result. */
	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:O}", "game_id", game, "x", x, "o", o,
	                 "board", board, "next", next, "result", result, "moves",
	                 json_object_get(st, "moves"));
}

/* ------------------------------------------------------------------------ */
/* Asking a game                                                             */

typedef struct {
	ttt_api_fn cb;
	void *arg;
	bool created; /* answer 201 {"game_id"} instead of the state */
} call_t;

static int status_of_code(const char *code)
{
	if (code == NULL)
		return 503;
	if (strcmp(code, TTT_EUNKNOWN) == 0)
		return 404;
	if (strcmp(code, TTT_EJOURNAL) == 0 || strcmp(code, TTT_EWATCHERS) == 0)
		return 503;
	if (strcmp(code, TTT_EPLAYERS) == 0)
		return 400;
	return 409;
}

static void answered(skald_actor_t *self, void *state, int status, skald_msg_t *reply, void *arg)
{
	call_t c = *(call_t *)arg;
	free(arg);
	const json_t *body = status == 0 ? ttt_payload(reply) : NULL;
	if (status == SKALD_ECANCELED) {
		c.cb(self, 503, ttt_api_error("unavailable", "the node is stopping"),
		     SKALD_REF_NULL, c.arg);
	} else if (status < 0 || body == NULL) {
		c.cb(self, 503,
		     ttt_api_error("unavailable",
		                   "the game is moving to another node or recovering (%s); retry",
		                   status < 0 ? skald_err_name(status) : "no answer"),
		     SKALD_REF_NULL, c.arg);
	} else if (reply->type == ttt_type.rejected) {
		const char *code = ttt_str(body, "code"), *error = ttt_str(body, "error");
		int http = status_of_code(code);
		c.cb(self, http,
		     ttt_api_error(http == 503 ? "unavailable" : code, "%s",
		                   error ? error : "refused"),
		     reply->sender, c.arg);
	} else if (c.created) {
		c.cb(self, 201, json_pack("{s:s}", "game_id", ttt_str(body, "game")), reply->sender,
		     c.arg);
	} else {
		json_t *s = ttt_api_state(body);
		c.cb(self, s != NULL ? 200 : 503,
		     s != NULL ? s : ttt_api_error("unavailable", "the game gave no state"),
		     reply->sender, c.arg);
	}
}

/* Asks game with payload (stolen). */
static int ask(skald_actor_t *self, const char *game, uint32_t type, json_t *payload, bool created,
               ttt_api_fn cb, void *arg)
{
	skald_sharding_t *games = ttt_node_games(skald_actor_system(self));
	call_t *c = malloc(sizeof *c);
	int rc = games == NULL ? SKALD_EINVAL : c == NULL || payload == NULL ? SKALD_ENOMEM : 0;
	if (rc == 0) {
		*c = (call_t){cb, arg, created};
		rc = skald_sharding_ask(games, self, game, type, payload, TTT_API_ASK_MS, answered,
		                        c);
	}
	if (rc < 0) {
		json_decref(payload);
		free(c);
	}
	return rc;
}

int ttt_api_move(skald_actor_t *self, const char *game, const char *player, int cell, ttt_api_fn cb,
                 void *arg)
{
	return ask(self, game, ttt_type.move,
	           json_pack("{s:s, s:i}", "player", player, "cell", cell), false, cb, arg);
}

int ttt_api_get(skald_actor_t *self, const char *game, ttt_api_fn cb, void *arg)
{
	return ask(self, game, ttt_type.get, json_object(), false, cb, arg);
}

int ttt_api_watch(skald_actor_t *self, const char *game, ttt_api_fn cb, void *arg)
{
	return ask(self, game, ttt_type.watch, json_object(), false, cb, arg);
}

/* ------------------------------------------------------------------------ */
/* Creating a game: both players must be known, then the game starts         */

typedef struct {
	ttt_api_fn cb;
	void *arg;
	char x[TTT_NAME_MAX], o[TTT_NAME_MAX];
	int found; /* players looked up so far */
} create_t;

static void look_up_next(skald_actor_t *self, create_t *c);

static void found(skald_actor_t *self, void *state, int status, skald_ref_t ref, void *arg)
{
	create_t *c = arg;
	if (status < 0) {
		const char *who = c->found == 0 ? c->x : c->o;
		if (status == SKALD_ECANCELED)
			c->cb(self, 503, ttt_api_error("unavailable", "the node is stopping"),
			      SKALD_REF_NULL, c->arg);
		else
			c->cb(self, 422,
			      ttt_api_error("unknown_player",
			                    "no player %s in the cluster (POST /players makes one)",
			                    who),
			      SKALD_REF_NULL, c->arg);
		free(c);
		return;
	}
	c->found++;
	look_up_next(self, c);
}

static void look_up_next(skald_actor_t *self, create_t *c)
{
	while (c->found < 2) {
		const char *who = c->found == 0 ? c->x : c->o;
		if (strcmp(who, TTT_BOT) == 0) {
			c->found++;
			continue;
		}
		char name[TTT_NAME_MAX + 16];
		ttt_api_player_name(who, name, sizeof name);
		int rc = skald_cluster_lookup(self, name, LOOKUP_MS, found, c);
		if (rc == 0)
			return;
		c->cb(self, 503,
		      ttt_api_error("unavailable", "cannot look players up: %s",
		                    skald_strerror(rc)),
		      SKALD_REF_NULL, c->arg);
		free(c);
		return;
	}
	char game[TTT_NAME_MAX];
	ttt_api_new_id('d', game);
	int rc = ask(self, game, ttt_type.start, json_pack("{s:s, s:s}", "x", c->x, "o", c->o),
	             true, c->cb, c->arg);
	if (rc < 0)
		c->cb(self, 503,
		      ttt_api_error("unavailable", "cannot reach the games: %s",
		                    skald_strerror(rc)),
		      SKALD_REF_NULL, c->arg);
	free(c);
}

int ttt_api_create_game(skald_actor_t *self, const char *x, const char *o, ttt_api_fn cb, void *arg)
{
	create_t *c = calloc(1, sizeof *c);
	if (c == NULL)
		return SKALD_ENOMEM;
	*c = (create_t){.cb = cb, .arg = arg};
	snprintf(c->x, sizeof c->x, "%s", x);
	snprintf(c->o, sizeof c->o, "%s", o);
	look_up_next(self, c);
	return 0;
}
