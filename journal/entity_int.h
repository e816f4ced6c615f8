/*
 * journal/entity_int.h - what the layers above the journal may ask of an
 * entity beyond skald/entity.h. Never installed.
 */
#ifndef SKALD_JOURNAL_ENTITY_INT_H
#define SKALD_JOURNAL_ENTITY_INT_H

#include "skald/entity.h"

/* The type self was spawned with (the pointer given to
 * skald_entity_spawn), or NULL if self is not an entity. Owner thread. */
const skald_entity_type_t *skald__entity_type(const skald_actor_t *self);

/* 0 if the journal of sys's entities (skald_config_t.journal, SKALD_JOURNAL
 * or the default) names a store of this program; else SKALD_EURI or
 * SKALD_ESCHEME, with the reason logged after `who`. Any thread. */
int skald__entity_journal_check(skald_system_t *sys, const char *who);

#endif /* SKALD_JOURNAL_ENTITY_INT_H */
