/*
 * tests/remote/test_tls.c - tls://: both ways of keying carry everything
 * tcp:// carries; wrong keys, untrusted, expired or misnamed certificates
 * and a peer of the other scheme are refused with the reason in the logs
 * of both nodes; a capture of the traffic shows none of it; a flipped bit
 * closes the connection instead of reaching an actor; a restarted node is
 * reached again; a cluster forms over tls:// and a refused join says why. Node processes on
 * loopback, certificates made at test time (certs.h), a man in the middle for the stream (proxy.h).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "harness.h"
#include "proxy.h"
#include "skald/cluster.h"

static void tls_fini(void)
{
	fixture_teardown();
	certs_free();
}

TestSuite(tls, .init = fixture_setup, .fini = tls_fini, .timeout = 60);

/* Long enough for several handshake attempts (the first retry comes after
 * 100 ms), short enough for the suite. */
#define REFUSED_MS 1500

/* Every kind of traffic a user has, from a to the node b: lookup, asks
 * (an integer, a string), a thousand tells in order, and a watch that sees
 * the actor stop. */
static void exercise(skald_system_t *a, node_t *b)
{
	skald_ref_t echo = lookup_on(a, b, "echo");
	uint64_t v = 0;
	cr_assert_eq(ask_u64(a, echo, t_int, 41, WAIT_MS, &v), 0);
	cr_assert_eq(v, 42);
	uint32_t rtype;
	void *reply;
	int rc = skald_system_ask(a, echo, t_str, str_dup("over tls"), WAIT_MS, &rtype, &reply);
	cr_assert_eq(rc, 0, "ask: %s", skald_err_name(rc));
	cr_assert_eq(rtype, t_str);
	cr_assert_str_eq(reply, "echo:over tls");
	free(reply);

	skald_ref_t seq = lookup_on(a, b, "seq");
	enum { N = 1000 };
	for (uint64_t i = 0; i < N; i++)
		cr_assert_eq(skald_system_tell(a, seq, t_seq, INT_PAYLOAD(i)), 0);
	uint64_t end = now_ms() + WAIT_MS;
	while (ask_cmd(a, seq, CMD_COUNT) < N)
		cr_assert_leq(now_ms(), end, "the tells did not all arrive");
	cr_assert_eq(ask_cmd(a, seq, CMD_FIRST_BAD), NO_GAP, "tells arrived out of order");

	static watch_ctx_t w;
	w.target = echo;
	spawn(a, &watcher_behavior, &w);
	AWAIT(atomic_load(&w.armed), WAIT_MS);
	cr_assert_eq(atomic_load(&w.watch_rc), 0);
	cr_assert_eq(ask_cmd(a, echo, CMD_STOP), 0);
	AWAIT(atomic_load(&w.downs) == 1, WAIT_MS);
	cr_assert_eq(atomic_load(&w.reason), 0, "reason %s",
	             skald_err_name(atomic_load(&w.reason)));
}

Test(tls, keyed_by_the_cluster_secret_tls_carries_tell_ask_and_watch)
{
	node_t *b = node_start(&(node_opts_t){.name = "b", .scheme = "tls"});
	cr_assert_eq(strncmp(b->addr, "tls://", 6), 0);
	skald_system_t *a = sys_start(NULL);
	exercise(a, b);
	sys_stop(a);
	node_exit_clean(b);
}

Test(tls, keyed_by_certificates_alone_tls_carries_tell_ask_and_watch)
{
	cert_files_t cb, ca;
	certs_issue("b", "b", -60, 3600, false, &cb);
	certs_issue("tester", "tester", -60, 3600, false, &ca);
	/* No secret on either side: the certificates are all the keys. */
	node_t *b = node_start(
	        &(node_opts_t){.name = "b", .scheme = "tls", .secret = "", .certs = &cb});
	skald_system_t *a = sys_start(&(sys_opts_t){.secret = "", .certs = &ca});
	exercise(a, b);
	sys_stop(a);
	node_exit_clean(b);
}

