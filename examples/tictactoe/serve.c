/*
 * examples/tictactoe/serve.c - the HTTP API and the web page (see serve.h).
 *
 * Handlers run on the HTTP server's thread. They check the request (a
 * malformed body, a missing or mistyped field, an unknown field, an id that
 * cannot be one: 400, nothing sent anywhere) and pass it to a gateway actor
 * of the node, round-robin over the scheduler threads. The gateway calls
 * api.h and answers when the game (or the registry) answers.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skald/http.h>

#include "api.h"
#include "player.h"
#include "serve.h"
#include "streams.h"

/* The web page, embedded by web_assets.c. */
extern const char ttt_web_index_html[], ttt_web_index_html_end[];
extern const char ttt_web_app_js[], ttt_web_app_js_end[];
extern const char ttt_web_style_css[], ttt_web_style_css_end[];

#define MAX_GATEWAYS 64

struct ttt_serve_s {
	ttt_node_t *node;
	skald_system_t *sys;
	skald_http_server_t *http;
	unsigned heartbeat_ms;
	skald_ref_t gateways[MAX_GATEWAYS];
	unsigned ngateways;
	atomic_uint next;
};

/* ------------------------------------------------------------------------ */
/* Once per process: metrics (process-wide, like every metric), the type    */

static skald_metric_t *m_moves, *m_move_seconds, *m_games, *m_players;

static const skald_msgtype_t request_type;
static uint32_t t_request;
static int request_type_rc;

/* Metrics and the request type, once for the process, before any
 * gateway reads them. */
static void serve_init(void)
{
	request_type_rc = skald_type_register(&request_type, &t_request);
	skald_metric_counter("ttt_moves_total", "Moves accepted through this process's HTTP API",
	                     NULL, NULL, &m_moves);
	skald_metric_histogram("ttt_move_seconds",
	                       "Time to answer POST /games/{id}/moves, from the request to the "
	                       "answer",
	                       NULL, 0, NULL, NULL, &m_move_seconds);
	skald_metric_counter("ttt_games_created_total", "Games created through POST /games", NULL,
	                     NULL, &m_games);
	skald_metric_counter("ttt_players_created_total", "Players created through POST /players",
	                     NULL, NULL, &m_players);
}

/* ------------------------------------------------------------------------ */
/* Requests handed to a gateway                                              */

typedef enum { OP_PLAYER, OP_CREATE, OP_MOVE, OP_GET } op_t;

typedef struct {
	op_t op;
	skald_http_res_t *res; /* NULL once answered */
	ttt_serve_t *srv;
	char a[TTT_NAME_MAX], b[TTT_NAME_MAX]; /* name; x, o; game, player */
	int cell;
	uint64_t t0;
} request_t;

/* A request the runtime frees unhandled (the node stops) is answered. */
static void request_free(void *payload)
{
	request_t *r = payload;
	if (r->res != NULL)
		skald_http_respond_error(r->res, 503, "unavailable", "the node is stopping");
	free(r);
}

static const skald_msgtype_t request_type = {.name = "ttt.http", .free = request_free};

/* Answers r with status and body (stolen), then frees r. */
static void answer(request_t *r, int status, json_t *body)
{
	if (status == 503)
		skald_http_res_header(r->res, "Retry-After", "1");
	if (r->op == OP_MOVE || r->op == OP_GET) {
		/* Where the game lives now, for people watching a failover. */
		char owner[64];
		ttt_node_owner_name(r->srv->node, r->a, owner, sizeof owner);
		if (owner[0] != '\0')
			skald_http_res_header(r->res, "Skald-Owner", owner);
	}
	if (r->op == OP_MOVE && status == 200) {
		skald_metric_inc(m_moves, 1);
		skald_metric_observe(m_move_seconds, (double)(uv_hrtime() - r->t0) / 1e9);
	}
	if (r->op == OP_CREATE && status == 201)
		skald_metric_inc(m_games, 1);
	skald_http_respond_json(r->res, status, body);
	r->res = NULL;
	free(r);
}

static void api_done(skald_actor_t *self, int status, json_t *body, skald_ref_t game, void *arg)
{
	answer(arg, status, body);
}

static void new_player(skald_actor_t *self, request_t *r)
{
	char id[TTT_NAME_MAX];
	skald_ref_t ref;
	ttt_api_new_id('p', id);
	int rc = ttt_player_start(skald_actor_system(self), id, r->a, NULL, &ref);
	if (rc < 0) {
		answer(r, 503,
		       ttt_api_error("unavailable", "cannot make a player: %s",
		                     skald_strerror(rc)));
		return;
	}
	skald_metric_inc(m_players, 1);
	answer(r, 201, json_pack("{s:s}", "player_id", id));
}

