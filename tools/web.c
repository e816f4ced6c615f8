/*
 * tools/web.c - `skald web`: the history browser. A web page and the JSON
 * API under /api/ that it uses (documented in tools/README.md), read-only,
 * served by the HTTP module on the command's own loop, beside the journal.
 *
 * Every handler runs on that loop, so it calls the journal directly and
 * answers from the journal's callbacks. A request about one persistence id
 * folds its history with the entity type whose name prefixes the id
 * (tools/fold.c), as `skald replay` does. The live stream polls the global
 * order, as `skald tail` does.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "skald/http.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "tools/fold.h"

const char cmd_web_usage[] =
        "usage: skald web [--entity LIB.so:TYPE]... [--listen HOST:PORT] [--token T]\n"
        "                 [--interval MS] [--store URI]\n"
        "\n"
        "Serves the history browser until Ctrl-C or SIGTERM: a web page that\n"
        "searches persistence ids, steps through one entity's events with the\n"
        "state after each, jumps to a seq or a time, shows snapshots and follows\n"
        "the live stream; and the JSON API under /api/ that the page uses (see\n"
        "tools/README.md). Read-only: nothing is ever written to the journal.\n"
        "Prints \"serving http://HOST:PORT/\" once it listens.\n"
        "\n"
        "  --entity LIB.so:TYPE  an entity type to fold histories with (may be given\n"
        "                 several times); an id \"NAME-...\" is folded with the type\n"
        "                 named NAME. Without one, the events are shown without state\n"
        "  --listen HOST:PORT  where to listen (default 127.0.0.1:7070; port 0 lets the\n"
        "                 system choose; IPv6 as [::1]:7070). An address other than\n"
        "                 loopback needs --token\n"
        "  --token T      every request must carry T: the header\n"
        "                 `Authorization: Bearer T`, or ?token=T in the URL\n"
        "  --interval MS  how often the live stream looks for new events (default 200)\n"
        "  --store URI    the journal (default: the environment variable SKALD_JOURNAL)\n";

/* The page, its script and style (tools/web_assets.c). */
extern const char tool_web_index_html[], tool_web_index_html_end[];
extern const char tool_web_app_js[], tool_web_app_js_end[];
extern const char tool_web_app_css[], tool_web_app_css_end[];

/* Pages of ids and events: the default and the most a request may ask. */
#define PAGE_DEFAULT 100
#define PAGE_MAX     1000

typedef struct web_stream_s web_stream_t;
typedef struct web_s web_t;

/* A file of the page, embedded in the binary. */
typedef struct {
	const char *path, *content_type;
	const char *data, *end;
} web_asset_t;

#define NASSETS 3

/* What an asset's route gets: the asset, and the server for its token. */
typedef struct {
	web_t *w;
	const web_asset_t *asset;
} web_asset_route_t;

typedef struct {
	const char *spec; /* LIB.so:TYPE */
	const skald_entity_type_t *type;
} web_type_t;

struct web_s {
	tool_t t;
	tool_list_t entities;
	web_type_t types[TOOL_LIST_MAX];
	size_t ntypes;
	const char *listen;
	const char *token;
	uint64_t interval;
	char host[64];
	int port;
	skald_http_server_t *srv;
	int handles_open;
	uv_signal_t sigint, sigterm;
	web_stream_t *streams; /* live streams, to end them on shutdown */
	uint64_t end_hint;     /* the highest offset a stream has seen */
	int stopping;
	web_asset_route_t asset_routes[NASSETS];
};

/* ------------------------------------------------------------------------ */
/* Requests: the token, parameters, errors                                   */

/* Compares without stopping at the first difference, so that the time an
 * answer takes says nothing about how much of a guess was right. */
static int same_secret(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char d = la != lb;
	for (size_t i = 0; i < la; i++)
		d |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
	return d == 0;
}

/* 1 when req may be answered; else answers 401 and returns 0. */
static int allowed(web_t *w, const skald_http_request_t *req, skald_http_res_t *res)
{
	if (w->token == NULL)
		return 1;
	const char *auth = skald_http_header(req, "Authorization");
	const char *given = skald_http_query(req, "token");
	if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0)
		given = auth + 7;
	if (given != NULL && same_secret(given, w->token))
		return 1;
	skald_http_respond_error(res, 401, "unauthorized",
	                         "this server needs its token: send the header `Authorization: "
	                         "Bearer TOKEN`, or add ?token=TOKEN to the URL");
	return 0;
}

/* Reads the whole-number query parameter name into *out (def when it is
 * absent). Answers 400 and returns -1 when it is not a number from min to
 * max. */
static int query_u64(const skald_http_request_t *req, skald_http_res_t *res, const char *name,
                     uint64_t def, uint64_t min, uint64_t max, uint64_t *out)
{
	const char *v = skald_http_query(req, name);
	*out = def;
	if (v == NULL)
		return 0;
	if (tool_parse_u64(v, out) < 0 || *out < min || *out > max) {
		skald_http_respond_error(res, 400, "bad_param",
		                         "%s takes a whole number from %" PRIu64 " to %" PRIu64
		                         ", not \"%.64s\"",
		                         name, min, max, v);
		return -1;
	}
	return 0;
}