/* --- refusals, each with its reason in the logs of both nodes ------------ */

/*
 * A system made with `wrong` tries b at addr and must fail with SKALD_ETLS:
 * no node event, no lookup, an ask fails at once; its log (into a file of its own) must
 * come to hold why_here and b's log why_there.
 */
static void expect_refused(node_t *b, const char *addr, const char *b_log, const sys_opts_t *wrong,
                           const char *why_here, const char *why_there)
{
	char log[SCRATCH_PATH_MAX];
	scratch_path("tester.log", log);
	log_to(log);
	skald_system_t *x = sys_start(wrong);
	static mon_ctx_t m;
	spawn(x, &monitor_behavior, &m);
	AWAIT(atomic_load(&m.armed), WAIT_MS);
	/* The wait ends with the refusal's reason, not at its timeout. */
	int rc = skald_node_wait(x, addr, REFUSED_MS, NULL);
	cr_assert_eq(rc, SKALD_ETLS, "node_wait: %s", skald_err_name(rc));
	skald_ref_t r = SKALD_REF_NULL;
	cr_assert_lt(skald_system_lookup(x, addr, "echo", REFUSED_MS, &r), 0);
	uint64_t v;
	rc = ask_u64(x, node_ref(b, "echo"), t_int, 1, WAIT_MS, &v);
	cr_assert_eq(rc, SKALD_ENODEDOWN, "ask: %s", skald_err_name(rc));
	cr_assert_eq(atomic_load(&m.n), 0, "a refused node was reported up");
	expect_log(b_log, why_there);
	expect_log(log, why_here);
	sys_stop(x);
}

/* b serves a node made with `right`: the refusal was about the keys. */
static void expect_served(node_t *b, const sys_opts_t *right)
{
	skald_system_t *a = sys_start(right);
	uint64_t v;
	cr_assert_eq(ask_u64(a, lookup_on(a, b, "echo"), t_int, 1, WAIT_MS, &v), 0);
	cr_assert_eq(v, 2);
	cr_assert_eq(ask_cmd(a, node_ref(b, "echo"), CMD_COUNT), 1,
	             "a refused node's message was delivered");
	sys_stop(a);
}

Test(tls, a_node_with_another_secret_is_refused_on_both_sides)
{
	char b_log[SCRATCH_PATH_MAX];
	scratch_path("b.log", b_log);
	node_t *b = node_start(&(node_opts_t){.name = "b", .scheme = "tls", .log = b_log});
	expect_refused(b, b->addr, b_log, &(sys_opts_t){.secret = "not-the-" SECRET},
	               "the pre-shared keys differ", "the pre-shared keys differ");
	expect_served(b, NULL);
	node_exit_clean(b);
}

Test(tls, a_certificate_of_another_ca_is_refused_on_both_sides)
{
	char b_log[SCRATCH_PATH_MAX];
	scratch_path("b.log", b_log);
	cert_files_t cb, good, stranger;
	certs_issue("b", "b", -60, 3600, false, &cb);
	certs_issue("tester", "tester", -60, 3600, false, &good);
	/* Trusts the cluster's CA, but shows a certificate of another. */
	certs_issue("stranger", "tester", -60, 3600, true, &stranger);
	node_t *b = node_start(
	        &(node_opts_t){.name = "b", .scheme = "tls", .certs = &cb, .log = b_log});
	expect_refused(b, b->addr, b_log, &(sys_opts_t){.certs = &stranger}, "alert unknown ca",
	               "the peer's certificate is refused: unable to get local issuer certificate");
	expect_served(b, &(sys_opts_t){.certs = &good});
	node_exit_clean(b);
}

