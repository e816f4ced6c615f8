/*
 * examples/chat - rooms as persistent entities on several nodes, users on
 * nodes of their own, every line stored as an event before anyone hears it.
 *
 *   chat serve --listen tcp://HOST:PORT --rooms NAME[,NAME...] [--store URI]
 *   chat user  --connect tcp://HOST:PORT --room NAME --name USER
 *
 * A server node hosts rooms and publishes each as "room/NAME". A user node
 * connects to the node that hosts its room, looks the room up, joins (and
 * is shown the recent lines), then says every line of its standard input
 * and prints what the others say, as "[ROOM] USER: TEXT", until its input
 * ends. Both sides share the secret of --secret (default "chat-example").
 * The walk-through is in README.md ("Your first multi-node program").
 */
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat.h"

#define WAIT_MS 10000

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: chat serve --listen tcp://HOST:PORT --rooms NAME[,NAME...] [--store URI]\n"
	        "       chat user --connect tcp://HOST:PORT --room NAME --name USER\n"
	        "  --secret S   the cluster secret both sides share (default chat-example)\n");
}

typedef struct {
	const char *mode, *listen, *rooms, *store, *connect, *room, *name, *secret;
} opts_t;

static int parse(int argc, char **argv, opts_t *o)
{
	*o = (opts_t){.secret = "chat-example", .store = "memory://chat"};
	if (argc < 2 || (strcmp(argv[1], "serve") != 0 && strcmp(argv[1], "user") != 0)) {
		usage(stderr);
		return -1;
	}
	o->mode = argv[1];
	static const struct {
		const char *flag;
		size_t off;
	} flags[] = {
	        {"--listen", offsetof(opts_t, listen)}, {"--rooms", offsetof(opts_t, rooms)},
	        {"--store", offsetof(opts_t, store)},   {"--connect", offsetof(opts_t, connect)},
	        {"--room", offsetof(opts_t, room)},     {"--name", offsetof(opts_t, name)},
	        {"--secret", offsetof(opts_t, secret)},
	};
	for (int i = 2; i < argc; i++) {
		size_t k = 0;
		while (k < sizeof flags / sizeof flags[0] && strcmp(argv[i], flags[k].flag) != 0)
			k++;
		if (k == sizeof flags / sizeof flags[0] || i + 1 >= argc) {
			fprintf(stderr, "chat: %s '%s'\n",
			        k == sizeof flags / sizeof flags[0] ? "unknown argument"
			                                            : "a value is missing after",
			        argv[i]);
			usage(stderr);
			return -1;
		}
		*(const char **)((char *)o + flags[k].off) = argv[++i];
	}
	bool serve = strcmp(o->mode, "serve") == 0;
	if (serve ? (o->listen == NULL || o->rooms == NULL)
	          : (o->connect == NULL || o->room == NULL || o->name == NULL)) {
		fprintf(stderr, "chat %s: %s\n", o->mode,
		        serve ? "--listen and --rooms are required"
		              : "--connect, --room and --name are required");
		return -1;
	}
	return 0;
}

/* A node: a system with its network started. */
static skald_system_t *node(const opts_t *o, const char *journal)
{
	skald_system_t *sys;
	int rc = skald_system_new(&(skald_config_t){.name = o->mode, .journal = journal}, &sys);
	if (rc < 0) {
		fprintf(stderr, "chat: %s: %s\n", skald_strerror(rc), skald_journal_open_errmsg());
		return NULL;
	}
	if ((rc = skald_remote_start(
	             sys, &(skald_remote_config_t){.secret = o->secret, .cluster = "chat"})) < 0) {
		fprintf(stderr, "chat: network: %s\n", skald_strerror(rc));
		skald_system_stop(sys);
		return NULL;
	}
	return sys;
}

/* --- serve ------------------------------------------------------------------ */

static volatile sig_atomic_t stop_asked;

static void on_signal(int sig)
{
	stop_asked = 1;
}

static int serve(const opts_t *o)
{
	skald_system_t *sys = node(o, o->store);
	if (sys == NULL)
		return 1;
	int port, rc = skald_listen(sys, o->listen, &port);
	if (rc < 0) {
		fprintf(stderr, "chat serve: cannot listen on %s: %s\n", o->listen,
		        skald_strerror(rc));
		skald_system_stop(sys);
		return 1;
	}
	char list[512];
	snprintf(list, sizeof list, "%s", o->rooms);
	for (char *save, *room = strtok_r(list, ",", &save); room != NULL;
	     room = strtok_r(NULL, ",", &save)) {
		skald_ref_t ref;
		char key[128];
		chat_room_key(key, sizeof key, room);
		if ((rc = skald_entity_spawn(sys, &chat_room_type, room, NULL, &ref)) < 0 ||
		    (rc = skald_publish(sys, key, ref)) < 0) {
			fprintf(stderr, "chat serve: room %s: %s\n", room, skald_strerror(rc));
			skald_system_stop(sys);
			return 1;
		}
	}
	/* The port actually bound (the address may say 0). */
	char host[64];
	snprintf(host, sizeof host, "%s", o->listen + strlen("tcp://"));
	*strrchr(host, ':') = '\0';
	printf("chat: rooms %s at tcp://%s:%d\n", o->rooms, host, port);
	fflush(stdout);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	while (!stop_asked)
		pause();
	skald_system_stop(sys);
	return 0;
}

