/*
 * actors/cluster/leave.h - what the layers above the membership may ask of
 * it beyond skald/cluster.h. Never installed.
 */
#ifndef SKALD_ACTORS_CLUSTER_LEAVE_H
#define SKALD_ACTORS_CLUSTER_LEAVE_H

#include "skald/actor.h"

/*
 * Holds (delta +1) or releases (-1) this node's graceful leave: while any
 * hold is taken, a node that leaves stays LEAVING (out of the up list, so
 * placement has moved away, but still reachable) instead of becoming
 * REMOVED, after which the other members drop its messages. A layer that
 * must finish moving its work away takes a hold when the leave starts and
 * releases it when done (sharding/: its handoffs, which are bounded by
 * their own timeout). Any thread; takes effect on the network thread.
 * Errors: SKALD_EINVAL (cluster not started), SKALD_ENOMEM.
 */
int skald__cluster_hold_leave(skald_system_t *sys, int delta);

#endif /* SKALD_ACTORS_CLUSTER_LEAVE_H */