Test(tls, a_certificate_that_expired_while_its_node_ran_is_refused_on_both_sides)
{
	char b_log[SCRATCH_PATH_MAX];
	scratch_path("b.log", b_log);
	cert_files_t cb, ca;
	/* Valid when b starts (which checks it), expired a few seconds later:
	 * a node that outlived its certificate. */
	enum { VALID_S = 4 };
	uint64_t expiry = now_ms() + VALID_S * 1000u;
	certs_issue("b", "b", -60, VALID_S, false, &cb);
	certs_issue("tester", "tester", -60, 3600, false, &ca);
	node_t *b = node_start(
	        &(node_opts_t){.name = "b", .scheme = "tls", .certs = &cb, .log = b_log});
	/* Certificate times have a resolution of one second. */
	while (now_ms() < expiry + 1500)
		sleep_ms(100);
	expect_refused(b, b->addr, b_log, &(sys_opts_t){.certs = &ca},
	               "the peer's certificate is refused: certificate has expired",
	               "alert certificate expired");
	node_exit_clean(b);
}

Test(tls, a_certificate_that_names_another_node_is_refused_on_both_sides)
{
	char b_log[SCRATCH_PATH_MAX];
	scratch_path("b.log", b_log);
	cert_files_t cb, ca;
	/* Trusted, valid, and issued to someone else. */
	certs_issue("b", "c", -60, 3600, false, &cb);
	certs_issue("tester", "tester", -60, 3600, false, &ca);
	node_t *b = node_start(
	        &(node_opts_t){.name = "b", .scheme = "tls", .certs = &cb, .log = b_log});
	expect_refused(b, b->addr, b_log, &(sys_opts_t){.certs = &ca},
	               "the certificate of node \"b\" does not name it",
	               "refused this node: TLS: the certificate of node \"b\" does not name it");
	node_exit_clean(b);
}

Test(tls, a_node_keyed_by_certificates_at_one_keyed_by_the_secret_is_refused_on_both_sides)
{
	char b_log[SCRATCH_PATH_MAX];
	scratch_path("b.log", b_log);
	cert_files_t ca;
	certs_issue("tester", "tester", -60, 3600, false, &ca);
	node_t *b = node_start(&(node_opts_t){.name = "b", .scheme = "tls", .log = b_log});
	expect_refused(b, b->addr, b_log, &(sys_opts_t){.certs = &ca},
	               "is it keyed by the cluster secret, with no certificate to show?",
	               "the peer offered no pre-shared key: it is keyed by certificates, and this "
	               "node by the cluster secret");
	node_exit_clean(b);
}

Test(tls, a_node_keyed_by_the_secret_at_one_keyed_by_certificates_is_refused_on_both_sides)
{
	char b_log[SCRATCH_PATH_MAX];
	scratch_path("b.log", b_log);
	cert_files_t cb;
	certs_issue("b", "b", -60, 3600, false, &cb);
	node_t *b = node_start(
	        &(node_opts_t){.name = "b", .scheme = "tls", .certs = &cb, .log = b_log});
	expect_refused(b, b->addr, b_log, NULL,
	               "the peer shows a certificate: it is keyed by certificates, and this node "
	               "by the cluster secret",
	               "the peer offered a pre-shared key: it is keyed by the cluster secret, and "
	               "this node by certificates");
	node_exit_clean(b);
}

Test(tls, a_tcp_node_at_a_tls_port_is_refused_on_both_sides)
{
	char b_log[SCRATCH_PATH_MAX], tcp_addr[64];
	scratch_path("b.log", b_log);
	node_t *b = node_start(&(node_opts_t){.name = "b", .scheme = "tls", .log = b_log});
	snprintf(tcp_addr, sizeof tcp_addr, "tcp://127.0.0.1:%d", b->port);
	expect_refused(b, tcp_addr, b_log, NULL,
	               "refused this node: this port speaks TLS: reach it with tls://",
	               "the peer does not speak TLS");
	expect_served(b, NULL);
	node_exit_clean(b);
}

Test(tls, a_tls_node_at_a_tcp_port_is_refused_on_both_sides)
{
	char b_log[SCRATCH_PATH_MAX], tls_addr[64];
	scratch_path("b.log", b_log);
	node_t *b = node_start(&(node_opts_t){.name = "b", .log = b_log});
	snprintf(tls_addr, sizeof tls_addr, "tls://127.0.0.1:%d", b->port);
	expect_refused(b, tls_addr, b_log, NULL, "the peer does not speak TLS",
	               "the peer speaks TLS at this tcp:// address");
	expect_served(b, NULL);
	node_exit_clean(b);
}

