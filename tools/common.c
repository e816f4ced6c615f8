/*
 * tools/common.c - what the subcommands of `skald` share (see common.h).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/common.h"

/* ------------------------------------------------------------------------ */
/* Messages and exit codes                                                   */

int tool_fail(tool_t *t, int code, const char *fmt, ...)
{
	/* Whatever was printed so far belongs before the message, so that a
	 * table and its error read in the order they happened. */
	fflush(stdout);
	fprintf(stderr, "skald %s: ", t->cmd);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (t->exit_code == TOOL_OK)
		t->exit_code = code;
	/* A failure ends the command: nothing further is asked of the store. */
	tool_close_journal(t);
	return code;
}

int tool_exit_code(int rc)
{
	switch (rc) {
	case 0:
		return TOOL_OK;
	case SKALD_ECONFLICT:
		return TOOL_ECONFLICT;
	case SKALD_ENOTFOUND:
		return TOOL_ENOTFOUND;
	case SKALD_EINVAL:
	case SKALD_EURI:
	case SKALD_ESCHEME:
	case SKALD_EREJECTED:
		return TOOL_EUSAGE;
	default:
		return TOOL_ESTORE;
	}
}

/* After a read stopped at a stored event it cannot decode: how to read on
 * past that event with this command. */
static void hint_past_bad_event(const tool_t *t)
{
	const char *pid;
	uint64_t seq, offset;
	if (t->j == NULL || skald_journal_bad_event(t->j, &pid, &seq, &offset) != 0)
		return;
	fprintf(stderr,
	        "skald %s: event \"%s\" seq %" PRIu64 " is in the journal but cannot be read "
	        "back as JSON; everything before it was printed. To carry on past it: ",
	        t->cmd, pid, seq);
	if (strcmp(t->cmd, "export") == 0 && t->pid == NULL && offset > 0)
		fprintf(stderr, "skald export --after %" PRIu64 " (add --prefix as before)\n",
		        offset);
	else if (strcmp(t->cmd, "export") == 0)
		fprintf(stderr, "skald export --pid '%s' --from %" PRIu64 "\n", pid, seq + 1);
	else
		fprintf(stderr, "skald events '%s' --from %" PRIu64 "\n", pid, seq + 1);
}

int tool_fail_rc(tool_t *t, int rc, const char *what)
{
	const char *msg = t->j != NULL ? skald_journal_errmsg(t->j) : "";
	if (msg[0] == '\0')
		msg = skald_strerror(rc);
	int code = tool_fail(t, tool_exit_code(rc), "%s: %s (%s)", what, msg, skald_err_name(rc));
	/* The handle is closing, not yet freed: what it knows is still there. */
	if (rc == SKALD_EDECODE)
		hint_past_bad_event(t);
	return code;
}

/* ------------------------------------------------------------------------ */
/* Arguments                                                                 */

int tool_parse_u64(const char *s, uint64_t *out)
{
	/* strtoull accepts a sign and leading blanks, and wraps "-1" around to
	 * the largest value: check the digits first. */
	if (s == NULL || !isdigit((unsigned char)s[0]))
		return -1;
	for (const char *p = s; *p; p++)
		if (!isdigit((unsigned char)*p))
			return -1;
	errno = 0;
	unsigned long long v = strtoull(s, NULL, 10);
	if (errno == ERANGE)
		return TOOL_U64_TOO_LARGE;
	*out = (uint64_t)v;
	return 0;
}

static int usage_error(tool_t *t, const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "skald %s: ", t->cmd);
	fprintf(stderr, fmt, a, b);
	fprintf(stderr, "\n\n%s", t->usage);
	if (t->exit_code == TOOL_OK)
		t->exit_code = TOOL_EUSAGE;
	return TOOL_EUSAGE;
}