static int gateway_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	if (msg->type != t_request)
		return 0;
	request_t *r = skald_msg_take(msg);
	int rc = 0;
	switch (r->op) {
	case OP_PLAYER:
		new_player(self, r);
		return 0;
	case OP_CREATE:
		rc = ttt_api_create_game(self, r->a, r->b, api_done, r);
		break;
	case OP_MOVE:
		rc = ttt_api_move(self, r->a, r->b, r->cell, api_done, r);
		break;
	case OP_GET:
		rc = ttt_api_get(self, r->a, api_done, r);
		break;
	}
	if (rc < 0)
		answer(r, 503, ttt_api_error("unavailable", "%s", skald_strerror(rc)));
	return 0;
}

static const skald_behavior_t gateway_behavior = {.receive = gateway_receive};

/* Hands r to a gateway; answers it itself if that fails. */
static void dispatch(ttt_serve_t *s, request_t *r)
{
	unsigned i = atomic_fetch_add(&s->next, 1) % s->ngateways;
	r->srv = s;
	r->t0 = uv_hrtime();
	if (skald_system_tell(s->sys, s->gateways[i], t_request, r) < 0)
		request_free(r);
}

static request_t *request_new(skald_http_res_t *res, op_t op)
{
	request_t *r = calloc(1, sizeof *r);
	if (r == NULL)
		skald_http_respond_error(res, 503, "unavailable", "out of memory");
	else
		*r = (request_t){.op = op, .res = res};
	return r;
}

/* ------------------------------------------------------------------------ */
/* Checking what clients send                                                */

/* The body as a JSON object whose keys are all among keys (NULL-ended);
 * NULL after answering 400. */
static json_t *body_object(skald_http_res_t *res, const char *const *keys)
{
	json_t *body = skald_http_body_json(res);
	if (body == NULL)
		return NULL; /* answered 400 bad_json */
	if (!json_is_object(body)) {
		json_decref(body);
		skald_http_respond_error(res, 400, "bad_request", "the body must be a JSON object");
		return NULL;
	}
	const char *key;
	json_t *value;
	json_object_foreach(body, key, value)
	{
		bool known = false;
		for (size_t i = 0; keys[i] != NULL && !known; i++)
			known = strcmp(key, keys[i]) == 0;
		if (!known) {
			skald_http_respond_error(res, 400, "bad_request", "unknown field \"%.64s\"",
			                         key);
			json_decref(body);
			return NULL;
		}
	}
	return body;
}

/* The string field key of body, copied to dst (TTT_NAME_MAX) if it is an
 * id (ttt_api_id_ok) or, with any_text, 1 to 31 bytes of text; false
 * after answering 400. */
static bool field_id(skald_http_res_t *res, const json_t *body, const char *key, char *dst,
                     bool any_text)
{
	const json_t *v = json_object_get(body, key);
	const char *s = json_string_value(v);
	if (v == NULL) {
		skald_http_respond_error(res, 400, "bad_request", "missing field \"%s\"", key);
		return false;
	}
	bool ok = s != NULL && (any_text ? s[0] != '\0' && strlen(s) < TTT_NAME_MAX &&
	                                           strlen(s) == json_string_length(v)
	                                 : ttt_api_id_ok(s));
	if (!ok) {
		skald_http_respond_error(res, 400, "bad_request",
		                         any_text
		                                 ? "\"%s\" must be a string of 1 to %d bytes"
		                                 : "\"%s\" must be an id: 1 to %d letters, digits, "
		                                   "'-' or '_'",
		                         key, TTT_NAME_MAX - 1);
		return false;
	}
	strcpy(dst, s);
	return true;
}

/* An integer field 0..2; false after answering 400. */
static bool field_coord(skald_http_res_t *res, const json_t *body, const char *key, int *out)
{
	const json_t *v = json_object_get(body, key);
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 2) {
		skald_http_respond_error(res, 400, "bad_request",
		                         v == NULL ? "missing field \"%s\""
		                                   : "\"%s\" must be an integer from 0 to 2",
		                         key);
		return false;
	}
	*out = (int)json_integer_value(v);
	return true;
}

/* The :id of a game route, if it can be a game id; else 404. */
static const char *game_param(const skald_http_request_t *req, skald_http_res_t *res)
{
	const char *id = skald_http_param(req, "id");
	if (!ttt_api_id_ok(id)) {
		skald_http_respond_error(res, 404, "unknown_game", "no such game");
		return NULL;
	}
	return id;
}