/* A journal failure as 502 {"error", "code": "store"}. */
static void respond_store_error(web_t *w, skald_http_res_t *res, int rc, const char *what)
{
	const char *msg = w->t.j != NULL ? skald_journal_errmsg(w->t.j) : "";
	if (msg[0] == '\0')
		msg = skald_strerror(rc);
	skald_http_respond_error(res, 502, "store", "%s: %s (%s)", what, msg, skald_err_name(rc));
}

/* The loaded entity type whose name prefixes pid ("game" for "game-42"; the
 * longest such name), or NULL. */
static const web_type_t *type_of_pid(web_t *w, const char *pid)
{
	const web_type_t *best = NULL;
	for (size_t i = 0; i < w->ntypes; i++) {
		const char *name = w->types[i].type->name;
		size_t n = strlen(name);
		if (strncmp(pid, name, n) == 0 && pid[n] == '-' &&
		    (best == NULL || n > strlen(best->type->name)))
			best = &w->types[i];
	}
	return best;
}

/* The entity type for pid: the one named by the query parameter "type",
 * else type_of_pid. Answers 400 and returns -1 for a type that was not
 * loaded. */
static int type_for(web_t *w, const skald_http_request_t *req, skald_http_res_t *res,
                    const char *pid, const web_type_t **out)
{
	const char *name = skald_http_query(req, "type");
	*out = name == NULL ? type_of_pid(w, pid) : NULL;
	for (size_t i = 0; i < w->ntypes && name != NULL; i++)
		if (strcmp(name, w->types[i].type->name) == 0)
			*out = &w->types[i];
	if (name != NULL && *out == NULL) {
		skald_http_respond_error(
		        res, 400, "unknown_type",
		        "no entity type named \"%.64s\" was loaded (start skald web "
		        "with --entity LIB.so:TYPE; /api/info lists the types)",
		        name);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* GET /api/info                                                             */

static void get_info(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	web_t *w = arg;
	if (!allowed(w, req, res))
		return;
	json_t *types = json_array();
	for (size_t i = 0; i < w->ntypes; i++) {
		const skald_entity_type_t *ty = w->types[i].type;
		json_array_append_new(types,
		                      json_pack("{s:s, s:s, s:b, s:b, s:b}", "name", ty->name,
		                                "entity", w->types[i].spec, "print",
		                                ty->print != NULL, "snapshot", ty->snapshot != NULL,
		                                "restore", ty->restore != NULL)); /* steals */
	}
	skald_http_respond_json(res, 200,
	                        json_pack("{s:s, s:o, s:b}", "store", skald_journal_scheme(w->t.j),
	                                  "entity_types", types, "read_only", 1)); /* steals */
}

/* ------------------------------------------------------------------------ */
/* GET /api/ids?prefix=P&type=NAME&after=ID&limit=N                          */

typedef struct {
	web_t *w;
	skald_http_res_t *res;
	uint64_t limit;
	json_t *ids;
	int more;
} ids_req_t;

static int on_ids(skald_journal_t *j, const skald_persistence_id_t *ids, size_t n, void *arg)
{
	ids_req_t *r = arg;
	for (size_t i = 0; i < n; i++) {
		if (json_array_size(r->ids) == r->limit) {
			r->more = 1;
			return SKALD_ECANCELED;
		}
		const web_type_t *ty = type_of_pid(r->w, ids[i].persistence_id);
		const char *type = ty != NULL ? ty->type->name : NULL;
		json_array_append_new(r->ids, json_pack("{s:s, s:I, s:s?}", "persistence_id",
		                                        ids[i].persistence_id, "highest_seq",
		                                        (json_int_t)ids[i].highest_seq,
		                                        "entity_type", type)); /* steals */
	}
	return 0;
}

static void on_ids_done(skald_journal_t *j, int status, void *arg)
{
	ids_req_t *r = arg;
	if (status < 0 && !(status == SKALD_ECANCELED && r->more)) {
		respond_store_error(r->w, r->res, status, "listing persistence ids");
	} else {
		json_t *last = json_array_get(r->ids, json_array_size(r->ids) - 1);
		json_t *next = r->more ? json_incref(json_object_get(last, "persistence_id"))
		                       : json_null();
		skald_http_respond_json(r->res, 200,
		                        json_pack("{s:O, s:o}", "ids", r->ids, "next",
		                                  next)); /* steals the object and next */
	}
	json_decref(r->ids);
	free(r);
}

static void get_ids(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	web_t *w = arg;
	if (!allowed(w, req, res))
		return;
	uint64_t limit;
	if (query_u64(req, res, "limit", PAGE_DEFAULT, 1, PAGE_MAX, &limit) < 0)
		return;
	const char *prefix = skald_http_query(req, "prefix");
	const char *type = skald_http_query(req, "type");
	const char *after = skald_http_query(req, "after");
	char type_prefix[256];
	if (type != NULL && *type != '\0') {
		/* An entity type's ids are "NAME-...": that is a prefix too, and
		 * an id must have both. The longer one says it all when it starts
		 * with the shorter; otherwise no id can have both. */
		snprintf(type_prefix, sizeof type_prefix, "%s-", type);
		size_t tl = strlen(type_prefix), pl = prefix ? strlen(prefix) : 0;
		if (pl <= tl && strncmp(type_prefix, prefix ? prefix : "", pl) == 0) {
			prefix = type_prefix;
		} else if (strncmp(prefix, type_prefix, tl) != 0) {
			skald_http_respond_json(res, 200, json_pack("{s:[], s:n}", "ids", "next"));
			return;
		}
	}
	ids_req_t *r = calloc(1, sizeof *r);
	if (r == NULL || (r->ids = json_array()) == NULL) {
		free(r);
		skald_http_respond_error(res, 500, "no_memory", "out of memory");
		return;
	}
	r->w = w;
	r->res = res;
	r->limit = limit;
	/* One more than the page, to know whether another page follows. */
	int rc = skald_journal_list_ids(w->t.j, prefix, after && *after ? after : NULL, limit + 1,
	                                on_ids, on_ids_done, r);
	if (rc < 0) {
		respond_store_error(w, res, rc, "listing persistence ids");
		json_decref(r->ids);
		free(r);
	}
}

/* ------------------------------------------------------------------------ */
/* One entity: summary, events with states, state at a seq or time, diff     */

typedef enum { Q_SUMMARY, Q_EVENTS, Q_STATE, Q_DIFF } query_kind_t;

typedef struct {
	web_t *w;
	skald_http_res_t *res;
	query_kind_t kind;
	const char *pid; /* borrowed from the request, valid until the answer */
	const web_type_t *type;
	uint64_t from, to; /* Q_EVENTS: the page; Q_DIFF: the two steps */
	const char *at;    /* Q_STATE: as given */
	json_t *out;       /* the answer being built */
	json_t *list;      /* Q_EVENTS: the steps; Q_DIFF: the events between */
	json_t *last;      /* Q_STATE: the last event folded */
	json_t *before;    /* Q_DIFF: the step at from */
	tool_fold_t f;
} entity_req_t;

static void entity_req_free(entity_req_t *r)
{
	tool_fold_fini(&r->f);
	json_decref(r->out);
	json_decref(r->list);
	json_decref(r->last);
	json_decref(r->before);
	free(r);
}

/* A step: {"seq", "event", "state", "printed"} after ev (NULL: the start
 * state). An owned reference, or NULL on ENOMEM. */
static json_t *step_json(entity_req_t *r, const skald_event_t *ev)
{
	json_t *o = json_object();
	if (o == NULL)
		return NULL;
	json_object_set_new(o, "seq",
	                    json_integer(ev != NULL ? (json_int_t)ev->seq
	                                            : (json_int_t)r->f.last)); /* steals */
	if (ev != NULL)
		json_object_set_new(o, "event", tool_event_json(ev)); /* steals */
	json_t *state = NULL;
	char *printed = NULL;
	if (r->type != NULL) {
		int rc;
		state = tool_state_json(r->type->type, r->f.state[0], &rc);
		printed = tool_state_printed(r->type->type, r->f.state[0]);
	}
	json_object_set_new(o, "state", state != NULL ? state : json_null()); /* steals */
	json_object_set_new(o, "printed",
	                    printed != NULL ? json_string(printed) : json_null()); /* steals */
	free(printed);
	return o;
}

static int on_step(tool_fold_t *f, const skald_event_t *ev)
{
	entity_req_t *r = f->arg;
	switch (r->kind) {
	case Q_EVENTS:
		if (ev == NULL && r->from <= 1)
			json_object_set_new(r->out, "initial", step_json(r, NULL)); /* steals */
		else if (ev != NULL && ev->seq >= r->from)
			json_array_append_new(r->list, step_json(r, ev)); /* steals */
		break;
	case Q_STATE:
		if (ev != NULL) {
			json_decref(r->last);
			r->last = tool_event_json(ev);
		}
		break;
	case Q_DIFF:
		if (ev == NULL || ev->seq <= r->from) {
			json_decref(r->before);
			r->before = step_json(r, ev);
		} else {
			json_array_append_new(r->list, tool_event_json(ev)); /* steals */
		}
		break;
	case Q_SUMMARY:
		break;
	}
	return 0;
}

/* JSON Pointer (RFC 6901) of key below path. */
static void pointer(char *out, size_t len, const char *path, const char *key)
{
	size_t n = (size_t)snprintf(out, len, "%s/", path);
	for (const char *k = key; *k && n + 3 < len; k++) {
		if (*k == '~' || *k == '/') {
			out[n++] = '~';
			out[n++] = *k == '~' ? '0' : '1';
		} else {
			out[n++] = *k;
		}
	}
	out[n < len ? n : len - 1] = '\0';
}

/* Appends to changes what differs between a and b (either may be NULL:
 * absent), as {"path", "op": "added"|"removed"|"changed", "before",
 * "after"}, descending into objects and arrays. a and b are borrowed. */
static void diff_json(const char *path, json_t *a, json_t *b, json_t *changes)
{
	char sub[1024];
	if (a != NULL && b != NULL && json_equal(a, b))
		return;
	if (json_is_object(a) && json_is_object(b)) {
		const char *k;
		json_t *v;
		json_object_foreach(a, k, v)
		{
			pointer(sub, sizeof sub, path, k);
			diff_json(sub, v, json_object_get(b, k), changes);
		}
		json_object_foreach(b, k, v)
		{
			if (json_object_get(a, k) != NULL)
				continue;
			pointer(sub, sizeof sub, path, k);
			diff_json(sub, NULL, v, changes);
		}
		return;
	}
	if (json_is_array(a) && json_is_array(b)) {
		size_t na = json_array_size(a), nb = json_array_size(b);
		for (size_t i = 0; i < na || i < nb; i++) {
			char idx[24];
			snprintf(idx, sizeof idx, "%zu", i);
			pointer(sub, sizeof sub, path, idx);
			diff_json(sub, json_array_get(a, i), json_array_get(b, i), changes);
		}
		return;
	}
	json_t *c = json_pack("{s:s, s:s}", "path", path, "op",
	                      a == NULL   ? "added"
	                      : b == NULL ? "removed"
	                                  : "changed");
	if (a != NULL)
		json_object_set(c, "before", a); /* borrows a */
	if (b != NULL)
		json_object_set(c, "after", b); /* borrows b */
	json_array_append_new(changes, c);      /* steals */
}

static void on_fold_done(tool_fold_t *f, int status)
{
	entity_req_t *r = f->arg;
	char what[300];
	snprintf(what, sizeof what, "reading the events of \"%.200s\"", r->pid);
	if (status == SKALD_EREJECTED && f->why[0] != '\0') {
		skald_http_respond_error(r->res, 422, "entity_refused", "%s", f->why);
		entity_req_free(r);
		return;
	}
	if (status < 0) {
		respond_store_error(r->w, r->res, status, what);
		entity_req_free(r);
		return;
	}
	if (f->highest == 0) {
		skald_http_respond_error(r->res, 404, "not_found",
		                         "no events were ever stored for persistence id \"%.200s\"",
		                         r->pid);
		entity_req_free(r);
		return;
	}
	json_object_set_new(r->out, "highest_seq", json_integer((json_int_t)f->highest));
	if (r->kind == Q_EVENTS) {
		json_object_set(r->out, "steps", r->list); /* borrows */
		/* The next page starts after the last seq of this one. */
		uint64_t end = r->to < f->highest ? r->to : f->highest;
		json_object_set_new(r->out, "next",
		                    end < f->highest ? json_integer((json_int_t)end + 1)
		                                     : json_null());
	} else if (r->kind == Q_STATE) {
		json_t *s = step_json(r, NULL);
		json_object_update(r->out, s); /* seq, state, printed */
		json_decref(s);
		json_object_set(r->out, "event", r->last ? r->last : json_null()); /* borrows */
		char ts[TOOL_TIME_LEN];
		if (f->restored)
			json_object_set_new(r->out, "snapshot",
			                    json_pack("{s:I, s:i, s:s}", "seq",
			                              (json_int_t)f->snap_seq, "version",
			                              f->snap_version, "timestamp",
			                              tool_time(f->snap_timestamp, ts)));
		else
			json_object_set_new(r->out, "snapshot", json_null());
		json_object_set_new(r->out, "events_folded", json_integer((json_int_t)f->n));
		if (f->cut)
			json_object_set_new(r->out, "next",
			                    json_pack("{s:I, s:s}", "seq", (json_int_t)f->next_seq,
			                              "timestamp",
			                              tool_time(f->next_timestamp, ts)));
		else
			json_object_set_new(r->out, "next", json_null());
		if (r->at != NULL) {
			json_object_set_new(r->out, "at", json_string(tool_time(f->at, ts)));
		}
	} else if (r->kind == Q_DIFF) {
		json_t *after = step_json(r, NULL);
		json_t *changes = json_array();
		diff_json("", json_object_get(r->before, "state"), json_object_get(after, "state"),
		          changes);
		json_object_set(r->out, "from", r->before ? r->before : json_null()); /* borrows */
		json_object_set_new(r->out, "to", after);                             /* steals */
		json_object_set(r->out, "events", r->list);                           /* borrows */
		json_object_set_new(r->out, "changes", changes);                      /* steals */
	}
	skald_http_respond_json(r->res, 200, json_incref(r->out)); /* steals the new reference */
	entity_req_free(r);
}

static void on_summary(skald_journal_t *j, int status, uint64_t seq, void *arg)
{
	entity_req_t *r = arg;
	if (status < 0) {
		respond_store_error(r->w, r->res, status, "reading the highest seq");
	} else if (seq == 0) {
		skald_http_respond_error(r->res, 404, "not_found",
		                         "no events were ever stored for persistence id \"%.200s\"",
		                         r->pid);
	} else {
		json_object_set_new(r->out, "highest_seq", json_integer((json_int_t)seq));
		skald_http_respond_json(r->res, 200, json_incref(r->out)); /* steals */
	}
	entity_req_free(r);
}

static void entity_query(const skald_http_request_t *req, skald_http_res_t *res, web_t *w,
                         query_kind_t kind)
{
	if (!allowed(w, req, res))
		return;
	const char *pid = skald_http_param(req, "pid");
	const web_type_t *type;
	if (type_for(w, req, res, pid, &type) < 0)
		return;
	entity_req_t *r = calloc(1, sizeof *r);
	if (r == NULL) {
		skald_http_respond_error(res, 500, "no_memory", "out of memory");
		return;
	}
	*r = (entity_req_t){.w = w, .res = res, .kind = kind, .pid = pid, .type = type};
	r->f = (tool_fold_t){.j = w->t.j,
	                     .type = type ? type->type : NULL,
	                     .pid = pid,
	                     .to = SKALD_SEQ_MAX,
	                     .nstates = 1,
	                     .step = on_step,
	                     .done = on_fold_done,
	                     .arg = r};
	r->out = json_pack("{s:s, s:s?}", "persistence_id", pid, "entity_type",
	                   type ? type->type->name : NULL);
	r->list = json_array();
	int bad = 0;
	switch (kind) {
	case Q_SUMMARY:
		break;
	case Q_EVENTS: {
		uint64_t limit;
		bad = query_u64(req, res, "from", 1, 1, SKALD_SEQ_MAX - PAGE_MAX, &r->from) < 0 ||
		      query_u64(req, res, "limit", PAGE_DEFAULT, 1, PAGE_MAX, &limit) < 0;
		r->f.to = r->from + limit - 1;
		r->to = r->f.to;
		break;
	}
	case Q_STATE: {
		const char *seq = skald_http_query(req, "seq");
		r->at = skald_http_query(req, "at");
		const char *snap = skald_http_query(req, "from_snapshot");
		r->f.from_snapshot =
		        snap != NULL && strcmp(snap, "0") != 0 && strcmp(snap, "false") != 0;
		if (seq != NULL && r->at != NULL) {
			skald_http_respond_error(
			        res, 400, "bad_param",
			        "give seq or at, not both: each says where to stop");
			bad = 1;
		} else if (r->at != NULL) {
			if (tool_parse_time(r->at, &r->f.at) < 0) {
				skald_http_respond_error(
				        res, 400, "bad_time",
				        "at takes an ISO 8601 time with a zone, e.g. "
				        "2026-12-03T14:02:00Z or 2026-12-03T15:02:00.5+01:00, not "
				        "\"%.64s\"",
				        r->at);
				bad = 1;
			}
			r->f.use_at = 1;
		} else {
			bad = query_u64(req, res, "seq", SKALD_SEQ_MAX, 0, SKALD_SEQ_MAX,
			                &r->f.to) < 0;
		}
		break;
	}
	case Q_DIFF:
		bad = query_u64(req, res, "from", 0, 0, SKALD_SEQ_MAX, &r->from) < 0 ||
		      query_u64(req, res, "to", SKALD_SEQ_MAX, 0, SKALD_SEQ_MAX, &r->to) < 0;
		if (!bad && r->from > r->to) {
			skald_http_respond_error(res, 400, "bad_param",
			                         "from (%" PRIu64 ") is after to (%" PRIu64
			                         "): the diff goes forwards",
			                         r->from, r->to);
			bad = 1;
		}
		r->f.to = r->to;
		break;
	}
	if (bad) {
		entity_req_free(r);
		return;
	}
	int rc;
	if (kind == Q_SUMMARY) {
		rc = skald_journal_highest(w->t.j, pid, on_summary, r);
	} else {
		rc = tool_fold_start(&r->f);
		if (rc == SKALD_EINVAL && r->f.why[0] != '\0') {
			skald_http_respond_error(res, 400, "no_restore", "from_snapshot: %s",
			                         r->f.why);
			entity_req_free(r);
			return;
		}
	}
	if (rc < 0) {
		respond_store_error(w, res, rc, "reading the journal");
		entity_req_free(r);
	}
}

static void get_entity(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	entity_query(req, res, arg, Q_SUMMARY);
}

static void get_events(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	entity_query(req, res, arg, Q_EVENTS);
}

static void get_state(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	entity_query(req, res, arg, Q_STATE);
}

static void get_diff(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	entity_query(req, res, arg, Q_DIFF);
}

/* ------------------------------------------------------------------------ */
/* GET /api/entities/:pid/snapshots?limit=N                                  */

typedef struct {
	web_t *w;
	skald_http_res_t *res;
	const char *pid;
	json_t *list;
	tool_snaps_t walk;
} snaps_req_t;

static int on_snap(tool_snaps_t *walk, const skald_snapshot_t *s)
{
	snaps_req_t *r = walk->arg;
	char ts[TOOL_TIME_LEN];
	json_array_append_new(r->list, json_pack("{s:I, s:i, s:s, s:I, s:O}", "seq",
	                                         (json_int_t)s->seq, "version", s->version,
	                                         "timestamp", tool_time(s->timestamp, ts), "size",
	                                         (json_int_t)tool_json_size(s->data), "data",
	                                         s->data)); /* steals the object; O borrows data */
	return 0;
}

static void on_snaps_done(tool_snaps_t *walk, int status)
{
	snaps_req_t *r = walk->arg;
	if (status < 0)
		respond_store_error(r->w, r->res, status, "reading snapshots");
	else
		skald_http_respond_json(r->res, 200,
		                        json_pack("{s:s, s:O, s:b}", "persistence_id", r->pid,
		                                  "snapshots", r->list, "more",
		                                  walk->more)); /* steals */
	json_decref(r->list);
	free(r);
}

static void get_snapshots(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	web_t *w = arg;
	if (!allowed(w, req, res))
		return;
	uint64_t limit;
	if (query_u64(req, res, "limit", PAGE_DEFAULT, 1, PAGE_MAX, &limit) < 0)
		return;
	snaps_req_t *r = calloc(1, sizeof *r);
	if (r == NULL || (r->list = json_array()) == NULL) {
		free(r);
		skald_http_respond_error(res, 500, "no_memory", "out of memory");
		return;
	}
	r->w = w;
	r->res = res;
	r->pid = skald_http_param(req, "pid");
	r->walk = (tool_snaps_t){.j = w->t.j,
	                         .pid = r->pid,
	                         .max_seq = SKALD_SEQ_MAX,
	                         .limit = limit,
	                         .each = on_snap,
	                         .done = on_snaps_done,
	                         .arg = r};
	int rc = tool_snaps_start(&r->walk);
	if (rc < 0) {
		respond_store_error(w, res, rc, "reading snapshots");
		json_decref(r->list);
		free(r);
	}
}

/* ------------------------------------------------------------------------ */
/* GET /api/stream?from=OFFSET&prefix=P&count=N: the global order, live      */

struct web_stream_s {
	web_t *w;
	skald_http_res_t *res;
	web_stream_t *next; /* in w->streams */
	uv_timer_t timer;
	const char *prefix; /* borrowed from the request */
	size_t prefix_len;
	uint64_t after; /* offset of the last event sent (or skipped) */
	uint64_t count, sent;
	int catching_up; /* without from: find the end first, sending nothing */
	int reading;     /* a read_all is in flight */
	int ending;      /* the stream is over: end it once no read is in flight */
	int timer_open;
};

static void stream_closed(uv_handle_t *h)
{
	free(h->data);
}

/* Ends s once nothing of it is in flight. */
static void stream_reap(web_stream_t *s)
{
	if (!s->ending || s->reading || !s->timer_open)
		return;
	for (web_stream_t **p = &s->w->streams; *p != NULL; p = &(*p)->next)
		if (*p == s) {
			*p = s->next;
			break;
		}
	skald_http_stream_end(s->res);
	s->timer_open = 0;
	uv_close((uv_handle_t *)&s->timer, stream_closed);
}

static int on_stream_events(skald_journal_t *j, const skald_event_t *ev, size_t n, void *arg)
{
	web_stream_t *s = arg;
	for (size_t i = 0; i < n; i++) {
		if (s->ending)
			return SKALD_ECANCELED;
		if (!s->catching_up &&
		    (s->prefix == NULL ||
		     strncmp(ev[i].persistence_id, s->prefix, s->prefix_len) == 0)) {
			int rc = skald_http_stream_send_json(s->res, tool_event_json(&ev[i]));
			/* A slow reader: stop here and go on from this event later. */
			if (rc == SKALD_ETOOMANY)
				return SKALD_ECANCELED;
			if (rc < 0) {
				s->ending = 1;
				return SKALD_ECANCELED;
			}
			if (++s->sent == s->count)
				s->ending = 1;
		}
		s->after = ev[i].offset;
		if (s->after > s->w->end_hint)
			s->w->end_hint = s->after;
	}
	return 0;
}

static void on_stream_tick(uv_timer_t *timer);

static void on_stream_done(skald_journal_t *j, int status, void *arg)
{
	web_stream_t *s = arg;
	s->reading = 0;
	if (status < 0 && status != SKALD_ECANCELED && !s->ending) {
		const char *msg = skald_journal_errmsg(j);
		skald_http_stream_send_json(s->res, json_pack("{s:s, s:s}", "error",
		                                              msg[0] ? msg : skald_strerror(status),
		                                              "code", "store")); /* steals */
		s->ending = 1;
	}
	s->catching_up = 0;
	if (s->ending || skald_http_res_closed(s->res)) {
		s->ending = 1;
		stream_reap(s);
		return;
	}
	uv_timer_start(&s->timer, on_stream_tick, s->w->interval, 0);
}

static void on_stream_tick(uv_timer_t *timer)
{
	web_stream_t *s = timer->data;
	if (s->ending || skald_http_res_closed(s->res)) {
		s->ending = 1;
		stream_reap(s);
		return;
	}
	int rc = skald_journal_read_all(s->w->t.j, s->after, SKALD_SEQ_MAX, on_stream_events,
	                                on_stream_done, s);
	if (rc < 0) {
		s->ending = 1;
		stream_reap(s);
		return;
	}
	s->reading = 1;
}

static void get_stream(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	web_t *w = arg;
	if (!allowed(w, req, res))
		return;
	uint64_t from, count;
	if (query_u64(req, res, "from", 0, 0, SKALD_SEQ_MAX, &from) < 0 ||
	    query_u64(req, res, "count", SKALD_SEQ_MAX, 1, SKALD_SEQ_MAX, &count) < 0)
		return;
	web_stream_t *s = calloc(1, sizeof *s);
	if (s == NULL) {
		skald_http_respond_error(res, 500, "no_memory", "out of memory");
		return;
	}
	s->w = w;
	s->res = res;
	s->prefix = skald_http_query(req, "prefix");
	s->prefix_len = s->prefix ? strlen(s->prefix) : 0;
	s->count = count;
	if (skald_http_query(req, "from") != NULL) {
		s->after = from > 0 ? from - 1 : 0;
	} else {
		/* From the end: what earlier streams found of it, then the rest
		 * read once without sending. */
		s->after = w->end_hint;
		s->catching_up = 1;
	}
	if (skald_http_stream_start(res, 200, "application/jsonl") < 0) {
		skald_http_stream_end(res);
		free(s);
		return;
	}
	uv_timer_init(&w->t.loop, &s->timer);
	s->timer.data = s;
	s->timer_open = 1;
	s->next = w->streams;
	w->streams = s;
	on_stream_tick(&s->timer);
}

/* ------------------------------------------------------------------------ */
/* The page, and everything else                                             */

static const web_asset_t assets[NASSETS] = {
        {"/", "text/html; charset=utf-8", tool_web_index_html, tool_web_index_html_end},
        {"/app.js", "text/javascript; charset=utf-8", tool_web_app_js, tool_web_app_js_end},
        {"/app.css", "text/css; charset=utf-8", tool_web_app_css, tool_web_app_css_end},
};

static void get_asset(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	const web_asset_route_t *route = arg;
	const web_asset_t *a = route->asset;
	if (!allowed(route->w, req, res))
		return;
	skald_http_res_header(res, "Cache-Control", "no-cache");
	skald_http_respond(res, 200, a->content_type, a->data, (size_t)(a->end - a->data));
}

static void not_found(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	if (!allowed(arg, req, res))
		return;
	skald_http_respond_error(res, 404, "not_found",
	                         "no such page or API route: %.200s (the API is under /api/: "
	                         "info, ids, entities/PID, entities/PID/events, /state, /diff, "
	                         "/snapshots, stream)",
	                         req->path);
}

/* ------------------------------------------------------------------------ */
/* Listening and stopping                                                    */

/* Splits --listen HOST:PORT ([V6]:PORT) into w->host and w->port. */
static int parse_listen(web_t *w)
{
	const char *l = w->listen;
	const char *colon = strrchr(l, ':');
	const char *host = l;
	size_t hlen = colon != NULL ? (size_t)(colon - l) : 0;
	if (l[0] == '[') {
		const char *close = strchr(l, ']');
		if (close == NULL || close[1] != ':')
			colon = NULL;
		host = l + 1;
		hlen = close != NULL ? (size_t)(close - host) : 0;
	}
	uint64_t port;
	unsigned char addr[16];
	if (colon == NULL || hlen == 0 || hlen >= sizeof w->host ||
	    tool_parse_u64(colon + 1, &port) < 0 || port > 65535)
		return tool_fail(
		        &w->t, TOOL_EUSAGE,
		        "--listen takes HOST:PORT with an IP address, e.g. 127.0.0.1:7070, "
		        "[::1]:7070 or 127.0.0.1:0 (any free port), not \"%s\"",
		        l);
	memcpy(w->host, host, hlen);
	w->host[hlen] = '\0';
	w->port = (int)port;
	int v4 = inet_pton(AF_INET, w->host, addr) == 1;
	int v6 = !v4 && inet_pton(AF_INET6, w->host, addr) == 1;
	if (!v4 && !v6)
		return tool_fail(&w->t, TOOL_EUSAGE,
		                 "--listen: \"%s\" is not an IP address (give one, e.g. 127.0.0.1 "
		                 "or ::1; names are not looked up)",
		                 w->host);
	static const unsigned char v6_loopback[16] = {[15] = 1};
	int loopback = v4 ? addr[0] == 127 : memcmp(addr, v6_loopback, 16) == 0;
	if (!loopback && w->token == NULL)
		return tool_fail(
		        &w->t, TOOL_EUSAGE,
		        "--listen %s is not a loopback address: anyone who reaches it could "
		        "read every history in the journal. Give --token T as well (every "
		        "request must then carry it, as `Authorization: Bearer T` or "
		        "?token=T), or listen on 127.0.0.1",
		        l);
	if (w->token != NULL && w->token[0] == '\0')
		return tool_fail(&w->t, TOOL_EUSAGE, "--token must not be empty");
	return 0;
}

static void on_server_closed(skald_http_server_t *srv, void *arg)
{
	web_t *w = arg;
	skald_http_server_free(srv);
	w->srv = NULL;
	/* Reads still in flight complete first (or are cut short). */
	tool_close_journal(&w->t);
}

static void stop(web_t *w)
{
	if (w->stopping)
		return;
	w->stopping = 1;
	if (w->handles_open) {
		w->handles_open = 0;
		uv_close((uv_handle_t *)&w->sigint, NULL);
		uv_close((uv_handle_t *)&w->sigterm, NULL);
	}
	for (web_stream_t *s = w->streams, *next; s != NULL; s = next) {
		next = s->next;
		s->ending = 1;
		uv_timer_stop(&s->timer);
		stream_reap(s);
	}
	if (w->srv != NULL)
		skald_http_close(w->srv, on_server_closed, w);
	else
		tool_close_journal(&w->t);
}

static void on_signal(uv_signal_t *sig, int signum)
{
	stop(sig->data);
}

static int add_routes(web_t *w)
{
	static const struct {
		const char *pattern;
		skald_http_handler_fn fn;
	} api[] = {
	        {"/api/info", get_info},
	        {"/api/ids", get_ids},
	        {"/api/entities/:pid", get_entity},
	        {"/api/entities/:pid/events", get_events},
	        {"/api/entities/:pid/state", get_state},
	        {"/api/entities/:pid/diff", get_diff},
	        {"/api/entities/:pid/snapshots", get_snapshots},
	        {"/api/stream", get_stream},
	};
	int rc = 0;
	for (size_t i = 0; i < sizeof api / sizeof api[0] && rc == 0; i++)
		rc = skald_http_route(w->srv, "GET", api[i].pattern, api[i].fn, w);
	for (size_t i = 0; i < NASSETS && rc == 0; i++) {
		w->asset_routes[i] = (web_asset_route_t){w, &assets[i]};
		rc = skald_http_route(w->srv, "GET", assets[i].path, get_asset,
		                      &w->asset_routes[i]);
	}
	if (rc == 0)
		rc = skald_http_route(w->srv, "*", "/*rest", not_found, w);
	return rc;
}

static int serve(web_t *w)
{
	skald_http_config_t cfg;
	skald_http_config_init(&cfg);
	cfg.host = w->host;
	cfg.port = w->port;
	int rc = skald_http_server_new(&w->srv, &cfg);
	if (rc == 0)
		rc = add_routes(w);
	if (rc == 0)
		rc = skald_http_start(w->srv, &w->t.loop);
	if (rc < 0) {
		if (w->srv != NULL)
			skald_http_server_free(w->srv);
		w->srv = NULL;
		return tool_fail(&w->t,
		                 rc == UV_EADDRINUSE || rc == UV_EACCES ? TOOL_EUSAGE : TOOL_ESTORE,
		                 "cannot listen on %s: %s", w->listen, skald_strerror(rc));
	}
	uv_signal_init(&w->t.loop, &w->sigint);
	uv_signal_init(&w->t.loop, &w->sigterm);
	w->sigint.data = w->sigterm.data = w;
	w->handles_open = 1;
	uv_signal_start(&w->sigint, on_signal, SIGINT);
	uv_signal_start(&w->sigterm, on_signal, SIGTERM);
	const char *fmt = strchr(w->host, ':') != NULL ? "[%s]" : "%s";
	printf("skald web: serving http://");
	printf(fmt, w->host);
	printf(":%d/%s%s (the %s store, read-only; Ctrl-C stops)\n", skald_http_port(w->srv),
	       w->token ? "?token=" : "", w->token ? w->token : "", skald_journal_scheme(w->t.j));
	fflush(stdout);
	return 0;
}

int cmd_web(int argc, char **argv)
{
	web_t w = {.t = {.cmd = "web", .usage = cmd_web_usage},
	           .listen = "127.0.0.1:7070",
	           .interval = 200};
	const tool_opt_t opts[] = {
	        {"--entity", TOOL_OPT_LIST, &w.entities, NULL},
	        {"--listen", TOOL_OPT_STRING, &w.listen, NULL},
	        {"--token", TOOL_OPT_STRING, &w.token, NULL},
	        {"--interval", TOOL_OPT_U64, &w.interval, NULL},
	};
	if (tool_args(&w.t, argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, NULL) != 0)
		return TOOL_EUSAGE;
	if (w.interval == 0 || w.interval > 3600000)
		return tool_fail(&w.t, TOOL_EUSAGE,
		                 "--interval takes milliseconds from 1 to 3600000, not %" PRIu64,
		                 w.interval);
	if (parse_listen(&w) != 0)
		return TOOL_EUSAGE;
	for (size_t i = 0; i < w.entities.n; i++) {
		web_type_t *ty = &w.types[w.ntypes];
		ty->spec = w.entities.v[i];
		if (tool_entity_load(&w.t, "--entity", ty->spec, &ty->type) != 0)
			return TOOL_EUSAGE;
		if (ty->type->name == NULL || ty->type->name[0] == '\0')
			return tool_fail(&w.t, TOOL_EUSAGE,
			                 "--entity %s: the type has no name, so no persistence id "
			                 "can be matched to it",
			                 ty->spec);
		for (size_t k = 0; k < w.ntypes; k++)
			if (strcmp(w.types[k].type->name, ty->type->name) == 0)
				return tool_fail(
				        &w.t, TOOL_EUSAGE,
				        "--entity %s and %s are both named \"%s\": which one "
				        "folds \"%s-...\"? Give one of them",
				        w.types[k].spec, ty->spec, ty->type->name, ty->type->name);
		w.ntypes++;
	}
	if (tool_open(&w.t) == 0 && serve(&w) == 0)
		tool_run(&w.t);
	stop(&w);
	return tool_close(&w.t);
}