/* Stores one option's value. name is the option as written ("--from"). */
static int set_opt(tool_t *t, const tool_opt_t *o, const char *name, const char *value)
{
	if (o->given != NULL)
		*o->given = 1;
	switch (o->kind) {
	case TOOL_OPT_FLAG:
		*(int *)o->out = 1;
		return 0;
	case TOOL_OPT_STRING:
		*(const char **)o->out = value;
		return 0;
	case TOOL_OPT_U64: {
		int rc = tool_parse_u64(value, o->out);
		if (rc == TOOL_U64_TOO_LARGE)
			return usage_error(t, "%s is at most 18446744073709551615, not %s", name,
			                   value);
		if (rc < 0)
			return usage_error(t, "%s takes a whole number (0 or more), not \"%s\"",
			                   name, value);
		return 0;
	}
	case TOOL_OPT_LIST: {
		tool_list_t *l = o->out;
		if (l->n == TOOL_LIST_MAX)
			return usage_error(t, "%s is given more often than the %s times it may be",
			                   name, "16");
		l->v[l->n++] = value;
		return 0;
	}
	}
	return 0;
}

int tool_args(tool_t *t, int argc, char **argv, const tool_opt_t *opts, size_t nopts,
              const char **pos, size_t npos, const char *pos_name)
{
	const tool_opt_t common[] = {
	        {"--store", TOOL_OPT_STRING, &t->uri, NULL},
	        {"--json", TOOL_OPT_FLAG, &t->json, NULL},
	};
	size_t got = 0;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
			if (got == npos)
				return usage_error(t, "unexpected argument \"%s\"%s", arg,
				                   npos ? ""
				                        : " (this command takes no positional "
				                          "argument)");
			pos[got++] = arg;
			continue;
		}
		char name[64];
		const char *eq = strchr(arg, '=');
		const char *value = NULL;
		size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
		if (len >= sizeof name)
			return usage_error(t, "unknown option %s%s", arg, "");
		memcpy(name, arg, len);
		name[len] = '\0';
		if (eq != NULL)
			value = eq + 1;

		const tool_opt_t *o = NULL;
		for (size_t k = 0; k < sizeof common / sizeof common[0] && o == NULL; k++)
			if (strcmp(common[k].name, name) == 0)
				o = &common[k];
		for (size_t k = 0; k < nopts && o == NULL; k++)
			if (strcmp(opts[k].name, name) == 0)
				o = &opts[k];
		if (o == NULL)
			return usage_error(t, "unknown option %s%s", name, "");
		if (o->kind == TOOL_OPT_FLAG) {
			if (value != NULL)
				return usage_error(t, "%s takes no value (got \"%s\")", name,
				                   value);
		} else if (value == NULL) {
			if (i + 1 >= argc)
				return usage_error(t, "%s needs a value%s", name,
				                   o->kind == TOOL_OPT_U64 ? " (a whole number)"
				                                           : "");
			value = argv[++i];
		}
		if (set_opt(t, o, name, value) != 0)
			return TOOL_EUSAGE;
	}
	if (got < npos)
		return usage_error(t, "missing %s%s", pos_name, "");
	for (size_t k = 0; k < got; k++)
		if (pos[k][0] == '\0')
			return usage_error(t, "%s is empty%s", pos_name,
			                   strcmp(pos_name, "PID") == 0
			                           ? ": give a persistence id such as game-42 "
			                             "(`skald ids` lists them)"
			                           : "");
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The journal                                                               */

int tool_open(tool_t *t)
{
	if (t->uri == NULL) {
		const char *env = getenv("SKALD_JOURNAL");
		if (env != NULL && *env != '\0')
			t->uri = env;
	}
	if (t->uri == NULL || *t->uri == '\0')
		return tool_fail(t, TOOL_EUSAGE,
		                 "no journal: pass --store URI or set SKALD_JOURNAL, e.g. "
		                 "postgres://USER:PASSWORD@HOST:PORT/DB or mongodb://HOST:PORT/DB");
	/* Every failure is reported once by the command, with the store's own
	 * message: the library's warnings about it would say it twice. */
	setenv("SKALD_LOG", "error", 0);
	int rc = uv_loop_init(&t->loop);
	if (rc != 0)
		return tool_fail(t, TOOL_ESTORE, "cannot make an event loop: %s", uv_strerror(rc));
	t->loop_ready = 1;
	rc = skald_journal_open(&t->loop, t->uri, &t->j);
	if (rc < 0) {
		const char *msg = skald_journal_open_errmsg();
		int code = rc == SKALD_ESCHEME || rc == SKALD_EURI || rc == SKALD_EINVAL
		                   ? TOOL_EUSAGE
		                   : TOOL_ESTORE;
		t->j = NULL;
		return tool_fail(t, code, "%s", msg[0] ? msg : skald_strerror(rc));
	}
	/* Such a store opens fine and answers every question with "nothing",
	 * which would read as an empty journal: say what is going on instead. */
	if (!(skald_journal_caps(t->j) & SKALD_CAP_SHARED))
		return tool_fail(
		        t, TOOL_EUSAGE,
		        "the %s:// store keeps its data inside the process that writes it, "
		        "so a separate `skald` process always finds it empty; point --store "
		        "at a shared store (postgres://..., mongodb://...)",
		        skald_journal_scheme(t->j));
	return 0;
}

