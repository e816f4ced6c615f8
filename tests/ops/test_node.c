/*
 * tests/ops/test_node.c - a running node's /metrics: two nodes of one
 * cluster in this process, messages across them, an entity that writes
 * and recovers, a dead letter; then GET /metrics through libskald-http,
 * checked by promtool and read back.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scrape.h"
#include "skald/cluster.h"
#include "skald/entity.h"
#include "skald/http.h"
#include "skald/metrics.h"
#include "skald/remote.h"
#include "tests/http/client.h"

#define SECRET "ops-tests-secret"
#define NOTES  10

/* A point that crosses as its bytes, and any JSON value: both with a
 * chosen codec, no encode or decode written. */
typedef struct point_s {
	int32_t x, y;
	char label[8];
} point_t;

static const skald_msgtype_t point_def = {
        .name = "ops.point", .codec = &skald_codec_fixed, .size = sizeof(point_t)};
static const skald_msgtype_t json_def = {.name = "ops.json", .codec = &skald_codec_json};
static uint32_t t_point, t_json;

/* Answers an ask with its own payload. */
static int echo_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	return msg->ask_id ? skald_reply(self, msg, msg->type, skald_msg_take(msg)) : 0;
}

static const skald_behavior_t echo = {.receive = echo_receive};

/* An entity that writes one "ops.noted" event per message. */
static int note_command(skald_actor_t *self, void *state, skald_msg_t *cmd)
{
	return skald_persist(self, "ops.noted", 1, json_pack("{s:i}", "n", 1), NULL, NULL);
}

static int note_apply(void *state, const skald_event_t *ev)
{
	++*(int *)state;
	return 0;
}

static const skald_entity_type_t note_type = {
        .name = "note", .state_size = sizeof(int), .command = note_command, .apply = note_apply};

static skald_system_t *node(const char *journal, char *addr, size_t addr_len)
{
	skald_system_t *sys;
	skald_config_t cfg = {.threads = 2, .name = "ops", .journal = journal};
	cr_assert_eq(skald_system_new(&cfg, &sys), 0);
	skald_remote_config_t rc = {.secret = SECRET, .cluster = "ops"};
	cr_assert_eq(skald_remote_start(sys, &rc), 0);
	int port;
	cr_assert_eq(skald_listen(sys, "tcp://127.0.0.1:0", &port), 0);
	snprintf(addr, addr_len, "tcp://127.0.0.1:%d", port);
	return sys;
}

