/*
 * http/router.c - routes, their lookup, and the decoding of query strings
 * and route parameters.
 *
 * A pattern is kept as its segments with a kind each. Routes are few (tens),
 * so lookup walks them all and keeps the most specific match; see
 * skald_http_route in http.h for the order.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/internal.h"

enum { SEG_LITERAL, SEG_PARAM, SEG_REST };

typedef struct {
	int kind;
	char *text; /* the literal, or the parameter's name */
} seg_t;

struct skald__http_route_s {
	skald__http_route_t *next;
	char *method; /* "*" for any */
	seg_t *segs;
	size_t nsegs;
	skald_http_handler_fn handler;
	void *arg;
	void *owned; /* freed with the route (an asset) */
};

static void route_free(skald__http_route_t *r)
{
	for (size_t i = 0; i < r->nsegs; i++)
		free(r->segs[i].text);
	free(r->segs);
	free(r->method);
	free(r->owned);
	free(r);
}

void skald__http_routes_free(skald__http_route_t *routes)
{
	while (routes != NULL) {
		skald__http_route_t *next = routes->next;
		route_free(routes);
		routes = next;
	}
}

/* The number of segments of a path after its leading '/': "/a/b" has "a"
 * and "b"; "/" none; "/a/" has "a" and "". */
static size_t count_segments(const char *path, size_t len)
{
	if (len <= 1)
		return 0;
	size_t n = 1;
	for (size_t i = 1; i < len; i++)
		n += path[i] == '/';
	return n;
}

static bool valid_method(const char *m)
{
	if (strcmp(m, "*") == 0)
		return true;
	if (*m == '\0')
		return false;
	for (; *m; m++) {
		if (!((*m >= 'A' && *m <= 'Z') || *m == '-'))
			return false;
	}
	return true;
}

static int route_add(skald__http_route_t **routes, const char *method, const char *pattern,
                     skald_http_handler_fn handler, void *arg, void *owned)
{
	if (method == NULL || pattern == NULL || handler == NULL || pattern[0] != '/' ||
	    !valid_method(method))
		return SKALD_EINVAL;
	size_t plen = strlen(pattern);
	skald__http_route_t *r = calloc(1, sizeof *r);
	if (r == NULL)
		return SKALD_ENOMEM;
	r->handler = handler;
	r->arg = arg;
	r->method = strdup(method);
	size_t n = count_segments(pattern, plen);
	r->segs = calloc(n ? n : 1, sizeof *r->segs);
	if (r->method == NULL || r->segs == NULL) {
		route_free(r);
		return SKALD_ENOMEM;
	}
	const char *p = pattern + 1;
	for (size_t i = 0; i < n; i++) {
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		seg_t *s = &r->segs[i];
		s->kind = p[0] == ':' ? SEG_PARAM : p[0] == '*' ? SEG_REST : SEG_LITERAL;
		size_t skip = s->kind == SEG_LITERAL ? 0 : 1;
		s->text = strndup(p + skip, len - skip);
		r->nsegs = i + 1;
		bool bad = s->text == NULL || (s->kind != SEG_LITERAL && len == 1) ||
		           (s->kind == SEG_REST && i != n - 1) || memchr(p, '?', len) != NULL;
		if (bad) {
			int err = s->text == NULL ? SKALD_ENOMEM : SKALD_EINVAL;
			route_free(r);
			return err;
		}
		p += len + 1;
	}
	while (*routes != NULL)
		routes = &(*routes)->next;
	r->owned = owned;
	*routes = r;
	return 0;
}

int skald__http_route_add(skald__http_route_t **routes, const char *method, const char *pattern,
                          skald_http_handler_fn handler, void *arg)
{
	return route_add(routes, method, pattern, handler, arg, NULL);
}

/* Whether r's pattern matches path (plen bytes, not decoded). */
static bool route_matches(const skald__http_route_t *r, const char *path, size_t plen)
{
	size_t nseg = count_segments(path, plen);
	const char *p = path + 1;
	const char *end = path + plen;
	for (size_t i = 0; i < r->nsegs; i++) {
		const seg_t *s = &r->segs[i];
		if (s->kind == SEG_REST)
			return true;
		if (i >= nseg)
			return false;
		const char *slash = memchr(p, '/', (size_t)(end - p));
		size_t len = slash ? (size_t)(slash - p) : (size_t)(end - p);
		if (s->kind == SEG_LITERAL &&
		    (strlen(s->text) != len || memcmp(s->text, p, len) != 0))
			return false;
		if (s->kind == SEG_PARAM && len == 0)
			return false;
		p += len + 1;
	}
	return r->nsegs == nseg;
}

