/*
 * stores/faulty/faulty.c - "faulty://", a store that wraps any other store
 * and breaks it on purpose: for the test suites, the soak, and anyone who
 * wants to see what a program does when its journal fails.
 *
 * URI: faulty://?inner=URI[&OPTION=VALUE...]
 *
 *   inner=URI        the store that keeps the data (memory://x,
 *                    postgres://..., mongodb://...; another faulty:// too).
 *                    Required. The inner URI runs to the next "&NAME=" whose
 *                    NAME is one of the options below, or to the end, so it
 *                    may carry options of its own (postgres://...?batch=10).
 *   ops=LIST         which operations the options below apply to and count:
 *                    a comma list of append, read, highest, delete,
 *                    snapshot_save, snapshot_load, snapshot_delete, read_all,
 *                    list_ids, or the groups writes (append, delete,
 *                    snapshot_save, snapshot_delete), reads (the others) and
 *                    all (the default).
 *   fail_every=N     the Nth counted operation, and every Nth after it,
 *                    fails with SKALD_EBACKEND without reaching the inner
 *                    store: nothing happened.
 *   reject_every=N   the Nth counted append (and every Nth after it) has
 *                    every write SKALD_EREJECTED without reaching the inner
 *                    store; other kinds are not affected.
 *   lie_every=N      the Nth counted operation (and every Nth after it) is
 *                    done by the inner store, then answered SKALD_EBACKEND:
 *                    it took effect, and the caller hears that it failed.
 *   drop_after=N     the connection is lost in the middle of the Nth counted
 *                    operation (and of every Nth after it), which fails with
 *                    SKALD_EBACKEND: an append of W writes stores its first
 *                    W/2 (rounded down) and not the rest; a read, read_all or
 *                    list_ids delivers at most drop_keep events (or ids)
 *                    first; any other operation takes effect and its answer
 *                    is lost.
 *   drop_keep=N      see drop_after; default 1.
 *   delay_ms=N       every counted operation starts N ms late.
 *
 * N is 0 (off) to 1000000000. Operations are counted per handle, from 1, in
 * the order the handle starts them; when several options hit the same
 * operation the first of fail, reject, drop and lie applies. A failure
 * injected here sets the handle's message (skald_journal_errmsg) to one that
 * starts "faulty:" and names the operation's number.
 *
 * The store advertises every capability; the inner store must have atomic,
 * batched writes, snapshots and queries (every store of this tree does), and
 * is as shared and durable as that store is.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal_int.h"

#define FAULTY_NEEDS                                                                               \
	(SKALD_CAP_ATOMIC_WRITES | SKALD_CAP_BATCHED_WRITES | SKALD_CAP_SNAPSHOTS |                \
	 SKALD_CAP_QUERIES)

#define NUM_MAX 1000000000ull

/* Bits of faulty_t.ops, one per skald_op_kind_t. */
#define OP_BIT(k) (1u << (k))
#define WRITES                                                                                     \
	(OP_BIT(SKALD_OP_APPEND) | OP_BIT(SKALD_OP_DELETE_TO) | OP_BIT(SKALD_OP_SNAPSHOT_SAVE) |   \
	 OP_BIT(SKALD_OP_SNAPSHOT_DELETE) | OP_BIT(SKALD_OP_SNAPSHOT_DELETE_TO))
#define READS                                                                                      \
	(OP_BIT(SKALD_OP_READ) | OP_BIT(SKALD_OP_HIGHEST) | OP_BIT(SKALD_OP_SNAPSHOT_LOAD) |       \
	 OP_BIT(SKALD_OP_READ_ALL) | OP_BIT(SKALD_OP_LIST_IDS))

static const struct {
	const char *name;
	unsigned bits;
} op_names[] = {
        {"append", OP_BIT(SKALD_OP_APPEND)},
        {"read", OP_BIT(SKALD_OP_READ)},
        {"highest", OP_BIT(SKALD_OP_HIGHEST)},
        {"delete", OP_BIT(SKALD_OP_DELETE_TO)},
        {"snapshot_save", OP_BIT(SKALD_OP_SNAPSHOT_SAVE)},
        {"snapshot_load", OP_BIT(SKALD_OP_SNAPSHOT_LOAD)},
        {"snapshot_delete", OP_BIT(SKALD_OP_SNAPSHOT_DELETE) | OP_BIT(SKALD_OP_SNAPSHOT_DELETE_TO)},
        {"read_all", OP_BIT(SKALD_OP_READ_ALL)},
        {"list_ids", OP_BIT(SKALD_OP_LIST_IDS)},
        {"writes", WRITES},
        {"reads", READS},
        {"all", WRITES | READS},
};