static void on_required_highest(skald_journal_t *j, int status, uint64_t seq, void *arg)
{
	tool_t *t = arg;
	if (status < 0) {
		char what[256];
		snprintf(what, sizeof what, "reading the highest seq of \"%s\"", t->pid);
		tool_fail_rc(t, status, what);
		return;
	}
	if (seq == 0) {
		tool_fail(t, TOOL_ENOTFOUND,
		          "no events were ever stored for persistence id \"%s\" (`skald ids` lists "
		          "the ones there are)",
		          t->pid);
		return;
	}
	t->highest = seq;
	t->next(t);
}

void tool_require_pid(tool_t *t, void (*next)(tool_t *t))
{
	t->next = next;
	int rc = skald_journal_highest(t->j, t->pid, on_required_highest, t);
	if (rc < 0) {
		char what[256];
		snprintf(what, sizeof what, "reading the highest seq of \"%s\"", t->pid);
		tool_fail_rc(t, rc, what);
	}
}

void tool_run(tool_t *t)
{
	if (t->loop_ready)
		uv_run(&t->loop, UV_RUN_DEFAULT);
}

static void on_journal_closed(skald_journal_t *j, void *arg)
{
	tool_t *t = arg;
	t->j = NULL;
}

void tool_close_journal(tool_t *t)
{
	if (t->j == NULL || t->closing)
		return;
	t->closing = 1;
	if (skald_journal_close(t->j, on_journal_closed, t) != 0)
		t->j = NULL;
}

int tool_close(tool_t *t)
{
	if (t->loop_ready) {
		/* The store's connection keeps the loop alive until the command
		 * closes the journal, which it does when its work is done. */
		uv_run(&t->loop, UV_RUN_DEFAULT);
		tool_close_journal(t);
		uv_run(&t->loop, UV_RUN_DEFAULT);
		(void)uv_loop_close(&t->loop);
		t->loop_ready = 0;
	}
	/* A full disk under `skald export > file` must not look like success. */
	if (fflush(stdout) != 0 || ferror(stdout))
		tool_fail(t, TOOL_ESTORE, "writing stdout: %s", strerror(errno));
	return t->exit_code;
}

/* ------------------------------------------------------------------------ */
/* Times and writers                                                         */

char *tool_time(int64_t ms, char buf[TOOL_TIME_LEN])
{
	/* Floor division, so that times before 1970 keep positive milliseconds. */
	int64_t secs = ms / 1000, milli = ms % 1000;
	if (milli < 0) {
		milli += 1000;
		secs--;
	}
	time_t tt = (time_t)secs;
	struct tm tm;
	if (gmtime_r(&tt, &tm) == NULL) {
		snprintf(buf, TOOL_TIME_LEN, "%" PRId64 "ms", ms);
		return buf;
	}
	snprintf(buf, TOOL_TIME_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)milli);
	return buf;
}

/* Reads exactly n digits at *p into *out and advances *p. */
static int digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static int expect(const char **p, const char *any)
{
	if (**p == '\0' || strchr(any, **p) == NULL)
		return -1;
	(*p)++;
	return 0;
}

