/*
 * examples/tictactoe/demo.h - `tictactoe demo`: a cluster in one process.
 *
 * Starts `nodes` nodes in this process, joined over loopback TCP, on one
 * journal (memory://NAME is shared by the nodes of a process), and bots
 * (player.h) spread over them that seek games in the lobby and play them
 * through the API's operations until `games` games are finished. Halfway,
 * one node (the lobby's host, unless told otherwise) is stopped abruptly:
 * its connections close without a goodbye and its actors are gone; its
 * games and the lobby start again on the others from their histories, and
 * its bots reconnect to the other nodes and go on with their games. Then
 * every game is replayed from the journal and checked (check.h).
 */
#ifndef TTT_DEMO_H
#define TTT_DEMO_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
	const char *store;
	long games, players;
	uint64_t seed;
	unsigned nodes;   /* 1..5 */
	unsigned threads; /* scheduler threads per node; 0: 1 */
	const char *stop; /* the node to stop: a name, "lobby" (its host) or "none" */
} ttt_demo_options_t;

/* Runs the demo; returns the exit status (0: every check passed). */
int ttt_demo(const ttt_demo_options_t *o);

#endif /* TTT_DEMO_H */
