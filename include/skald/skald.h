/*
 * skald/skald.h - every public header of Skald.
 */
#ifndef SKALD_H
#define SKALD_H

#include "error.h"
#include "actor.h"
#include "journal.h"
#include "remote.h"
#include "store.h"
#include "entity.h"

#endif /* SKALD_H */
