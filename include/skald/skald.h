/*
 * skald/skald.h - what applications include: every public header of Skald
 * but skald/store.h, the interface for authors of journal stores.
 */
#ifndef SKALD_H
#define SKALD_H

#include "error.h"
#include "actor.h"
#include "journal.h"
#include "remote.h"
#include "cluster.h"
#include "entity.h"
#include "metrics.h"
#include "sharding.h"

#endif /* SKALD_H */