/* The numeric options, in the order faults are tried. */
enum { O_FAIL, O_REJECT, O_DROP, O_LIE, O_KEEP, O_DELAY, O_NUM };
static const char *const num_names[O_NUM] = {"fail_every", "reject_every", "drop_after",
                                             "lie_every",  "drop_keep",    "delay_ms"};

/* What happens to one operation. */
enum { F_NONE, F_FAIL, F_REJECT, F_DROP, F_LIE };

typedef struct faulty_s {
	const skald_store_t *inner;
	void *istate;
	skald_journal_t *j;
	unsigned ops;
	uint64_t num[O_NUM];
	uint64_t count; /* operations counted so far */
	uv_timer_t timer;
	bool timer_on; /* initialised: closed by close */
	skald_op_t *delayed;
	int delayed_fault;
	uint64_t delayed_no;
	void (*close_done)(skald_journal_t *j);
} faulty_t;

/* What an operation the inner store does needs at its finish. */
typedef struct cut_s {
	faulty_t *f;
	int fault;
	uint64_t no;
	size_t nwrites; /* the op's own, restored at the finish */
	uint64_t max;
} cut_t;

/* ------------------------------------------------------------------------ */
/* The URI                                                                   */

static const char *const option_names[] = {"inner",      "ops",       "fail_every", "reject_every",
                                           "drop_after", "lie_every", "drop_keep",  "delay_ms"};

/* Non-zero if s starts with "NAME=" for one of the options. */
static int at_option(const char *s)
{
	for (size_t i = 0; i < sizeof option_names / sizeof option_names[0]; i++) {
		size_t n = strlen(option_names[i]);
		if (strncmp(s, option_names[i], n) == 0 && s[n] == '=')
			return 1;
	}
	return 0;
}

static int parse_ops(faulty_t *f, const char *v, size_t len)
{
	f->ops = 0;
	while (len > 0) {
		const char *comma = memchr(v, ',', len);
		size_t n = comma ? (size_t)(comma - v) : len;
		unsigned bits = 0;
		for (size_t i = 0; i < sizeof op_names / sizeof op_names[0]; i++)
			if (strlen(op_names[i].name) == n && memcmp(op_names[i].name, v, n) == 0)
				bits = op_names[i].bits;
		if (bits == 0) {
			skald_journal_set_errmsg(
			        f->j,
			        "faulty journal URI: ops: unknown operation \"%.*s\" "
			        "(append, read, highest, delete, snapshot_save, "
			        "snapshot_load, snapshot_delete, read_all, list_ids, "
			        "writes, reads, all)",
			        (int)n, v);
			return SKALD_EURI;
		}
		f->ops |= bits;
		v += n;
		len -= n;
		if (len > 0) {
			v++;
			len--;
		}
	}
	return 0;
}

static int parse_num(faulty_t *f, int which, const char *v, size_t len)
{
	uint64_t x = 0;
	size_t i = 0;
	for (; i < len && v[i] >= '0' && v[i] <= '9' && x <= NUM_MAX; i++)
		x = x * 10 + (uint64_t)(v[i] - '0');
	if (len == 0 || i < len || x > NUM_MAX) {
		skald_journal_set_errmsg(f->j,
		                         "faulty journal URI: %s must be a number from 0 to %llu, "
		                         "not \"%.*s\"",
		                         num_names[which], NUM_MAX, (int)len, v);
		return SKALD_EURI;
	}
	f->num[which] = x;
	return 0;
}

/* Parses the query (after "faulty://?") and copies the inner URI into
 * *inner (malloc'ed). */
