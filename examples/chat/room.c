/*
 * examples/chat/room.c - a chat room: an entity whose events are who joined
 * and what was said. Joins and lines are persisted before anyone hears of
 * them (skald_persist_reply answers the asker once the event is stored),
 * then the line goes to every listener but its author.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"

#define HISTORY   20 /* lines a joiner is shown */
#define LISTENERS 64

uint32_t chat_msg;

static const skald_msgtype_t msg_type = {.name = "chat.msg", .codec = &skald_codec_json};

int chat_register(void)
{
	return skald_type_register(&msg_type, &chat_msg);
}

void chat_room_key(char *buf, size_t len, const char *room)
{
	snprintf(buf, len, "room/%s", room);
}

typedef struct room_s {
	/* History: what apply builds, live and in recovery. */
	json_t *recent; /* the last HISTORY lines, [{"user","text"}] */
	long lines, joins;
	/* Presence: who listens now. Not history: lost on a restart, and
	 * rebuilt as users join again. */
	struct {
		char user[32];
		skald_ref_t ref;
	} listeners[LISTENERS];
	int nlisteners;
	char name[64];
} room_t;

static int room_init(void *state, const char *id)
{
	room_t *r = state;
	r->recent = json_array();
	snprintf(r->name, sizeof r->name, "%s", id);
	return r->recent != NULL ? 0 : SKALD_ENOMEM;
}

static void room_fini(void *state)
{
	json_decref(((room_t *)state)->recent);
}

static int room_apply(void *state, const skald_event_t *ev)
{
	room_t *r = state;
	if (strcmp(ev->type, "room.joined") == 0) {
		r->joins++;
	} else if (strcmp(ev->type, "room.said") == 0) {
		r->lines++;
		json_array_append(r->recent, ev->data); /* borrows ev->data */
		if (json_array_size(r->recent) > HISTORY)
			json_array_remove(r->recent, 0);
	}
	return 0;
}

/* The answer to a join, once "room.joined" is stored: the recent lines. */
static int joined(skald_actor_t *self, void *state, int status, void *arg, uint32_t *type,
                  void **payload)
{
	room_t *r = state;
	*type = chat_msg;
	*payload = status == 0
	                   ? json_pack("{s:s, s:O}", "op", "joined", "history", r->recent)
	                   : json_pack("{s:s, s:s}", "op", "error", "why", skald_strerror(status));
	return *payload != NULL ? 0 : SKALD_ENOMEM;
}

/* The answer to a say, once "room.said" is stored; then everyone else
 * hears it. */
static int said(skald_actor_t *self, void *state, int status, void *arg, uint32_t *type,
                void **payload)
{
	room_t *r = state;
	json_t *ev = json_array_get(r->recent, json_array_size(r->recent) - 1);
	const char *author = json_string_value(json_object_get(ev, "user"));
	for (int i = 0; status == 0 && author != NULL && i < r->nlisteners; i++) {
		if (strcmp(r->listeners[i].user, author) == 0)
			continue;
		json_t *line =
		        json_pack("{s:s, s:s, s:O, s:O}", "op", "line", "room", r->name, "user",
		                  json_object_get(ev, "user"), "text", json_object_get(ev, "text"));
		if (line != NULL && skald_tell(self, r->listeners[i].ref, chat_msg, line) < 0)
			json_decref(line);
	}
	*type = chat_msg;
	*payload = status == 0
	                   ? json_pack("{s:s, s:I}", "op", "said", "seq",
	                               (json_int_t)skald_entity_seq(self))
	                   : json_pack("{s:s, s:s}", "op", "error", "why", skald_strerror(status));
	return *payload != NULL ? 0 : SKALD_ENOMEM;
}

/* A listener that stopped (its process ended, its node was lost). */
static void forget(room_t *r, skald_ref_t ref)
{
	for (int i = 0; i < r->nlisteners; i++) {
		if (skald_ref_eq(r->listeners[i].ref, ref)) {
			r->listeners[i] = r->listeners[--r->nlisteners];
			return;
		}
	}
}

static int room_command(skald_actor_t *self, void *state, skald_msg_t *cmd)
{
	room_t *r = state;
	if (cmd->type == SKALD_TYPE_DOWN) {
		forget(r, ((skald_down_t *)cmd->payload)->ref);
		return 0;
	}
	if (cmd->type != chat_msg || cmd->ask_id == 0)
		return 0; /* not ours: ignored */
	json_t *m = cmd->payload;
	const char *op = json_string_value(json_object_get(m, "op"));
	const char *user = json_string_value(json_object_get(m, "user"));
	if (op == NULL || user == NULL || user[0] == '\0' || strlen(user) >= 32)
		return skald_reply(self, cmd, chat_msg,
		                   json_pack("{s:s, s:s}", "op", "error", "why",
		                             "a message needs an op and a user (1 to 31 bytes)"));
	skald_new_event_t ev;
	skald_reply_build_fn build;
	if (strcmp(op, "join") == 0) {
		if (r->nlisteners < LISTENERS && skald_watch(self, cmd->sender) == 0) {
			snprintf(r->listeners[r->nlisteners].user, 32, "%s", user);
			r->listeners[r->nlisteners++].ref = cmd->sender;
		}
		ev = (skald_new_event_t){"room.joined", 1, json_pack("{s:s}", "user", user)};
		build = joined;
	} else if (strcmp(op, "say") == 0 && json_is_string(json_object_get(m, "text"))) {
		ev = (skald_new_event_t){
		        "room.said", 1,
		        json_pack("{s:s, s:O}", "user", user, "text", json_object_get(m, "text"))};
		build = said;
	} else {
		return skald_reply(self, cmd, chat_msg,
		                   json_pack("{s:s, s:s}", "op", "error", "why",
		                             "op is join or say (with a text)"));
	}
	int rc = skald_persist_reply(self, cmd, &ev, 1, build, NULL);
	if (rc < 0)
		json_decref(ev.data);
	return rc;
}

const skald_entity_type_t chat_room_type = {
        .name = "room",
        .state_size = sizeof(room_t),
        .init = room_init,
        .command = room_command,
        .apply = room_apply,
        .fini = room_fini,
};