int tool_parse_time(const char *s, int64_t *ms)
{
	int y, mo, d, h, mi, sec;
	const char *p = s;
	if (digits(&p, 4, &y) || expect(&p, "-") || digits(&p, 2, &mo) || expect(&p, "-") ||
	    digits(&p, 2, &d) || expect(&p, "Tt ") || digits(&p, 2, &h) || expect(&p, ":") ||
	    digits(&p, 2, &mi) || expect(&p, ":") || digits(&p, 2, &sec))
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -1;
	int milli = 0;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		/* Milliseconds are what the journal keeps: finer digits are
		 * dropped, fewer are scaled ("5" is 500 ms). */
		int n = 0;
		for (; isdigit((unsigned char)*p); p++, n++)
			if (n < 3)
				milli = milli * 10 + (*p - '0');
		for (; n < 3; n++)
			milli *= 10;
	}
	int offset_min = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, oh, om;
		p++;
		if (digits(&p, 2, &oh) || expect(&p, ":") || digits(&p, 2, &om) || oh > 23 ||
		    om > 59)
			return -1;
		offset_min = sign * (oh * 60 + om);
	} else {
		return -1;
	}
	if (*p != '\0')
		return -1;
	struct tm tm = {0};
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	time_t secs = timegm(&tm);
	*ms = ((int64_t)secs - (int64_t)offset_min * 60) * 1000 + milli;
	return 0;
}

char *tool_writer(uint64_t writer, char buf[TOOL_WRITER_LEN])
{
	snprintf(buf, TOOL_WRITER_LEN, "%016" PRIx64, writer);
	return buf;
}