/* Negative if a is more specific than b, positive if less, 0 if equal. */
static int specificity(const skald__http_route_t *a, const skald__http_route_t *b)
{
	size_t n = a->nsegs < b->nsegs ? a->nsegs : b->nsegs;
	for (size_t i = 0; i < n; i++) {
		if (a->segs[i].kind != b->segs[i].kind)
			return a->segs[i].kind - b->segs[i].kind;
	}
	return 0;
}

static bool method_is(const skald__http_route_t *r, const char *method)
{
	return strcmp(r->method, "*") == 0 || strcmp(r->method, method) == 0;
}

static void allow_add(char *allow, size_t size, const char *method)
{
	size_t mlen = strlen(method);
	for (const char *p = allow; (p = strstr(p, method)) != NULL; p += mlen) {
		if ((p == allow || p[-1] == ' ') && (p[mlen] == ',' || p[mlen] == '\0'))
			return;
	}
	size_t len = strlen(allow);
	if (len + mlen + 3 < size)
		snprintf(allow + len, size - len, "%s%s", len ? ", " : "", method);
}

void skald__http_route_find(const skald__http_route_t *routes, const char *method, const char *path,
                            skald__http_match_t *m)
{
	size_t plen = strlen(path);
	const skald__http_route_t *best = NULL, *best_get = NULL;
	bool any = false;
	m->allow[0] = '\0';
	for (const skald__http_route_t *r = routes; r != NULL; r = r->next) {
		if (!route_matches(r, path, plen))
			continue;
		any = true;
		allow_add(m->allow, sizeof m->allow, r->method);
		if (method_is(r, method)) {
			if (best == NULL || specificity(r, best) < 0)
				best = r;
		} else if (strcmp(method, "HEAD") == 0 && method_is(r, "GET")) {
			if (best_get == NULL || specificity(r, best_get) < 0)
				best_get = r;
		}
	}
	/* HEAD falls back to GET; a GET route also allows HEAD. */
	if (best == NULL)
		best = best_get;
	if (strstr(m->allow, "GET") != NULL)
		allow_add(m->allow, sizeof m->allow, "HEAD");
	m->route = best;
	m->status = best != NULL ? 200 : any ? 405 : 404;
}

skald_http_handler_fn skald__http_route_handler(const skald__http_route_t *r, void **arg)
{
	*arg = r->arg;
	return r->handler;
}

/* ------------------------------------------------------------------------ */
/* Decoding                                                                  */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Appends the percent-decoding of s[0..len) and a NUL at *out; a '%' not
 * followed by two hex digits is kept as it is. Returns the start. */
static char *decode_into(char **out, const char *s, size_t len, bool plus_is_space)
{
	char *start = *out, *d = *out;
	for (size_t i = 0; i < len; i++) {
		int hi, lo;
		if (s[i] == '%' && i + 2 < len && (hi = hexval(s[i + 1])) >= 0 &&
		    (lo = hexval(s[i + 2])) >= 0) {
			*d++ = (char)(hi * 16 + lo);
			i += 2;
		} else if (s[i] == '+' && plus_is_space) {
			*d++ = ' ';
		} else {
			*d++ = s[i];
		}
	}
	*d++ = '\0';
	*out = d;
	return start;
}