/* --- what is on the wire ------------------------------------------------- */

/* The names, type names and payloads a sniffer on the path sees of one
 * lookup and one ask from a to b through a proxy, over scheme. */
static const char *const MARKERS[] = {"node-alpha-7316", "cluster-zeta-4491", "rt.str",
                                      "PLAINTEXT-MARKER-93", "echo:PLAINTEXT-MARKER-93"};
#define NMARKERS (sizeof MARKERS / sizeof MARKERS[0])

static proxy_t *talk_through_proxy(const char *scheme)
{
	node_t *b = node_start(&(node_opts_t){
	        .name = "node-alpha-7316", .scheme = scheme, .cluster = "cluster-zeta-4491"});
	proxy_t *px = proxy_start(b->port);
	char via[64];
	snprintf(via, sizeof via, "%s://127.0.0.1:%d", scheme, proxy_port(px));
	skald_system_t *a = sys_start(&(sys_opts_t){.cluster = "cluster-zeta-4491"});
	skald_ref_t echo;
	int rc = skald_system_lookup(a, via, "echo", WAIT_MS, &echo);
	cr_assert_eq(rc, 0, "lookup through the proxy: %s", skald_err_name(rc));
	uint32_t rtype;
	void *reply;
	rc = skald_system_ask(a, echo, t_str, str_dup("PLAINTEXT-MARKER-93"), WAIT_MS, &rtype,
	                      &reply);
	cr_assert_eq(rc, 0, "ask: %s", skald_err_name(rc));
	cr_assert_str_eq(reply, "echo:PLAINTEXT-MARKER-93");
	free(reply);
	sys_stop(a);
	node_exit_clean(b);
	return px;
}

Test(tls, a_capture_of_tls_traffic_shows_nothing_that_tcp_shows)
{
	/* The control: over tcp:// a sniffer reads every one of them. */
	proxy_t *px = talk_through_proxy("tcp");
	for (size_t i = 0; i < NMARKERS; i++)
		cr_assert(proxy_saw(px, MARKERS[i], strlen(MARKERS[i])),
		          "the tcp:// capture lacks \"%s\": the markers prove nothing", MARKERS[i]);
	proxy_stop(px);

	px = talk_through_proxy("tls");
	cr_assert_gt(proxy_bytes(px), 1000, "too little traffic went through the proxy");
	for (size_t i = 0; i < NMARKERS; i++)
		cr_assert(!proxy_saw(px, MARKERS[i], strlen(MARKERS[i])),
		          "the tls:// capture shows \"%s\" in clear", MARKERS[i]);
	proxy_stop(px);
}

/*
 * A flip of the last bit of the next chunk from b through the proxy, while
 * a asks echo for "after-the-flip": what a gets. The heartbeats are slow, so
 * that the chunk is the reply's and nothing else.
 */