/* ------------------------------------------------------------------------ */
/* Routes                                                                    */

static void post_players(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	static const char *const keys[] = {"name", NULL};
	json_t *body = body_object(res, keys);
	request_t *r = NULL;
	if (body != NULL && (r = request_new(res, OP_PLAYER)) != NULL &&
	    field_id(res, body, "name", r->a, true))
		dispatch(arg, r);
	else
		free(r);
	json_decref(body);
}

static void post_matchmaking(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	ttt_serve_t *s = arg;
	const char *player = skald_http_header(req, "player_id");
	if (player == NULL || !ttt_api_id_ok(player)) {
		skald_http_respond_error(res, 400, "bad_request",
		                         player == NULL ? "missing header player_id"
		                                        : "header player_id is not a player id");
		return;
	}
	/* An empty body, or {"bot": true} to play the bot at once. */
	bool bot = false;
	if (req->body_len > 0) {
		static const char *const keys[] = {"bot", NULL};
		json_t *body = body_object(res, keys);
		if (body == NULL)
			return;
		const json_t *b = json_object_get(body, "bot");
		if (b != NULL && !json_is_boolean(b)) {
			json_decref(body);
			skald_http_respond_error(res, 400, "bad_request",
			                         "\"bot\" must be true or false");
			return;
		}
		bot = json_is_true(b);
		json_decref(body);
	}
	int rc = ttt_stream_matchmaking(s->sys, res, player, bot, s->heartbeat_ms);
	if (rc < 0)
		skald_http_respond_error(res, 503, "unavailable", "%s", skald_strerror(rc));
}

static void post_games(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	static const char *const keys[] = {"x", "o", NULL};
	json_t *body = body_object(res, keys);
	request_t *r = NULL;
	if (body != NULL && (r = request_new(res, OP_CREATE)) != NULL &&
	    field_id(res, body, "x", r->a, false) && field_id(res, body, "o", r->b, false)) {
		if (strcmp(r->a, r->b) == 0) {
			skald_http_respond_error(res, 400, "bad_request",
			                         "\"x\" and \"o\" must be two different players");
			free(r);
		} else {
			dispatch(arg, r);
		}
	} else {
		free(r);
	}
	json_decref(body);
}

static void post_move(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	static const char *const keys[] = {"player_id", "row", "col", NULL};
	const char *game = game_param(req, res);
	json_t *body = game != NULL ? body_object(res, keys) : NULL;
	request_t *r = NULL;
	int row, col;
	if (body != NULL && (r = request_new(res, OP_MOVE)) != NULL &&
	    field_id(res, body, "player_id", r->b, false) && field_coord(res, body, "row", &row) &&
	    field_coord(res, body, "col", &col)) {
		strcpy(r->a, game);
		r->cell = row * 3 + col;
		dispatch(arg, r);
	} else {
		free(r);
	}
	json_decref(body);
}

static void get_game(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	const char *game = game_param(req, res);
	request_t *r = game != NULL ? request_new(res, OP_GET) : NULL;
	if (r != NULL) {
		strcpy(r->a, game);
		dispatch(arg, r);
	}
}

static void get_stream(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	ttt_serve_t *s = arg;
	const char *game = game_param(req, res);
	if (game == NULL)
		return;
	int rc = ttt_stream_game(s->sys, res, game);
	if (rc < 0)
		skald_http_respond_error(res, 503, "unavailable", "%s", skald_strerror(rc));
}

static void get_cluster(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	ttt_serve_t *s = arg;
	skald_http_respond_json(res, 200, ttt_node_members_json(s->node));
}

/* ------------------------------------------------------------------------ */
/* Starting and stopping                                                     */

/* "HOST:PORT" or "[V6]:PORT" into host (len bytes) and *port. */
static bool split_hostport(const char *hp, char *host, size_t len, int *port)
{
	const char *colon = strrchr(hp, ':');
	if (colon == NULL)
		return false;
	const char *h = hp, *h_end = colon;
	if (hp[0] == '[') {
		h = hp + 1;
		if (colon == hp || colon[-1] != ']')
			return false;
		h_end = colon - 1;
	}
	char *end;
	long p = strtol(colon + 1, &end, 10);
	if (h_end <= h || (size_t)(h_end - h) >= len || *end != '\0' || colon[1] == '\0' || p < 0 ||
	    p > 65535)
		return false;
	snprintf(host, len, "%.*s", (int)(h_end - h), h);
	*port = (int)p;
	return true;
}

