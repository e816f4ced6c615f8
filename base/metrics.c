/*
 * base/metrics.c - the metrics registry, per-thread cells and the Prometheus
 * text format (see skald/metrics.h).
 *
 * Every series owns a run of cells (a counter or gauge one, a histogram one
 * per bucket plus one for the sum). Each thread that updates a metric gets a
 * block of CELLS cells of its own on its first update; only that thread
 * writes it, with a relaxed load and store (no read-modify-write, no
 * shared cache line), and the renderer reads every block under the
 * registry's lock. When a thread exits, its block is folded into `retired`
 * and kept for the next thread, so the totals never go down.
 *
 * Cells hold uint64_t: counters and bucket counts as integers, gauge
 * additions as two's complement int64_t, a histogram's sum as the bits of
 * a double.
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/metrics_int.h"

#define CELLS      4096
#define MAX_BOUNDS 32
#define MAX_NAME   128
#define MAX_LVALUE 128

enum { K_COUNTER, K_GAUGE, K_HISTOGRAM };

typedef struct family_s {
	char *name, *help;
	int kind;
	double *bounds;
	size_t nbounds;
	struct skald_metric_s *series, *last;
	struct family_s *next;
} family_t;

struct skald_metric_s {
	family_t *fam;
	char *label, *value; /* NULL: no label */
	uint32_t cell, ncells;
	double (*fn)(void *arg);
	void *fn_arg;
	int src;                   /* SKALD__SRC_* slot read from the sources; 0: none */
	_Atomic uint64_t set_bits; /* a gauge's set value, as double bits */
	struct skald_metric_s *next;
};

typedef struct shard_s {
	_Atomic uint64_t cell[CELLS];
	struct shard_s *next;
} shard_t;

static uv_once_t once = UV_ONCE_INIT;
static uv_mutex_t lock;
static pthread_key_t shard_key;
static family_t *families, *families_last;
static uint32_t next_cell;
static shard_t *live, *spare; /* blocks of running threads; reusable ones */
static uint64_t retired[CELLS];
static _Atomic bool enabled = true;
static _Thread_local shard_t *mine;
/* Attached sources, and what detached ones left in the counters. */
static skald__msource_t *sources;
static double src_retired[SKALD__SRC_N];
static int src_kind[SKALD__SRC_N];

skald__metrics_t skald__m;

static void thread_exit(void *arg);

static void setup(void)
{
	if (uv_mutex_init(&lock) != 0 || pthread_key_create(&shard_key, thread_exit) != 0)
		abort();
}

static double bits_double(uint64_t b)
{
	double d;
	memcpy(&d, &b, sizeof d);
	return d;
}

static uint64_t double_bits(double d)
{
	uint64_t b;
	memcpy(&b, &d, sizeof b);
	return b;
}

/* Adds the cells of s into `retired`, metric by metric (a sum cell is a
 * double), and zeroes them. Under the lock. */
static void fold(shard_t *s)
{
	for (family_t *f = families; f != NULL; f = f->next) {
		for (struct skald_metric_s *m = f->series; m != NULL; m = m->next) {
			for (uint32_t i = 0; i < m->ncells; i++) {
				uint32_t c = m->cell + i;
				uint64_t v =
				        atomic_load_explicit(&s->cell[c], memory_order_relaxed);
				if (f->kind == K_HISTOGRAM && i == m->ncells - 1)
					retired[c] = double_bits(bits_double(retired[c]) +
					                         bits_double(v));
				else
					retired[c] += v;
				atomic_store_explicit(&s->cell[c], 0, memory_order_relaxed);
			}
		}
	}
}

static void thread_exit(void *arg)
{
	shard_t *s = arg;
	uv_mutex_lock(&lock);
	fold(s);
	shard_t **p = &live;
	while (*p != NULL && *p != s)
		p = &(*p)->next;
	if (*p == s)
		*p = s->next;
	s->next = spare;
	spare = s;
	uv_mutex_unlock(&lock);
	/* A later destructor of this thread may still count: it gets a new
	 * block, which the key folds again on its next pass. */
	mine = NULL;
}

/* The calling thread's block, made on its first update; NULL when memory is
 * short (the update is then dropped). */