static int ask_across_a_flip(const char *scheme, const char *log, char **reply_out)
{
	node_t *b = node_start(&(node_opts_t){
	        .name = "b", .scheme = scheme, .heartbeat_ms = 10000, .timeout_ms = 30000});
	proxy_t *px = proxy_start(b->port);
	char via[64];
	snprintf(via, sizeof via, "%s://127.0.0.1:%d", scheme, proxy_port(px));
	log_to(log);
	skald_system_t *a = sys_start(&(sys_opts_t){.heartbeat_ms = 10000, .timeout_ms = 30000});
	static mon_ctx_t m;
	spawn(a, &monitor_behavior, &m);
	AWAIT(atomic_load(&m.armed), WAIT_MS);
	skald_ref_t echo;
	cr_assert_eq(skald_system_lookup(a, via, "echo", WAIT_MS, &echo), 0);
	uint32_t rtype;
	void *reply;
	cr_assert_eq(skald_system_ask(a, echo, t_str, str_dup("before"), WAIT_MS, &rtype, &reply),
	             0);
	cr_assert_str_eq(reply, "echo:before");
	free(reply);

	proxy_flip_next(px);
	*reply_out = NULL;
	int rc = skald_system_ask(a, echo, t_str, str_dup("after-the-flip"), 2000, &rtype, &reply);
	if (rc == 0)
		*reply_out = reply;
	AWAIT(proxy_flipped(px), WAIT_MS);

	if (strcmp(scheme, "tls") == 0) {
		/* The connection is closed, and then made again through the
		 * proxy, which flips nothing more: the node is back. */
		AWAIT(mon_find(&m, b->id, 0) >= 0, WAIT_MS);
		uint64_t end = now_ms() + WAIT_MS;
		for (;;) {
			int r = skald_system_ask(a, echo, t_str, str_dup("again"), 1000, &rtype,
			                         &reply);
			if (r == 0)
				break;
			cr_assert_leq(now_ms(), end, "no reconnection after the flip: %s",
			              skald_err_name(r));
		}
		cr_assert_str_eq(reply, "echo:again");
		free(reply);
	}
	sys_stop(a);
	proxy_stop(px);
	node_exit_clean(b);
	return rc;
}

Test(tls, over_tcp_a_flipped_bit_reaches_the_actor_as_another_message)
{
	/* The control of the next test: the flip lands in the reply. */
	char log[SCRATCH_PATH_MAX], *reply;
	scratch_path("tester.log", log);
	int rc = ask_across_a_flip("tcp", log, &reply);
	cr_assert_eq(rc, 0, "ask: %s", skald_err_name(rc));
	cr_assert_str_eq(reply, "echo:after-the-fliq");
	free(reply);
}

Test(tls, a_flipped_bit_after_the_handshake_closes_the_connection_and_delivers_nothing)
{
	char log[SCRATCH_PATH_MAX], *reply;
	scratch_path("tester.log", log);
	int rc = ask_across_a_flip("tls", log, &reply);
	cr_assert(rc == SKALD_ETIMEDOUT || rc == SKALD_ENODEDOWN,
	          "the ask across the flip gave %s%s%s", skald_err_name(rc),
	          reply ? ", reply " : "", reply ? reply : "");
	expect_log(log, "TLS connection failed: decryption failed or bad record mac");
}

/* --- reconnection -------------------------------------------------------- */

Test(tls, a_tls_node_restarted_on_its_port_is_reached_again)
{
	enum { HB_MS = 500, HB_TIMEOUT_MS = 2000 };
	node_t *b1 = node_start(&(node_opts_t){
	        .name = "b", .scheme = "tls", .heartbeat_ms = HB_MS, .timeout_ms = HB_TIMEOUT_MS});
	skald_system_t *a =
	        sys_start(&(sys_opts_t){.heartbeat_ms = HB_MS, .timeout_ms = HB_TIMEOUT_MS});
	static mon_ctx_t m;
	spawn(a, &monitor_behavior, &m);
	AWAIT(atomic_load(&m.armed), WAIT_MS);
	cr_assert_eq(skald_connect(a, b1->addr), 0);
	uint64_t v;
	cr_assert_eq(ask_u64(a, lookup_on(a, b1, "echo"), t_int, 1, WAIT_MS, &v), 0);

	node_kill(b1, SIGKILL);
	AWAIT(mon_find(&m, b1->id, 0) >= 0, WAIT_MS);
	node_t *b2 = node_start(&(node_opts_t){.name = "b",
	                                       .scheme = "tls",
	                                       .port = b1->port,
	                                       .heartbeat_ms = HB_MS,
	                                       .timeout_ms = HB_TIMEOUT_MS});
	cr_assert_neq(b2->id, b1->id);
	/* skald_connect's retries reach the new node by themselves. */
	AWAIT(mon_find(&m, b2->id, 1) >= 0, WAIT_MS);
	cr_assert_eq(ask_u64(a, lookup_on(a, b2, "echo"), t_int, 7, WAIT_MS, &v), 0);
	cr_assert_eq(v, 8);
	sys_stop(a);
	node_exit_clean(b2);
}