int skald__http_decode(skald__http_ex_t *ex, const skald__http_route_t *r)
{
	skald_http_request_t *req = &ex->req;
	const char *target = req->target;
	const char *q = strchr(target, '?');
	const char *qend = q != NULL ? q + strcspn(q, "#") : NULL;
	size_t nquery = 0;
	if (q != NULL) {
		for (const char *p = q + 1; p < qend; p++)
			nquery += *p == '&';
		nquery++;
	}
	size_t nparams = 0, names = 0;
	if (r != NULL) {
		for (size_t i = 0; i < r->nsegs; i++) {
			if (r->segs[i].kind != SEG_LITERAL) {
				nparams++;
				names += strlen(r->segs[i].text) + 1;
			}
		}
	}
	/* Decoding never lengthens; every piece gets a NUL (the query's
	 * '=' and '&' pay for theirs, a name without '=' adds one). */
	size_t tlen = strlen(target);
	ex->decoded = malloc(2 * tlen + names + nquery + nparams + 2);
	skald_http_pair_t *pairs =
	        realloc(ex->pairs, (req->header_count + nquery + nparams + 1) * sizeof *pairs);
	if (ex->decoded == NULL || pairs == NULL) {
		if (pairs != NULL)
			ex->pairs = pairs;
		return SKALD_ENOMEM;
	}
	ex->pairs = pairs;
	req->headers = pairs;
	char *d = ex->decoded;
	skald_http_pair_t *qp = pairs + req->header_count;
	size_t nq = 0;
	for (const char *p = q != NULL ? q + 1 : NULL; p != NULL && p < qend;) {
		const char *amp = memchr(p, '&', (size_t)(qend - p));
		const char *end = amp != NULL ? amp : qend;
		const char *eq = memchr(p, '=', (size_t)(end - p));
		if (end > p) {
			const char *nend = eq != NULL ? eq : end;
			qp[nq].name = decode_into(&d, p, (size_t)(nend - p), true);
			qp[nq].value =
			        eq != NULL ? decode_into(&d, eq + 1, (size_t)(end - eq - 1), true)
			                   : decode_into(&d, "", 0, true);
			nq++;
		}
		p = amp != NULL ? amp + 1 : NULL;
	}
	req->query = qp;
	req->query_count = nq;

	skald_http_pair_t *pp = qp + nq;
	size_t np = 0;
	const char *path = req->path;
	const char *pend = path + strlen(path);
	const char *p = path + 1;
	for (size_t i = 0; r != NULL && i < r->nsegs && p <= pend; i++) {
		const seg_t *s = &r->segs[i];
		const char *slash = memchr(p, '/', (size_t)(pend - p));
		size_t len = s->kind == SEG_REST ? (size_t)(pend - p)
		             : slash != NULL     ? (size_t)(slash - p)
		                                 : (size_t)(pend - p);
		if (s->kind != SEG_LITERAL) {
			size_t nlen = strlen(s->text);
			memcpy(d, s->text, nlen + 1);
			pp[np].name = d;
			d += nlen + 1;
			pp[np].value = decode_into(&d, p, len, false);
			np++;
		}
		p += len + 1;
	}
	req->params = pp;
	req->param_count = np;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Embedded assets                                                           */

typedef struct {
	const void *data;
	size_t len;
	char etag[24];
	char ctype[];
} asset_t;

static void serve_asset(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	const asset_t *a = arg;
	const char *inm = skald_http_header(req, "If-None-Match");
	skald_http_res_header(res, "ETag", a->etag);
	skald_http_res_header(res, "Cache-Control", "no-cache");
	if (inm != NULL && strstr(inm, a->etag) != NULL)
		skald_http_respond(res, 304, NULL, NULL, 0);
	else
		skald_http_respond(res, 200, a->ctype, a->data, a->len);
}

int skald_http_route_asset(skald_http_server_t *srv, const char *path, const char *content_type,
                           const void *data, size_t len)
{
	if (content_type == NULL || strpbrk(content_type, "\r\n") != NULL ||
	    (data == NULL && len > 0) || path == NULL || strpbrk(path, ":*") != NULL)
		return SKALD_EINVAL;
	if (srv->started)
		return SKALD_EBUSY;
	size_t clen = strlen(content_type);
	asset_t *a = malloc(sizeof *a + clen + 1);
	if (a == NULL)
		return SKALD_ENOMEM;
	a->data = data;
	a->len = len;
	memcpy(a->ctype, content_type, clen + 1);
	/* FNV-1a of the content: the same bytes always get the same tag. */
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ ((const unsigned char *)data)[i]) * 1099511628211ull;
	snprintf(a->etag, sizeof a->etag, "\"%016llx\"", (unsigned long long)h);
	/* The route owns the asset's record from now on. */
	int rc = route_add(&srv->routes, "GET", path, serve_asset, a, a);
	if (rc != 0)
		free(a);
	return rc;
}

typedef struct render_route_s {
	skald_http_render_fn render;
	void *arg;
} render_route_t;

static void serve_rendered(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	render_route_t *r = arg;
	char *body = NULL;
	size_t len = 0;
	int rc = r->render(r->arg, &body, &len);
	if (rc < 0) {
		skald_http_respond_error(res, 500, "render_failed",
		                         "the metrics could not be rendered");
		return;
	}
	skald_http_res_header(res, "Cache-Control", "no-store");
	skald_http_respond_take(res, 200, "text/plain; version=0.0.4; charset=utf-8", body, len);
}

int skald_http_route_metrics(skald_http_server_t *srv, const char *path,
                             skald_http_render_fn render, void *arg)
{
	if (render == NULL || path == NULL || strpbrk(path, ":*") != NULL)
		return SKALD_EINVAL;
	if (srv->started)
		return SKALD_EBUSY;
	render_route_t *r = malloc(sizeof *r);
	if (r == NULL)
		return SKALD_ENOMEM;
	r->render = render;
	r->arg = arg;
	/* The route owns r from now on, as an asset's record. */
	int rc = route_add(&srv->routes, "GET", path, serve_rendered, r, r);
	if (rc != 0)
		free(r);
	return rc;
}
