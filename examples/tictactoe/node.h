/*
 * examples/tictactoe/node.h - where the example's actors live.
 *
 * The only code that knows the example runs on one node. The lobby is a
 * singleton entity ("lobby-main") and each game session an entity named by
 * its game id; everything else reaches them through references it was given
 * (players get the lobby's at spawn and a session's in ttt.assigned). A
 * cluster layer replaces these two functions: the lobby becomes a cluster
 * singleton, and a session is placed on the member that owns its id.
 */
#ifndef TTT_NODE_H
#define TTT_NODE_H

#include <skald/skald.h>

/* The lobby's entity id: its persistence id is "lobby-main". */
#define TTT_LOBBY_ID "main"

/* Starts the lobby on sys; it recovers its history before its first message.
 * Errors as skald_entity_spawn. */
int ttt_node_lobby(skald_system_t *sys, skald_ref_t *out);

/* Starts the session of game `game` (it recovers from the journal) on behalf
 * of the lobby `self`. The caller must not start a game that is still
 * running: two live sessions of one game conflict at their next write.
 * Errors as skald_entity_spawn. */
int ttt_node_game(skald_actor_t *self, const char *game, skald_ref_t *out);

#endif /* TTT_NODE_H */
