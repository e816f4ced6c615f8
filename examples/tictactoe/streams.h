/*
 * examples/tictactoe/streams.h - the two streamed answers of the API, each
 * an actor that owns its HTTP answer (serve.c starts them).
 *
 * POST /matchmaking: finds the player's actor (player.h) anywhere in the
 * cluster, asks it to seek a game and passes on the lines it sends
 * ({"type": "waiting", ...}, {"type": "matched", ...}), with a heartbeat
 * line ({"type": "heartbeat"}) every heartbeat_ms while it waits. The stream
 * ends after "matched", or with an "error" line when the player's node
 * goes. A client that goes away makes the player leave the lobby.
 *
 * GET /games/{id}/stream: watches the game (api.h): the state now, then one
 * line per change; it ends after the game's last move. When the game's
 * session stops or its node goes, it watches the game again wherever the
 * game now lives, and sends the state it finds there if it is newer than
 * the last line.
 */
#ifndef TTT_STREAMS_H
#define TTT_STREAMS_H

#include <stdbool.h>

#include <skald/http.h>
#include <skald/skald.h>

/* Each starts the actor that answers res (which it owns from then on).
 * On error the caller still owns res. Errors as skald_spawn. */
int ttt_stream_matchmaking(skald_system_t *sys, skald_http_res_t *res, const char *player, bool bot,
                           unsigned heartbeat_ms);
int ttt_stream_game(skald_system_t *sys, skald_http_res_t *res, const char *game);

#endif /* TTT_STREAMS_H */