int ttt_serve_port(const ttt_serve_t *s)
{
	return s->http != NULL ? skald_http_port(s->http) : 0;
}

static int routes(ttt_serve_t *s)
{
	static const struct {
		const char *method, *pattern;
		skald_http_handler_fn fn;
	} api[] = {
	        {"POST", "/players", post_players}, {"POST", "/matchmaking", post_matchmaking},
	        {"POST", "/games", post_games},     {"POST", "/games/:id/moves", post_move},
	        {"GET", "/games/:id", get_game},    {"GET", "/games/:id/stream", get_stream},
	        {"GET", "/cluster", get_cluster},
	};
	const struct {
		const char *path, *type, *start, *end;
	} page[] = {
	        {"/", "text/html; charset=utf-8", ttt_web_index_html, ttt_web_index_html_end},
	        {"/app.js", "text/javascript; charset=utf-8", ttt_web_app_js, ttt_web_app_js_end},
	        {"/style.css", "text/css; charset=utf-8", ttt_web_style_css, ttt_web_style_css_end},
	};
	int rc = skald_http_route_metrics(s->http, "/metrics", skald_metrics_scrape, NULL);
	for (size_t i = 0; rc == 0 && i < sizeof api / sizeof api[0]; i++)
		rc = skald_http_route(s->http, api[i].method, api[i].pattern, api[i].fn, s);
	for (size_t i = 0; rc == 0 && i < sizeof page / sizeof page[0]; i++)
		rc = skald_http_route_asset(s->http, page[i].path, page[i].type, page[i].start,
		                            (size_t)(page[i].end - page[i].start));
	return rc;
}

int ttt_serve_start(ttt_node_t *node, const char *hostport, unsigned max_connections,
                    unsigned heartbeat_ms, ttt_serve_t **out, char *why, size_t len)
{
	static uv_once_t once = UV_ONCE_INIT;
	uv_once(&once, serve_init);
	int rc = request_type_rc;
	if (rc < 0) {
		snprintf(why, len, "registering the HTTP request type: %s", skald_strerror(rc));
		return rc;
	}
	skald_http_config_t cfg;
	skald_http_config_init(&cfg);
	char host[64];
	if (!split_hostport(hostport, host, sizeof host, &cfg.port)) {
		snprintf(why, len, "--http takes HOST:PORT, such as 127.0.0.1:8080, not \"%s\"",
		         hostport);
		return SKALD_EINVAL;
	}
	cfg.host = host;
	cfg.max_body_bytes = TTT_MAX_BODY;
	if (max_connections > 0)
		cfg.max_connections = max_connections;
	ttt_serve_t *s = calloc(1, sizeof *s);
	if (s == NULL) {
		snprintf(why, len, "out of memory");
		return SKALD_ENOMEM;
	}
	s->node = node;
	s->sys = ttt_node_system(node);
	s->heartbeat_ms = heartbeat_ms > 0 ? heartbeat_ms : 5000;
	unsigned threads = skald_system_threads(s->sys);
	s->ngateways = threads < MAX_GATEWAYS ? threads : MAX_GATEWAYS;
	for (unsigned i = 0; i < s->ngateways && rc == 0; i++)
		rc = skald_spawn(s->sys, &gateway_behavior, NULL,
		                 &(skald_spawn_opts_t){.flags = SKALD_SPAWN_PIN, .thread = i},
		                 &s->gateways[i]);
	if (rc == 0 && (rc = skald_http_server_new(&s->http, &cfg)) < 0)
		snprintf(why, len, "--http %s: %s", hostport, skald_strerror(rc));
	else if (rc < 0)
		snprintf(why, len, "the gateways: %s", skald_strerror(rc));
	if (rc == 0 && (rc = routes(s)) < 0)
		snprintf(why, len, "the routes: %s", skald_strerror(rc));
	if (rc == 0 && (rc = skald_http_start_thread(s->http)) < 0)
		snprintf(why, len, "serving HTTP on %s: %s", hostport, skald_strerror(rc));
	if (rc < 0) {
		for (unsigned i = 0; i < s->ngateways; i++)
			if (!skald_ref_is_null(s->gateways[i]))
				skald_stop(s->sys, s->gateways[i]);
		skald_http_server_free(s->http);
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void ttt_serve_stop(ttt_serve_t *s)
{
	if (s == NULL)
		return;
	skald_http_stop(s->http);
	skald_http_server_free(s->http);
	s->http = NULL;
}

void ttt_serve_free(ttt_serve_t *s)
{
	free(s);
}
