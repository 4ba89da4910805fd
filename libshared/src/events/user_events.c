/* The user aggregate's events (cqrs/events.h): UserCreated and
 * UserProfileUpdated, with the changes object the latter carries. */
#include "contract.h"

CQRS_EVENT_RECORD_DEFINE(user_profile_changes, CQRS_USER_PROFILE_CHANGES_FIELDS)
CQRS_USER_EVENTS(CQRS_EVENT_DEFINE)
CQRS_USER_EVENTS_PAST(CQRS_EVENT_DEFINE)