/* --- a cluster over tls:// ---------------------------------------------- */

/* The number of up members in sys's view. */
static size_t up_members(skald_system_t *sys)
{
	size_t n = 0;
	cr_assert_eq(skald_cluster_members(sys, NULL, 0, &n), 0);
	return n;
}

Test(tls, a_cluster_forms_over_tls_and_sees_a_killed_member_go)
{
	node_t *b = node_start(&(node_opts_t){.name = "b", .scheme = "tls", .member = true});
	node_t *c = node_start(
	        &(node_opts_t){.name = "c", .scheme = "tls", .member = true, .seeds = b->addr});
	skald_system_t *a = sys_start(NULL);
	int port = 0;
	cr_assert_eq(skald_listen(a, "tls://127.0.0.1:0", &port), 0);
	/* A DNS seed is reached with this node's own scheme. */
	char seed[64], why[256] = "";
	snprintf(seed, sizeof seed, "dns://localhost:%d", b->port);
	const char *seeds[] = {seed};
	cr_assert_eq(skald_cluster_start(a, &(skald_cluster_config_t){.seeds = seeds, .nseeds = 1}),
	             0);
	int rc = skald_cluster_wait(a, WAIT_MS, why, sizeof why);
	cr_assert_eq(rc, 0, "join: %s: %s", skald_err_name(rc), why);
	skald_member_t self;
	cr_assert_eq(skald_cluster_self(a, &self), 0);
	cr_assert_eq(strncmp(self.addr, "tls://", 6), 0, "advertised %s", self.addr);
	AWAIT(up_members(a) == 3, WAIT_MS);

	node_kill(c, SIGKILL);
	AWAIT(up_members(a) == 2, WAIT_MS);
	sys_stop(a);
	node_exit_clean(b);
}

Test(tls, a_join_refused_by_tls_says_why)
{
	node_t *b = node_start(&(node_opts_t){.name = "b", .scheme = "tls", .member = true});
	skald_system_t *a = sys_start(&(sys_opts_t){.secret = "not-the-" SECRET});
	cr_assert_eq(skald_listen(a, "tls://127.0.0.1:0", NULL), 0);
	const char *seeds[] = {b->addr};
	cr_assert_eq(skald_cluster_start(a, &(skald_cluster_config_t){.seeds = seeds, .nseeds = 1}),
	             0);
	char why[256] = "";
	int rc = skald_cluster_wait(a, WAIT_MS, why, sizeof why);
	cr_assert_eq(rc, SKALD_ETLS, "join: %s: %s", skald_err_name(rc), why);
	cr_assert(strstr(why, "the pre-shared keys differ") != NULL, "why: %s", why);
	sys_stop(a);
	node_exit_clean(b);
}

/* --- configuration errors, at start-up ----------------------------------- */

/* skald_remote_start with cfg, the log into a file of the test; the
 * result. */
static int start_with(const skald_remote_config_t *cfg, char log[SCRATCH_PATH_MAX])
{
	scratch_path("start.log", log);
	log_to(log);
	skald_system_t *s;
	cr_assert_eq(skald_system_new(&(skald_config_t){.threads = 1, .name = "tester"}, &s), 0);
	int rc = skald_remote_start(s, cfg);
	skald_system_stop(s);
	return rc;
}

/* skald_remote_start with the three files must fail with `want` and log
 * `says`. */
static void expect_bad_files(const char *ca, const char *cert, const char *key, int want,
                             const char *says)
{
	char log[SCRATCH_PATH_MAX];
	int rc = start_with(&(skald_remote_config_t){.tls_ca_file = ca,
	                                             .tls_cert_file = cert,
	                                             .tls_key_file = key},
	                    log);
	cr_assert_eq(rc, want, "%s instead of %s", skald_err_name(rc), skald_err_name(want));
	cr_assert(file_has(log, says), "the log does not say: %s", says);
}

