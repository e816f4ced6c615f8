/*
 * skald/skald.h - every public header of Skald.
 */
#ifndef SKALD_H
#define SKALD_H

#include "error.h"
#include "actor.h"

#endif /* SKALD_H */