static shard_t *shard(void)
{
	shard_t *s = mine;
	if (s != NULL)
		return s;
	uv_once(&once, setup);
	uv_mutex_lock(&lock);
	s = spare;
	if (s != NULL)
		spare = s->next;
	else
		s = calloc(1, sizeof *s);
	if (s != NULL) {
		s->next = live;
		live = s;
	}
	uv_mutex_unlock(&lock);
	/* If this fails the block is never folded, but it stays live: its
	 * counts are still rendered, they are only never reused. */
	if (s != NULL)
		(void)pthread_setspecific(shard_key, s);
	mine = s;
	return s;
}

static bool valid_name(const char *s)
{
	if (s == NULL || *s == '\0' || strlen(s) >= MAX_NAME)
		return false;
	for (const char *p = s; *p; p++) {
		char c = *p;
		bool alpha =
		        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
		if (!alpha && !(p > s && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

static const double default_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                        0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};

static bool same_bounds(const family_t *f, const double *b, size_t n)
{
	return f->nbounds == n && memcmp(f->bounds, b, n * sizeof *b) == 0;
}

static bool streq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Finds or makes the series (name, label=value) of kind; under the lock. */
static int series(int kind, const char *name, const char *help, const double *bounds,
                  size_t nbounds, const char *label, const char *value, skald_metric_t **out)
{
	family_t *f = families;
	while (f != NULL && strcmp(f->name, name) != 0)
		f = f->next;
	if (f != NULL) {
		if (f->kind != kind || strcmp(f->help, help) != 0 ||
		    (kind == K_HISTOGRAM && !same_bounds(f, bounds, nbounds)))
			return SKALD_EEXISTS;
		for (struct skald_metric_s *m = f->series; m != NULL; m = m->next) {
			if (streq(m->label, label) && streq(m->value, value)) {
				*out = m;
				return 0;
			}
		}
		/* Every series of a family carries the same label name. */
		if (f->series != NULL && !streq(f->series->label, label))
			return SKALD_EINVAL;
	}
	uint32_t ncells = kind == K_HISTOGRAM ? (uint32_t)nbounds + 2 : 1;
	if (next_cell + ncells > CELLS)
		return SKALD_ETOOMANY;
	bool new_family = f == NULL;
	if (new_family) {
		f = calloc(1, sizeof *f);
		if (f == NULL)
			return SKALD_ENOMEM;
		f->kind = kind;
		f->name = strdup(name);
		f->help = strdup(help);
		f->nbounds = nbounds;
		f->bounds = nbounds ? malloc(nbounds * sizeof *bounds) : NULL;
		if (f->name == NULL || f->help == NULL || (nbounds && f->bounds == NULL)) {
			free(f->name);
			free(f->help);
			free(f->bounds);
			free(f);
			return SKALD_ENOMEM;
		}
		if (nbounds)
			memcpy(f->bounds, bounds, nbounds * sizeof *bounds);
	}
	struct skald_metric_s *m = calloc(1, sizeof *m);
	if (m != NULL && label != NULL) {
		m->label = strdup(label);
		m->value = strdup(value);
	}
	if (m == NULL || (label != NULL && (m->label == NULL || m->value == NULL))) {
		if (m != NULL) {
			free(m->label);
			free(m->value);
		}
		free(m);
		if (new_family) {
			free(f->name);
			free(f->help);
			free(f->bounds);
			free(f);
		}
		return SKALD_ENOMEM;
	}
	m->fam = f;
	m->cell = next_cell;
	m->ncells = ncells;
	next_cell += ncells;
	if (f->last == NULL)
		f->series = m;
	else
		f->last->next = m;
	f->last = m;
	if (new_family) {
		if (families_last == NULL)
			families = f;
		else
			families_last->next = f;
		families_last = f;
	}
	*out = m;
	return 0;
}

static int reg(int kind, const char *name, const char *help, const double *bounds, size_t nbounds,
               const char *label, const char *value, skald_metric_t **out)
{
	if (out == NULL || help == NULL || !valid_name(name) || (label == NULL) != (value == NULL))
		return SKALD_EINVAL;
	if (label != NULL && (!valid_name(label) || strncmp(label, "__", 2) == 0 ||
	                      strcmp(label, "le") == 0 || strlen(value) >= MAX_LVALUE))
		return SKALD_EINVAL;
	uv_once(&once, setup);
	uv_mutex_lock(&lock);
	int rc = series(kind, name, help, bounds, nbounds, label, value, out);
	uv_mutex_unlock(&lock);
	return rc;
}

int skald_metric_counter(const char *name, const char *help, const char *label, const char *value,
                         skald_metric_t **out)
{
	return reg(K_COUNTER, name, help, NULL, 0, label, value, out);
}

int skald_metric_gauge(const char *name, const char *help, const char *label, const char *value,
                       skald_metric_t **out)
{
	return reg(K_GAUGE, name, help, NULL, 0, label, value, out);
}

int skald_metric_gauge_fn(const char *name, const char *help, const char *label, const char *value,
                          double (*fn)(void *arg), void *arg, skald_metric_t **out)
{
	if (fn == NULL)
		return SKALD_EINVAL;
	int rc = reg(K_GAUGE, name, help, NULL, 0, label, value, out);
	if (rc == 0) {
		uv_mutex_lock(&lock);
		(*out)->fn = fn;
		(*out)->fn_arg = arg;
		uv_mutex_unlock(&lock);
	}
	return rc;
}

int skald_metric_histogram(const char *name, const char *help, const double *bounds, size_t nbounds,
                           const char *label, const char *value, skald_metric_t **out)
{
	if (bounds == NULL && nbounds == 0) {
		bounds = default_bounds;
		nbounds = sizeof default_bounds / sizeof *default_bounds;
	}
	if (bounds == NULL || nbounds == 0 || nbounds > MAX_BOUNDS)
		return SKALD_EINVAL;
	for (size_t i = 0; i < nbounds; i++)
		if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
			return SKALD_EINVAL;
	return reg(K_HISTOGRAM, name, help, bounds, nbounds, label, value, out);
}

/* The calling thread's cell c, or NULL when updates are off. */
static _Atomic uint64_t *cell(skald_metric_t *m, int kind, uint32_t offset)
{
	if (m == NULL || m->fam->kind != kind ||
	    !atomic_load_explicit(&enabled, memory_order_relaxed))
		return NULL;
	shard_t *s = shard();
	return s != NULL ? &s->cell[m->cell + offset] : NULL;
}

void skald_metric_inc(skald_metric_t *m, uint64_t n)
{
	_Atomic uint64_t *c = cell(m, K_COUNTER, 0);
	if (c != NULL)
		atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
		                      memory_order_relaxed);
}

void skald_metric_add(skald_metric_t *m, int64_t delta)
{
	_Atomic uint64_t *c = cell(m, K_GAUGE, 0);
	if (c != NULL)
		atomic_store_explicit(
		        c, atomic_load_explicit(c, memory_order_relaxed) + (uint64_t)delta,
		        memory_order_relaxed);
}

void skald_metric_set(skald_metric_t *m, double v)
{
	if (m != NULL && m->fam->kind == K_GAUGE &&
	    atomic_load_explicit(&enabled, memory_order_relaxed))
		atomic_store_explicit(&m->set_bits, double_bits(v), memory_order_relaxed);
}

void skald_metric_observe(skald_metric_t *m, double v)
{
	_Atomic uint64_t *c = cell(m, K_HISTOGRAM, 0);
	if (c == NULL)
		return;
	const family_t *f = m->fam;
	size_t b = 0;
	while (b < f->nbounds && !(v <= f->bounds[b]))
		b++;
	atomic_store_explicit(&c[b], atomic_load_explicit(&c[b], memory_order_relaxed) + 1,
	                      memory_order_relaxed);
	_Atomic uint64_t *sum = &c[f->nbounds + 1];
	atomic_store_explicit(
	        sum, double_bits(bits_double(atomic_load_explicit(sum, memory_order_relaxed)) + v),
	        memory_order_relaxed);
}

void skald_metrics_enable(bool on)
{
	atomic_store(&enabled, on);
}

bool skald_metrics_enabled(void)
{
	return atomic_load(&enabled);
}

/* ------------------------------------------------------------------------ */
/* Rendering                                                                 */

typedef struct buf_s {
	char *p;
	size_t len, cap;
	bool oom;
} buf_t;

static void put(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(buf_t *b, const char *fmt, ...)
{
	if (b->oom)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap * 2 + (size_t)n;
		char *p = realloc(b->p, cap);
		if (p == NULL) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

/* Help text and label values, escaped as the text format wants: backslash
 * and newline always, the double quote inside label values. */
static void put_escaped(buf_t *b, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			put(b, "\\\\");
		else if (*s == '\n')
			put(b, "\\n");
		else if (quote && *s == '"')
			put(b, "\\\"");
		else
			put(b, "%c", *s);
	}
}

static void put_number(buf_t *b, double v)
{
	if (isnan(v))
		put(b, "NaN");
	else if (isinf(v))
		put(b, v > 0 ? "+Inf" : "-Inf");
	else {
		/* The shortest form that reads back as v: 0.00025, not
		 * 0.00025000000000000001. */
		char t[32];
		for (int prec = 15; prec <= 17; prec++) {
			snprintf(t, sizeof t, "%.*g", prec, v);
			if (strtod(t, NULL) == v)
				break;
		}
		put(b, "%s", t);
	}
}

/* The sum of cell c over every live block and the retired totals. */
static uint64_t total(uint32_t c)
{
	uint64_t v = retired[c];
	for (shard_t *s = live; s != NULL; s = s->next)
		v += atomic_load_explicit(&s->cell[c], memory_order_relaxed);
	return v;
}

static double total_double(uint32_t c)
{
	double v = bits_double(retired[c]);
	for (shard_t *s = live; s != NULL; s = s->next)
		v += bits_double(atomic_load_explicit(&s->cell[c], memory_order_relaxed));
	return v;
}

/* "{label="value"" without the closing brace, so that `le` can follow. */
static void put_labels_open(buf_t *b, const struct skald_metric_s *m)
{
	if (m->label == NULL)
		return;
	put(b, "{%s=\"", m->label);
	put_escaped(b, m->value, true);
	put(b, "\"");
}

static void render_series(buf_t *b, const family_t *f, const struct skald_metric_s *m,
                          const double *src)
{
	if (f->kind != K_HISTOGRAM) {
		put(b, "%s", f->name);
		put_labels_open(b, m);
		put(b, m->label ? "} " : " ");
		if (m->src != 0) {
			put_number(b, src[m->src]);
			put(b, "\n");
			return;
		}
		if (f->kind == K_COUNTER) {
			put(b, "%llu\n", (unsigned long long)total(m->cell));
			return;
		}
		double v = bits_double(atomic_load_explicit(&m->set_bits, memory_order_relaxed)) +
		           (double)(int64_t)total(m->cell);
		if (m->fn != NULL)
			v = m->fn(m->fn_arg);
		put_number(b, v);
		put(b, "\n");
		return;
	}
	uint64_t cum = 0;
	for (size_t i = 0; i <= f->nbounds; i++) {
		cum += total(m->cell + (uint32_t)i);
		put(b, "%s_bucket", f->name);
		if (m->label != NULL) {
			put_labels_open(b, m);
			put(b, ",le=\"");
		} else {
			put(b, "{le=\"");
		}
		if (i < f->nbounds)
			put_number(b, f->bounds[i]);
		else
			put(b, "+Inf");
		put(b, "\"} %llu\n", (unsigned long long)cum);
	}
	put(b, "%s_sum", f->name);
	put_labels_open(b, m);
	put(b, m->label ? "} " : " ");
	put_number(b, total_double(m->cell + (uint32_t)f->nbounds + 1));
	put(b, "\n%s_count", f->name);
	put_labels_open(b, m);
	put(b, m->label ? "} %llu\n" : " %llu\n", (unsigned long long)cum);
}

int skald_metrics_render(char **out, size_t *len)
{
	static const char *kinds[] = {"counter", "gauge", "histogram"};
	if (out == NULL || len == NULL)
		return SKALD_EINVAL;
	buf_t b = {malloc(4096), 0, 4096, false};
	if (b.p == NULL)
		return SKALD_ENOMEM;
	b.p[0] = '\0';
	double src[SKALD__SRC_N];
	uv_once(&once, setup);
	uv_mutex_lock(&lock);
	memcpy(src, src_retired, sizeof src);
	for (skald__msource_t *s = sources; s != NULL; s = s->next)
		s->read(s->arg, src);
	for (const family_t *f = families; f != NULL; f = f->next) {
		put(&b, "# HELP %s ", f->name);
		put_escaped(&b, f->help, false);
		put(&b, "\n# TYPE %s %s\n", f->name, kinds[f->kind]);
		for (const struct skald_metric_s *m = f->series; m != NULL; m = m->next)
			render_series(&b, f, m, src);
	}
	uv_mutex_unlock(&lock);
	if (b.oom) {
		free(b.p);
		return SKALD_ENOMEM;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}

int skald_metrics_scrape(void *arg, char **out, size_t *len)
{
	(void)arg;
	return skald_metrics_render(out, len);
}

/* ------------------------------------------------------------------------ */
/* Sources                                                                   */

void skald__metrics_source_add(skald__msource_t *s)
{
	uv_once(&once, setup);
	uv_mutex_lock(&lock);
	s->next = sources;
	sources = s;
	uv_mutex_unlock(&lock);
}

void skald__metrics_source_remove(skald__msource_t *s)
{
	double last[SKALD__SRC_N] = {0};
	uv_mutex_lock(&lock);
	skald__msource_t **p = &sources;
	while (*p != NULL && *p != s)
		p = &(*p)->next;
	if (*p == s) {
		*p = s->next;
		s->read(s->arg, last);
		for (int i = 1; i < SKALD__SRC_N; i++)
			if (src_kind[i] == K_COUNTER)
				src_retired[i] += last[i];
	}
	uv_mutex_unlock(&lock);
}

/* Registers a series whose value is the sources' slot src. */
static void sourced(int kind, const char *name, const char *help, int src)
{
	skald_metric_t *m;
	if (reg(kind, name, help, NULL, 0, NULL, NULL, &m) != 0)
		return; /* the series is then missing from the output */
	uv_mutex_lock(&lock);
	m->src = src;
	src_kind[src] = kind;
	uv_mutex_unlock(&lock);
}

/* ------------------------------------------------------------------------ */
/* Skald's own metrics                                                       */

static uv_once_t builtin_once = UV_ONCE_INIT;

static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};

static void builtin(void)
{
	skald__metrics_t *m = &skald__m;
	/* A failed registration leaves the member NULL: updates skip it. */
	sourced(K_COUNTER, "skald_messages_processed_total",
	        "Messages handed to actors' receive callbacks.", SKALD__SRC_MESSAGES);
	sourced(K_COUNTER, "skald_dead_letters_total",
	        "Messages to stopped or unknown actors, dropped.", SKALD__SRC_DEAD_LETTERS);
	sourced(K_GAUGE, "skald_actors_alive", "Actors spawned and not yet stopped.",
	        SKALD__SRC_ACTORS);
	(void)skald_metric_gauge("skald_mailbox_messages",
	                         "Messages waiting in mailboxes, summed over every actor "
	                         "(an estimate while actors run).",
	                         NULL, NULL, &m->mailbox);
	(void)skald_metric_histogram("skald_journal_write_seconds",
	                             "Time from sending one batch of writes to the journal store "
	                             "to its confirmation.",
	                             NULL, 0, NULL, NULL, &m->journal_write);
	(void)skald_metric_histogram("skald_journal_batch_writes",
	                             "Writes (persist calls) coalesced into one store append.",
	                             batch_bounds, sizeof batch_bounds / sizeof *batch_bounds, NULL,
	                             NULL, &m->journal_batch);
	(void)skald_metric_histogram("skald_journal_replay_seconds",
	                             "Time of one read of events during an entity's recovery.",
	                             NULL, 0, NULL, NULL, &m->journal_replay);
	(void)skald_metric_histogram("skald_entity_recovery_seconds",
	                             "Time from an entity's start to the end of its recovery.",
	                             NULL, 0, NULL, NULL, &m->recovery);
	(void)skald_metric_counter("skald_journal_write_failures_total",
	                           "Writes that the journal failed, rejected or found in conflict.",
	                           NULL, NULL, &m->write_failures);
}

void skald__metrics_init(void)
{
	uv_once(&builtin_once, builtin);
}

void skald__peer_metrics(uint64_t node, skald__peer_metrics_t *out)
{
	char peer[24];
	snprintf(peer, sizeof peer, "%016llx", (unsigned long long)node);
	memset(out, 0, sizeof *out);
	(void)skald_metric_counter("skald_remote_frames_sent_total", "Frames sent to a peer node.",
	                           "peer", peer, &out->frames_sent);
	(void)skald_metric_counter("skald_remote_frames_received_total",
	                           "Frames received from a peer node.", "peer", peer,
	                           &out->frames_received);
	(void)skald_metric_counter("skald_remote_bytes_sent_total",
	                           "Bytes sent to a peer node, frame headers included.", "peer",
	                           peer, &out->bytes_sent);
	(void)skald_metric_counter("skald_remote_bytes_received_total",
	                           "Bytes received from a peer node, frame headers included.",
	                           "peer", peer, &out->bytes_received);
}

void skald__peer_count(skald__peer_metrics_t *p, bool sent, uint64_t frames, uint64_t bytes)
{
	if (p == NULL)
		return;
	skald_metric_inc(sent ? p->frames_sent : p->frames_received, frames);
	skald_metric_inc(sent ? p->bytes_sent : p->bytes_received, bytes);
}