/* --- user ------------------------------------------------------------------- */

typedef struct {
	const opts_t *o;
	skald_ref_t room;
	/* Set by the actor once the join is answered (0) or failed. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int joined, status;
} user_t;

static void print_line(const char *room, json_t *line)
{
	printf("[%s] %s: %s\n", room, json_string_value(json_object_get(line, "user")),
	       json_string_value(json_object_get(line, "text")));
	fflush(stdout);
}

static void join_done(user_t *u, int status)
{
	pthread_mutex_lock(&u->lock);
	u->joined = 1;
	u->status = status;
	pthread_cond_signal(&u->cond);
	pthread_mutex_unlock(&u->lock);
}

static void on_joined(skald_actor_t *self, void *state, int status, skald_msg_t *reply, void *arg)
{
	user_t *u = arg;
	json_t *history = status == 0 ? json_object_get(reply->payload, "history") : NULL;
	size_t i;
	json_t *line;
	json_array_foreach(history, i, line) print_line(u->o->room, line);
	join_done(u, status < 0 ? status : history != NULL ? 0 : SKALD_EPROTO);
}

/* The user's actor: it joins, so that the room knows whom to tell, and
 * prints what the room tells it. */
static int user_init(skald_actor_t *self, void *state, void *arg)
{
	user_t *u = arg;
	json_t *join = json_pack("{s:s, s:s}", "op", "join", "user", u->o->name);
	int rc = skald_ask(self, u->room, chat_msg, join, WAIT_MS, on_joined, u);
	if (rc < 0) {
		json_decref(join);
		join_done(u, rc);
	}
	return 0;
}

static int user_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	json_t *m = msg->payload;
	if (msg->type == chat_msg)
		print_line(json_string_value(json_object_get(m, "room")), m);
	return 0;
}

static const skald_behavior_t user_behavior = {.init = user_init, .receive = user_receive};

static int user(const opts_t *o)
{
	skald_system_t *sys = node(o, NULL);
	if (sys == NULL)
		return 1;
	user_t u = {.o = o, .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
	char key[128];
	chat_room_key(key, sizeof key, o->room);
	int rc = skald_system_lookup(sys, o->connect, key, WAIT_MS, &u.room);
	if (rc < 0) {
		fprintf(stderr, "chat user: room %s at %s: %s\n", o->room, o->connect,
		        skald_strerror(rc));
		skald_system_stop(sys);
		return 1;
	}
	skald_ref_t me;
	if ((rc = skald_spawn(sys, &user_behavior, &u, NULL, &me)) == 0) {
		pthread_mutex_lock(&u.lock);
		while (!u.joined)
			pthread_cond_wait(&u.cond, &u.lock);
		pthread_mutex_unlock(&u.lock);
		rc = u.status;
	}
	char buf[1024];
	while (rc == 0 && fgets(buf, sizeof buf, stdin) != NULL) {
		buf[strcspn(buf, "\n")] = '\0';
		uint32_t type;
		void *reply = NULL;
		rc = skald_system_ask(
		        sys, u.room, chat_msg,
		        json_pack("{s:s, s:s, s:s}", "op", "say", "user", o->name, "text", buf),
		        WAIT_MS, &type, &reply);
		const char *op = rc == 0 ? json_string_value(json_object_get(reply, "op")) : NULL;
		if (rc == 0 && (op == NULL || strcmp(op, "said") != 0)) {
			fprintf(stderr, "chat user: the room refused: %s\n",
			        json_string_value(json_object_get(reply, "why")));
			rc = SKALD_EREJECTED;
		}
		skald_payload_free(type, reply);
	}
	if (rc < 0 && rc != SKALD_EREJECTED)
		fprintf(stderr, "chat user: %s\n", skald_strerror(rc));
	skald_system_stop(sys);
	return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	opts_t o;
	if (parse(argc, argv, &o) < 0)
		return 2;
	if (chat_register() < 0)
		return 1;
	return strcmp(o.mode, "serve") == 0 ? serve(&o) : user(&o);
}