Test(node, metrics_endpoint_passes_promtool, .timeout = 120)
{
	char journal[64], a_addr[64], b_addr[64];
	snprintf(journal, sizeof journal, "memory://ops-%d", (int)getpid());
	cr_assert_eq(skald_type_register(&point_def, &t_point), 0);
	cr_assert_eq(skald_type_register(&json_def, &t_json), 0);
	skald_system_t *a = node(journal, a_addr, sizeof a_addr);
	skald_system_t *b = node(journal, b_addr, sizeof b_addr);

	/* A cluster of two: a forms it, b joins through a. */
	const char *seeds[] = {a_addr};
	skald_cluster_config_t ccfg = {.seeds = seeds, .nseeds = 1};
	cr_assert_eq(skald_cluster_start(a, &ccfg), 0);
	cr_assert_eq(skald_cluster_start(b, &ccfg), 0);
	char why[256];
	cr_assert_eq(skald_cluster_wait(a, WAIT_MS, why, sizeof why), 0, "%s", why);
	cr_assert_eq(skald_cluster_wait(b, WAIT_MS, why, sizeof why), 0, "%s", why);
	AWAIT(metric_now("skald_cluster_members{status=\"up\"}") == 2, WAIT_MS);

	/* Asks from a to an actor of b, there and back through the codecs. */
	skald_ref_t e;
	cr_assert_eq(skald_spawn(b, &echo, NULL, NULL, &e), 0);
	for (int i = 1; i <= 4; i++) {
		point_t *pt = calloc(1, sizeof *pt);
		*pt = (point_t){.x = i, .y = -i, .label = "pt"};
		uint32_t type;
		void *reply;
		cr_assert_eq(skald_system_ask(a, e, t_point, pt, WAIT_MS, &type, &reply), 0);
		point_t *back = reply;
		cr_assert_eq(type, t_point);
		cr_assert(back->x == i && back->y == -i);
		cr_assert_str_eq(back->label, "pt");
		free(back);
	}
	json_t *doc = json_pack("{s:s, s:[i,b]}", "room", "lobby", "v", 7, 1);
	uint32_t type;
	void *reply;
	cr_assert_eq(skald_system_ask(a, e, t_json, json_incref(doc), WAIT_MS, &type, &reply), 0);
	cr_assert(json_equal(reply, doc));
	json_decref(reply);
	json_decref(doc);

	/* An entity writes NOTES events, stops, and recovers them. */
	skald_ref_t n;
	cr_assert_eq(skald_entity_spawn(a, &note_type, "1", NULL, &n), 0);
	for (int i = 0; i < NOTES; i++)
		cr_assert_eq(skald_system_tell(a, n, t_json, json_null()), 0);
	AWAIT(metric_now("skald_journal_batch_writes_sum") >= NOTES, WAIT_MS);
	cr_assert_eq(skald_stop(a, n), 0);
	cr_assert_eq(skald_entity_spawn(a, &note_type, "1", NULL, &n), 0);
	AWAIT(metric_now("skald_entity_recovery_seconds_count") >= 2, WAIT_MS);

	/* A message to the stopped echo is a dead letter. */
	cr_assert_eq(skald_stop(b, e), 0);
	cr_assert_eq(skald_system_tell(b, e, t_json, json_null()), 0);
	AWAIT(metric_now("skald_dead_letters_total") >= 1, WAIT_MS);

	/* The endpoint, on a server of its own thread. */
	skald_http_config_t hcfg;
	skald_http_config_init(&hcfg);
	hcfg.port = 0;
	skald_http_server_t *srv;
	cr_assert_eq(skald_http_server_new(&srv, &hcfg), 0);
	cr_assert_eq(skald_http_route_metrics(srv, "/metrics", skald_metrics_scrape, NULL), 0);
	cr_assert_eq(skald_http_start_thread(srv), 0);
	resp_t r = {0};
	cr_assert(cl_request(skald_http_port(srv), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r));
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(resp_header(&r, "content-type"), SKALD_METRICS_CONTENT_TYPE);

	char out[8192];
	cr_assert(promtool_accepts(r.body, out, sizeof out), "promtool: %s\n%s", out, r.body);
	const char *text = r.body;
	cr_assert_geq(sample(text, "skald_messages_processed_total"), 5 + NOTES);
	cr_assert_geq(sample(text, "skald_dead_letters_total"), 1);
	cr_assert_geq(sample(text, "skald_actors_alive"), 1);
	cr_assert_eq(sample(text, "skald_journal_batch_writes_sum"), NOTES);
	cr_assert_geq(sample(text, "skald_journal_write_seconds_count"), 1);
	cr_assert_geq(sample(text, "skald_journal_replay_seconds_count"), 1);
	cr_assert_eq(sample(text, "skald_entity_recovery_seconds_count"), 2);
	cr_assert_eq(sample(text, "skald_journal_write_failures_total"), 0);
	cr_assert_eq(sample(text, "skald_cluster_members{status=\"up\"}"), 2);
	char series[128];
	snprintf(series, sizeof series, "skald_remote_frames_sent_total{peer=\"%016llx\"}",
	         (unsigned long long)skald_system_node(b));
	cr_assert_geq(sample(text, series), 5, "%s in\n%s", series, text);
	snprintf(series, sizeof series, "skald_remote_bytes_received_total{peer=\"%016llx\"}",
	         (unsigned long long)skald_system_node(a));
	cr_assert_geq(sample(text, series), 5 * 40, "%s in\n%s", series, text);
	resp_free(&r);

	/* HEAD is answered by the same route, without a body. */
	cr_assert(
	        cl_request(skald_http_port(srv), "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r));
	cr_assert_eq(r.status, 200);
	resp_free(&r);

	skald_http_stop(srv);
	skald_http_server_free(srv);
	skald_system_stop(b);
	skald_system_stop(a);
	/* The stopped systems' counts stay: counters never go down. */
	cr_assert_geq(metric_now("skald_messages_processed_total"), 5 + NOTES);
	cr_assert_eq(metric_now("skald_actors_alive"), 0);
}