static int parse_uri(faulty_t *f, const char *uri, char **inner)
{
	const char *q = uri + strlen("faulty://");
	if (*q != '?') {
		skald_journal_set_errmsg(f->j, "faulty journal URI: expected "
		                               "faulty://?inner=URI[&OPTION=VALUE...]");
		return SKALD_EURI;
	}
	q++;
	f->ops = WRITES | READS;
	f->num[O_KEEP] = 1;
	*inner = NULL;
	while (*q) {
		if (!at_option(q)) {
			size_t n = strcspn(q, "=&");
			skald_journal_set_errmsg(
			        f->j,
			        "faulty journal URI: unknown option \"%.*s\" (inner, "
			        "ops, fail_every, reject_every, drop_after, lie_every, "
			        "drop_keep, delay_ms)",
			        (int)n, q);
			return SKALD_EURI;
		}
		const char *eq = strchr(q, '=');
		const char *v = eq + 1, *end = v;
		while (*end && !(*end == '&' && at_option(end + 1)))
			end++;
		size_t nlen = (size_t)(eq - q), vlen = (size_t)(end - v);
		int rc = 0;
		if (nlen == 5 && memcmp(q, "inner", 5) == 0) {
			free(*inner);
			if ((*inner = strndup(v, vlen)) == NULL)
				return SKALD_ENOMEM;
		} else if (nlen == 3 && memcmp(q, "ops", 3) == 0) {
			rc = parse_ops(f, v, vlen);
		} else {
			for (int k = 0; k < O_NUM; k++)
				if (strlen(num_names[k]) == nlen &&
				    memcmp(num_names[k], q, nlen) == 0)
					rc = parse_num(f, k, v, vlen);
		}
		if (rc < 0)
			return rc;
		q = *end ? end + 1 : end;
	}
	if (*inner == NULL || **inner == '\0') {
		skald_journal_set_errmsg(f->j, "faulty journal URI: inner=URI is required (the "
		                               "store to wrap)");
		return SKALD_EURI;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Open and close                                                            */

static int faulty_open(void *state, skald_journal_t *j, uv_loop_t *loop, const char *uri)
{
	faulty_t *f = state;
	f->j = j;
	char *iuri = NULL;
	int rc = parse_uri(f, uri, &iuri);
	if (rc < 0) {
		free(iuri);
		return rc;
	}
	char err[512];
	const skald_store_t *inner;
	rc = skald__registry_find(iuri, &inner, err, sizeof err);
	if (rc == 0 && (inner->caps & FAULTY_NEEDS) != FAULTY_NEEDS) {
		snprintf(err, sizeof err,
		         "faulty journal URI: the %s store lacks atomic or batched writes, "
		         "snapshots or queries, which the faulty store advertises",
		         inner->schemes[0]);
		rc = SKALD_EUNSUPPORTED;
	}
	if (rc < 0) {
		skald_journal_set_errmsg(j, "faulty journal URI: inner: %s", err);
		free(iuri);
		return rc;
	}
	f->istate = calloc(1, inner->state_size ? inner->state_size : 1);
	if (f->istate == NULL) {
		free(iuri);
		return SKALD_ENOMEM;
	}
	f->inner = inner;
	rc = inner->open(f->istate, j, loop, iuri);
	free(iuri);
	if (rc < 0)
		return rc;
	uv_timer_init(loop, &f->timer);
	f->timer.data = f;
	f->timer_on = true;
	return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
	faulty_t *f = h->data;
	/* The inner store's done hands our state back to the front, which
	 * then finishes it (faulty_fini): nothing of ours is touched after. */
	f->inner->close(f->istate, f->close_done);
}

static void faulty_close(void *state, void (*done)(skald_journal_t *j))
{
	faulty_t *f = state;
	f->close_done = done;
	/* No operation is delayed here: a delayed one has not started in the
	 * inner store, so the front still counts it as running. */
	f->timer_on = false;
	uv_close((uv_handle_t *)&f->timer, on_timer_closed);
}

static void faulty_fini(void *state)
{
	faulty_t *f = state;
	if (f->inner != NULL)
		f->inner->fini(f->istate);
	free(f->istate);
	f->istate = NULL;
	f->inner = NULL;
}

/* ------------------------------------------------------------------------ */
/* Operations                                                                */

static const char *kind_name(skald_op_kind_t k)
{
	for (size_t i = 0; i < sizeof op_names / sizeof op_names[0]; i++)
		if (op_names[i].bits == OP_BIT(k))
			return op_names[i].name;
	return k == SKALD_OP_SNAPSHOT_DELETE_TO ? "snapshot_delete" : "?";
}

/* The inner store has finished an operation that a drop or a lie hits. */
static int on_inner_finish(skald_op_t *op, int status, void *arg)
{
	cut_t *c = arg;
	faulty_t *f = c->f;
	if (c->fault == F_DROP) {
		op->nwrites = c->nwrites;
		op->max = c->max;
		skald_journal_set_errmsg(f->j,
		                         "faulty: connection lost in the middle of operation %llu "
		                         "(%s)",
		                         (unsigned long long)c->no, kind_name(op->kind));
		status = SKALD_EBACKEND;
	} else if (status == 0) {
		skald_journal_set_errmsg(f->j,
		                         "faulty: operation %llu (%s) took effect, and its answer "
		                         "was lost",
		                         (unsigned long long)c->no, kind_name(op->kind));
		status = SKALD_EBACKEND;
	}
	free(c);
	return status;
}

static void run(faulty_t *f, skald_op_t *op, int fault, uint64_t no)
{
	if (fault == F_FAIL) {
		skald_journal_set_errmsg(f->j, "faulty: operation %llu (%s) failed on purpose",
		                         (unsigned long long)no, kind_name(op->kind));
		skald_op_finish(op, SKALD_EBACKEND);
		return;
	}
	if (fault == F_REJECT) {
		skald_journal_set_errmsg(f->j,
		                         "faulty: operation %llu (append) rejected on purpose",
		                         (unsigned long long)no);
		for (size_t i = 0; i < op->nwrites; i++)
			op->writes[i]->status = SKALD_EREJECTED;
		skald_op_finish(op, 0);
		return;
	}
	if (fault == F_DROP && op->kind == SKALD_OP_APPEND && op->nwrites / 2 == 0) {
		skald_journal_set_errmsg(f->j,
		                         "faulty: connection lost in the middle of operation %llu "
		                         "(append)",
		                         (unsigned long long)no);
		skald_op_finish(op, SKALD_EBACKEND);
		return;
	}
	if (fault == F_DROP || fault == F_LIE) {
		cut_t *c = malloc(sizeof *c);
		if (c == NULL) {
			skald_op_finish(op, SKALD_ENOMEM);
			return;
		}
		*c = (cut_t){f, fault, no, op->nwrites, op->max};
		if (fault == F_DROP) {
			if (op->kind == SKALD_OP_APPEND)
				op->nwrites /= 2;
			else if (op->kind == SKALD_OP_READ || op->kind == SKALD_OP_READ_ALL ||
			         op->kind == SKALD_OP_LIST_IDS)
				op->max = op->max < f->num[O_KEEP] ? op->max : f->num[O_KEEP];
		}
		op->on_finish = on_inner_finish;
		op->on_finish_arg = c;
	}
	f->inner->start(f->istate, op);
}

static void on_timer(uv_timer_t *t)
{
	faulty_t *f = t->data;
	skald_op_t *op = f->delayed;
	f->delayed = NULL;
	run(f, op, f->delayed_fault, f->delayed_no);
}

/* Non-zero if the noth operation is hit by option `which`. */
static int hits(const faulty_t *f, int which, uint64_t no)
{
	return f->num[which] != 0 && no % f->num[which] == 0;
}

static void faulty_start(void *state, skald_op_t *op)
{
	faulty_t *f = state;
	if (!(f->ops & OP_BIT(op->kind))) {
		f->inner->start(f->istate, op);
		return;
	}
	uint64_t no = ++f->count;
	int fault = F_NONE;
	if (hits(f, O_FAIL, no))
		fault = F_FAIL;
	else if (op->kind == SKALD_OP_APPEND && hits(f, O_REJECT, no))
		fault = F_REJECT;
	else if (hits(f, O_DROP, no))
		fault = F_DROP;
	else if (hits(f, O_LIE, no))
		fault = F_LIE;
	if (f->num[O_DELAY] == 0) {
		run(f, op, fault, no);
		return;
	}
	/* One operation at a time waits here: the front starts the next only
	 * once this one has reached the inner store and finished or been
	 * released there. */
	f->delayed = op;
	f->delayed_fault = fault;
	f->delayed_no = no;
	uv_timer_start(&f->timer, on_timer, f->num[O_DELAY], 0);
}

static const skald_store_t faulty_store = {
        .abi = SKALD_STORE_ABI,
        .schemes = {"faulty"},
        .state_size = sizeof(faulty_t),
        .caps = FAULTY_NEEDS | SKALD_CAP_SHARED | SKALD_CAP_DURABLE,
        .open = faulty_open,
        .close = faulty_close,
        .fini = faulty_fini,
        .start = faulty_start,
};

int skald__store_faulty_register(void)
{
	return skald__registry_add(&faulty_store);
}
