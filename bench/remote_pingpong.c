/*
 * bench/remote_pingpong.c - round trips between two nodes over loopback TCP.
 *
 *   remote_pingpong -m server|client -H HOST -p PORT -r R -n N -w W [-s tcp|tls]
 *
 * -s tls runs the same over tls:// (TLS 1.3 keyed by the cluster secret);
 * both ends must be given the same scheme.
 *
 * The server publishes a pong actor; the client looks it up, then runs a
 * latency phase (R round trips, one in flight) and a throughput phase (N
 * round trips, W in flight), and prints exactly two lines:
 *   latency    window=1 n=R time=Ts X round-trips/s rtt_us mean=… p50=… …
 *   throughput window=W n=N time=Ts X round-trips/s rtt_us mean=… p50=… …
 * The server exits when the client tells it to quit.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include <skald/skald.h>

static uint32_t T_PING, T_QUIT;

/* A ping carries its id (8 bytes) in the payload pointer: no allocation. */
static int id_encode(const void *payload, void **out, size_t *len)
{
	uint64_t v = (uint64_t)(uintptr_t)payload;
	uint8_t *b = malloc(8);
	if (b == NULL)
		return SKALD_ENOMEM;
	for (int i = 7; i >= 0; i--, v >>= 8)
		b[i] = (uint8_t)v;
	*out = b;
	*len = 8;
	return 0;
}

static int id_decode(const void *data, size_t len, void **payload)
{
	if (len != 8)
		return SKALD_EDECODE;
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | ((const uint8_t *)data)[i];
	*payload = (void *)(uintptr_t)v;
	return 0;
}

static const skald_msgtype_t ping_type = {
        .name = "bench.ping", .encode = id_encode, .decode = id_decode};
static const skald_msgtype_t quit_type = {
        .name = "bench.quit", .encode = id_encode, .decode = id_decode};

/* --- server --------------------------------------------------------------- */

static int pong_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	if (msg->type == T_PING)
		return skald_tell(self, msg->sender, T_PING, msg->payload);
	if (msg->type == T_QUIT)
		skald_system_shutdown(skald_actor_system(self));
	return 0;
}

static const skald_behavior_t pong = {.receive = pong_receive};

/* --- client --------------------------------------------------------------- */

typedef struct {
	skald_ref_t pong;
	long n, window, sent, received;
	uint64_t *sent_at; /* ns, by id */
	uint64_t *rtt;     /* ns, in arrival order */
	uint64_t t0, t1;
	uv_mutex_t *lock;
	uv_cond_t *cond;
	atomic_int *done;
} client_t;

static client_t job;

static int send_next(skald_actor_t *self, client_t *c)
{
	long id = c->sent++;
	c->sent_at[id] = uv_hrtime();
	return skald_tell(self, c->pong, T_PING, (void *)(uintptr_t)id);
}

