/* Recognising automated clients by User-Agent. */
#ifndef TALLY_BOTS_H
#define TALLY_BOTS_H

#include <stdbool.h>
#include <stddef.h>

struct botlist;

/* The built-in list plus extra patterns (case-insensitive substrings). */
struct botlist *botlist_new(char *const *extra, size_t nextra);
void botlist_free(struct botlist *);
/* True for a bot, and for an empty or missing User-Agent. */
bool botlist_match(const struct botlist *, const char *user_agent);

#endif