Test(tls, a_missing_key_file_is_an_error_at_start_up)
{
	cert_files_t f;
	certs_issue("n", "tester", -60, 3600, false, &f);
	char missing[SCRATCH_PATH_MAX], says[512];
	scratch_path("no-such.key", missing);
	snprintf(says, sizeof says, "key file (tls_key_file) %s cannot be read: No such file",
	         missing);
	expect_bad_files(f.ca, f.cert, missing, UV_ENOENT, says);
}

Test(tls, a_key_file_without_a_key_is_an_error_at_start_up)
{
	cert_files_t f;
	certs_issue("n", "tester", -60, 3600, false, &f);
	char says[512];
	/* The certificate where the key should be. */
	snprintf(says, sizeof says, "key file %s holds no PEM private key", f.cert);
	expect_bad_files(f.ca, f.cert, f.cert, SKALD_ETLS, says);
}

Test(tls, a_certificate_that_does_not_match_its_key_is_an_error_at_start_up)
{
	cert_files_t f, g;
	certs_issue("n", "tester", -60, 3600, false, &f);
	certs_issue("m", "tester", -60, 3600, false, &g);
	char says[512];
	snprintf(says, sizeof says, "the certificate in %s does not match the private key in %s",
	         f.cert, g.key);
	expect_bad_files(f.ca, f.cert, g.key, SKALD_ETLS, says);
}

Test(tls, an_expired_certificate_is_an_error_at_start_up)
{
	cert_files_t f;
	certs_issue("n", "tester", -7200, -3600, false, &f);
	char says[512];
	snprintf(says, sizeof says, "the certificate in %s expired on", f.cert);
	expect_bad_files(f.ca, f.cert, f.key, SKALD_ETLS, says);
}

Test(tls, a_certificate_not_yet_valid_is_an_error_at_start_up)
{
	cert_files_t f;
	certs_issue("n", "tester", 3600, 7200, false, &f);
	char says[512];
	snprintf(says, sizeof says, "the certificate in %s is not valid before", f.cert);
	expect_bad_files(f.ca, f.cert, f.key, SKALD_ETLS, says);
}

Test(tls, no_key_material_at_all_is_an_error_at_start_up)
{
	char log[SCRATCH_PATH_MAX];
	int rc = start_with(&(skald_remote_config_t){.cluster = "c"}, log);
	cr_assert_eq(rc, SKALD_EINVAL, "%s", skald_err_name(rc));
	cr_assert(file_has(log, "no key material: set a cluster secret"));
}

Test(tls, some_of_the_certificate_files_without_the_others_is_an_error_at_start_up)
{
	cert_files_t f;
	certs_issue("n", "tester", -60, 3600, false, &f);
	char log[SCRATCH_PATH_MAX];
	int rc = start_with(&(skald_remote_config_t){.secret = SECRET,
	                                             .tls_ca_file = f.ca,
	                                             .tls_cert_file = f.cert},
	                    log);
	cr_assert_eq(rc, SKALD_EINVAL, "%s", skald_err_name(rc));
	cr_assert(file_has(log, "go together; missing: tls_key_file"));
}

Test(tls, a_node_with_certificates_and_no_secret_speaks_tls_only)
{
	cert_files_t f;
	certs_issue("n", "tester", -60, 3600, false, &f);
	char log[SCRATCH_PATH_MAX];
	scratch_path("tester.log", log);
	log_to(log);
	skald_system_t *a = sys_start(&(sys_opts_t){.secret = "", .certs = &f});
	cr_assert_eq(skald_listen(a, "tcp://127.0.0.1:0", NULL), SKALD_EINVAL);
	cr_assert_eq(skald_connect(a, "tcp://127.0.0.1:1"), SKALD_EINVAL);
	cr_assert(file_has(log, "this node has no cluster secret, which tcp:// needs"));
	int port = 0;
	cr_assert_eq(skald_listen(a, "tls://127.0.0.1:0", &port), 0);
	cr_assert_gt(port, 0);
	sys_stop(a);
}
