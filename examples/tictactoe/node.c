/*
 * examples/tictactoe/node.c - placement on one node (see node.h).
 */
#include "game.h"
#include "lobby.h"
#include "node.h"

int ttt_node_lobby(skald_system_t *sys, skald_ref_t *out)
{
	return skald_entity_spawn(sys, &tictactoe_lobby, TTT_LOBBY_ID, NULL, out);
}

int ttt_node_game(skald_actor_t *self, const char *game, skald_ref_t *out)
{
	/* A top-level actor rather than a child of the lobby: sessions spread
	 * over the scheduler threads (round-robin) instead of all sharing the
	 * lobby's, and a session's life is the lobby's decision anyway. */
	return skald_entity_spawn(skald_actor_system(self), &tictactoe_game, game, NULL, out);
}