int tool_parse_writer(const json_t *v, uint64_t *out)
{
	if (v == NULL || json_is_null(v)) {
		*out = 0;
		return 0;
	}
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			return -1;
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	const char *s = json_string_value(v);
	size_t n = s != NULL ? strlen(s) : 0;
	if (n == 0 || n > 16)
		return -1;
	uint64_t w = 0;
	for (size_t i = 0; i < n; i++) {
		int c = tolower((unsigned char)s[i]);
		int d = isdigit(c) ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			return -1;
		w = w << 4 | (uint64_t)d;
	}
	*out = w;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* JSON and tables                                                           */

json_t *tool_event_json(const skald_event_t *ev)
{
	char ts[TOOL_TIME_LEN], wr[TOOL_WRITER_LEN];
	json_t *o = json_object();
	if (o == NULL)
		return NULL;
	/* The _new setters steal their values; data is borrowed from the
	 * event, so it gets a reference of its own (json_object_set). */
	int bad = json_object_set_new(o, "persistence_id", json_string(ev->persistence_id));
	bad |= json_object_set_new(o, "seq", json_integer((json_int_t)ev->seq));
	bad |= json_object_set_new(o, "type", json_string(ev->type));
	bad |= json_object_set_new(o, "version", json_integer(ev->version));
	bad |= json_object_set(o, "data", ev->data != NULL ? ev->data : json_null());
	bad |= json_object_set_new(o, "timestamp", json_string(tool_time(ev->timestamp, ts)));
	bad |= json_object_set_new(o, "writer", json_string(tool_writer(ev->writer, wr)));
	bad |= json_object_set_new(o, "offset", json_integer((json_int_t)ev->offset));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

char *tool_dumps(const json_t *v)
{
	return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

void tool_print_json(const json_t *v)
{
	json_dumpf(v, stdout, JSON_COMPACT | JSON_ENCODE_ANY);
	fputc('\n', stdout);
}

void tool_cell(const char *s, int width)
{
	int n = (int)strlen(s);
	fputs(s, stdout);
	for (int pad = width - n < 1 ? 1 : width - n; pad > 0; pad--)
		fputc(' ', stdout);
}

/* The keys of an envelope, as `skald events --json` and `skald export` write
 * them; the only keys an input line may have. */
static const char *const envelope_keys[] = {"persistence_id", "seq",       "type",   "version",
                                            "data",           "timestamp", "writer", "offset"};

int tool_event_of_line(tool_t *t, tool_line_t kind, size_t lineno, json_t *line, skald_event_t *ev)
{
	const size_t nkeys = sizeof envelope_keys / sizeof envelope_keys[0];
	int envelope = kind == TOOL_LINE_ENVELOPE;
	if (!json_is_object(line))
		return tool_fail(
		        t, TOOL_EUSAGE, "stdin line %zu: %s", lineno,
		        envelope ? "an envelope is a JSON object, as `skald export` writes "
		                   "them"
		                 : "an event is a JSON object, e.g. "
		                   "{\"type\":\"game.moved\",\"version\":1,\"data\":{...}}");
	const char *key;
	json_t *v;
	json_object_foreach(line, key, v)
	{
		size_t k = 0;
		while (k < nkeys && strcmp(envelope_keys[k], key) != 0)
			k++;
		if (k == nkeys)
			return tool_fail(
			        t, TOOL_EUSAGE,
			        "stdin line %zu: unknown key \"%s\" (an envelope has "
			        "persistence_id, seq, type, version, data, timestamp, writer "
			        "and offset%s)",
			        lineno, key,
			        envelope ? ""
			                 : "; an event to append needs only type, "
			                   "version and data");
	}
	*ev = (skald_event_t){0};
	if (envelope) {
		ev->persistence_id = json_string_value(json_object_get(line, "persistence_id"));
		if (ev->persistence_id == NULL || ev->persistence_id[0] == '\0')
			return tool_fail(t, TOOL_EUSAGE,
			                 "stdin line %zu: \"persistence_id\" must be a non-empty "
			                 "string",
			                 lineno);
		json_t *seq = json_object_get(line, "seq");
		if (!json_is_integer(seq) || json_integer_value(seq) < 1)
			return tool_fail(t, TOOL_EUSAGE,
			                 "stdin line %zu: \"seq\" must be a whole number from 1",
			                 lineno);
		ev->seq = (uint64_t)json_integer_value(seq);
	}
	ev->type = json_string_value(json_object_get(line, "type"));
	if (ev->type == NULL || ev->type[0] == '\0')
		return tool_fail(t, TOOL_EUSAGE,
		                 "stdin line %zu: \"type\" must be a non-empty string, e.g. "
		                 "\"game.moved\"",
		                 lineno);
	json_t *version = json_object_get(line, "version");
	json_int_t ver = 1;
	if (version != NULL) {
		ver = json_is_integer(version) ? json_integer_value(version) : 0;
		if (ver < 1 || ver > INT32_MAX)
			return tool_fail(
			        t, TOOL_EUSAGE,
			        "stdin line %zu: \"version\" must be a whole number from 1",
			        lineno);
	}
	ev->version = (int)ver;
	ev->data = json_object_get(line, "data");
	if (!json_is_object(ev->data))
		return tool_fail(t, TOOL_EUSAGE,
		                 "stdin line %zu: \"data\" must be a JSON object (use {} for none)",
		                 lineno);
	if (!envelope)
		return 0;
	json_t *tsv = json_object_get(line, "timestamp");
	if (tsv != NULL && !json_is_null(tsv)) {
		/* ms since the epoch are accepted too: what a script may have,
		 * within the years an RFC 3339 time can name (0000 to 9999), so
		 * that `skald export` writes back what it read. */
		if (json_is_integer(tsv) && json_integer_value(tsv) >= TOOL_TIME_MIN_MS &&
		    json_integer_value(tsv) <= TOOL_TIME_MAX_MS)
			ev->timestamp = json_integer_value(tsv);
		else if (!json_is_string(tsv) ||
		         tool_parse_time(json_string_value(tsv), &ev->timestamp) < 0)
			return tool_fail(t, TOOL_EUSAGE,
			                 "stdin line %zu: \"timestamp\" must be an RFC 3339 time, "
			                 "e.g. \"2024-05-01T12:00:00.123Z\", or milliseconds since "
			                 "1970 within the years 0000 to 9999",
			                 lineno);
	}
	if (tool_parse_writer(json_object_get(line, "writer"), &ev->writer) < 0)
		return tool_fail(
		        t, TOOL_EUSAGE,
		        "stdin line %zu: \"writer\" must be 1 to 16 hex digits in a string",
		        lineno);
	return 0;
}
