/*
 * examples/chat/chat.h - what the room and the user share.
 *
 * Every message is one registered type, "chat.msg", whose payload is a JSON
 * object (jansson) that crosses nodes through skald_codec_json: nothing to
 * encode or decode by hand. Its "op" says what it is:
 *
 *   to a room   {"op":"join","user":U}           ask; answered {"op":"joined",
 *                                                "history":[{"user","text"}...]}
 *               {"op":"say","user":U,"text":T}   ask; answered {"op":"said","seq":N}
 *   to a user   {"op":"line","room":R,"user":U,"text":T}   tell
 *
 * A room is an entity "room-NAME": its history is the events "room.joined"
 * {"user"} and "room.said" {"user","text"}; who is listening right now is
 * not history, and lives beside it.
 */
#ifndef CHAT_H
#define CHAT_H

#include <skald/skald.h>

/* The id of "chat.msg", registered by chat_register. */
extern uint32_t chat_msg;
int chat_register(void);

/* The entity type of rooms. */
extern const skald_entity_type_t chat_room_type;

/* The name rooms are published under: "room/NAME" into buf. */
void chat_room_key(char *buf, size_t len, const char *room);

#endif
