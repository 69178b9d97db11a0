/* Calendar days in the configured time zone. A day is the number of
 * days from 1970-01-01 to the local calendar date. */
#ifndef TALLY_DAY_H
#define TALLY_DAY_H

#include <stdbool.h>
#include <time.h>

#define DAY_STRLEN	11	/* "YYYY-MM-DD" and NUL */

/* Makes the process use the IANA zone name (NULL or "": the host's
 * zone). Returns -1 when the zone is unknown. */
int day_set_timezone(const char *zone);
bool day_timezone_valid(const char *zone);

int day_of(time_t);
int day_today(void);
void day_format(int day, char out[DAY_STRLEN]);
/* Parses "YYYY-MM-DD"; returns -1 on error. */
int day_parse(const char *s, int *day);
/* Seconds from t until the next local midnight. */
long day_seconds_to_midnight(time_t t);

#endif