static int ping_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	client_t *c = &job;
	if (msg->type == T_PING) {
		long id = (long)(uintptr_t)msg->payload;
		c->rtt[c->received++] = uv_hrtime() - c->sent_at[id];
		if (c->sent < c->n)
			return send_next(self, c);
		if (c->received == c->n) {
			c->t1 = uv_hrtime();
			uv_mutex_lock(c->lock);
			atomic_store(c->done, 1);
			uv_cond_signal(c->cond);
			uv_mutex_unlock(c->lock);
		}
		return 0;
	}
	/* Any other message starts a phase: the first `window` pings. */
	c->t0 = uv_hrtime();
	for (long i = 0; i < c->window && c->sent < c->n; i++) {
		int rc = send_next(self, c);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static const skald_behavior_t pinger = {.receive = ping_receive};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void phase(skald_system_t *sys, skald_ref_t target, const char *label, long n, long w)
{
	uv_mutex_t lock;
	uv_cond_t cond;
	atomic_int done = 0;
	uv_mutex_init(&lock);
	uv_cond_init(&cond);
	job = (client_t){
	        .pong = target, .n = n, .window = w, .lock = &lock, .cond = &cond, .done = &done};
	job.sent_at = malloc((size_t)n * sizeof *job.sent_at);
	job.rtt = malloc((size_t)n * sizeof *job.rtt);
	skald_ref_t p;
	skald_spawn(sys, &pinger, NULL, NULL, &p);
	skald_system_tell(sys, p, T_QUIT, NULL); /* "start" */
	uv_mutex_lock(&lock);
	while (!atomic_load(&done))
		if (uv_cond_timedwait(&cond, &lock, 300ull * 1000000000ull) == UV_ETIMEDOUT) {
			fprintf(stderr, "remote_pingpong: %s phase timed out after %ld of %ld\n",
			        label, job.received, n);
			exit(1);
		}
	uv_mutex_unlock(&lock);
	skald_stop(sys, p);
	double secs = (double)(job.t1 - job.t0) / 1e9;
	qsort(job.rtt, (size_t)n, sizeof *job.rtt, cmp_u64);
	double sum = 0;
	for (long i = 0; i < n; i++)
		sum += (double)job.rtt[i];
	printf("%-10s window=%ld n=%ld time=%.3fs %.0f round-trips/s rtt_us mean=%.1f p50=%.1f "
	       "p90=%.1f p99=%.1f max=%.1f\n",
	       label, w, n, secs, (double)n / secs, sum / (double)n / 1e3,
	       (double)job.rtt[n / 2] / 1e3, (double)job.rtt[n * 9 / 10] / 1e3,
	       (double)job.rtt[n * 99 / 100] / 1e3, (double)job.rtt[n - 1] / 1e3);
	fflush(stdout);
	free(job.sent_at);
	free(job.rtt);
	uv_cond_destroy(&cond);
	uv_mutex_destroy(&lock);
}

static void usage(const char *argv0)
{
	fprintf(stderr,
	        "usage: %s -m server|client -H HOST -p PORT -r R -n N -w W [-t THREADS] "
	        "[-s tcp|tls]\n",
	        argv0);
	exit(1);
}

int main(int argc, char **argv)
{
	const char *mode = NULL, *host = "127.0.0.1", *scheme = "tcp";
	int port = 0;
	long r = 10000, n = 200000, w = 1000;
	unsigned threads = 0;
	int opt;
	while ((opt = getopt(argc, argv, "m:H:p:r:n:w:t:s:")) != -1) {
		switch (opt) {
		case 'm':
			mode = optarg;
			break;
		case 'H':
			host = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'r':
			r = atol(optarg);
			break;
		case 'n':
			n = atol(optarg);
			break;
		case 'w':
			w = atol(optarg);
			break;
		case 't':
			threads = (unsigned)atoi(optarg);
			break;
		case 's':
			scheme = optarg;
			break;
		default:
			usage(argv[0]);
		}
	}
	if (mode == NULL || (strcmp(mode, "server") != 0 && strcmp(mode, "client") != 0) || r < 1 ||
	    n < 1 || w < 1 || (strcmp(scheme, "tcp") != 0 && strcmp(scheme, "tls") != 0))
		usage(argv[0]);
	skald_type_register(&ping_type, &T_PING);
	skald_type_register(&quit_type, &T_QUIT);
	skald_system_t *sys;
	skald_config_t cfg = {.name = mode, .threads = threads};
	skald_remote_config_t rcfg = {.secret = "bench-secret", .cluster = "bench"};
	if (skald_system_new(&cfg, &sys) < 0 || skald_remote_start(sys, &rcfg) < 0)
		return 1;
	char addr[128];
	snprintf(addr, sizeof addr, "%s://%s:%d", scheme, host, port);
	if (strcmp(mode, "server") == 0) {
		int bound = 0;
		int rc = skald_listen(sys, addr, &bound);
		if (rc < 0) {
			fprintf(stderr, "remote_pingpong: listen %s: %s\n", addr,
			        skald_strerror(rc));
			return 1;
		}
		skald_ref_t server;
		skald_spawn(sys, &pong, NULL, NULL, &server);
		skald_publish(sys, "pong", server);
		fprintf(stderr, "remote_pingpong: listening on port %d\n", bound);
		skald_system_wait(sys);
		skald_system_stop(sys);
		return 0;
	}
	skald_ref_t p;
	int rc = skald_system_lookup(sys, addr, "pong", 10000, &p);
	if (rc < 0) {
		fprintf(stderr, "remote_pingpong: lookup at %s: %s\n", addr, skald_strerror(rc));
		return 1;
	}
	phase(sys, p, "latency", r, 1);
	phase(sys, p, "throughput", n, w);
	skald_system_tell(sys, p, T_QUIT, NULL);
	uv_sleep(100); /* let the quit reach the wire before the connection closes */
	skald_system_stop(sys);
	return 0;
}
