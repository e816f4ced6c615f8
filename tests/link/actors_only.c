/*
 * tests/link/actors_only.c - a program that uses only skald/actor.h.
 *
 * `make check` links it against the static library with libuv alone
 * (-luv -lpthread -lm): the runtime reaches the network and the journal
 * only through what their layers install, so neither they nor their
 * libraries (libcrypto, jansson, libpq, libmongoc) may be pulled in. It
 * also runs: an ask is answered, and a message to another node is a dead
 * letter when no transport is installed. Exits 0 on success.
 */
#include <stdint.h>
#include <stdio.h>

#include "skald/actor.h"

static const skald_msgtype_t echo_type = {.name = "link.echo"};
static uint32_t t_echo;

static int echo_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	return skald_reply(self, msg, t_echo, msg->payload);
}

static const skald_behavior_t echo = {.receive = echo_receive};

int main(void)
{
	skald_system_t *sys;
	skald_ref_t ref;
	uint32_t type;
	void *reply = NULL;
	skald_stats_t stats;
	int rc = skald_type_register(&echo_type, &t_echo);
	if (rc == 0)
		rc = skald_system_new(&(skald_config_t){.threads = 1}, &sys);
	if (rc < 0) {
		fprintf(stderr, "actors_only: %s\n", skald_strerror(rc));
		return 1;
	}
	if ((rc = skald_spawn(sys, &echo, NULL, NULL, &ref)) == 0)
		rc = skald_system_ask(sys, ref, t_echo, (void *)(intptr_t)42, 5000, &type, &reply);
	skald_ref_t away = {.node = skald_system_node(sys) + 1, .actor = 1, .incarnation = 1};
	if (rc == 0)
		rc = skald_system_tell(sys, away, t_echo, NULL);
	if (rc == 0)
		rc = skald_system_stats(sys, &stats);
	skald_system_stop(sys);
	if (rc < 0 || (intptr_t)reply != 42 || stats.dead_letters != 1) {
		fprintf(stderr, "actors_only: %s, reply %ld, %llu dead letters\n",
		        skald_strerror(rc), (long)(intptr_t)reply,
		        rc == 0 ? (unsigned long long)stats.dead_letters : 0);
		return 1;
	}
	return 0;
}
