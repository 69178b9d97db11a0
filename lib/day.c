/* Calendar days in the configured time zone. */

#include <sys/stat.h>

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tally/day.h"

#define ZONEINFO_DIR	"/usr/share/zoneinfo"

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar, and
 * back: Howard Hinnant's days_from_civil and civil_from_days. */
static int
days_from_civil(int y, int m, int d)
{
	int		 era;
	unsigned	 yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (unsigned)((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int)doe - 719468;
}

static void
civil_from_days(int z, int *y, int *m, int *d)
{
	int		 era;
	unsigned	 doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)yoe + era * 400 + (*m <= 2);
}

static bool
is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
days_in_month(int y, int m)
{
	static const int	 mdays[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
	};

	return m == 2 && is_leap(y) ? 29 : mdays[m - 1];
}

/*
 * A zone is a name under the zoneinfo directory that holds a compiled
 * zone (a "TZif" file): glibc quietly takes an unknown TZ for UTC, and
 * files like zone.tab sit in the same directory. Names are relative and
 * may not climb out of it.
 */
bool
day_timezone_valid(const char *zone)
{
	char		 path[512], magic[4];
	const char	*dir, *c;
	struct stat	 st;
	ssize_t		 n;
	int		 fd, w;

	if (zone == NULL || zone[0] == '\0')
		return true;
	if (zone[0] == '/' || strstr(zone, "..") != NULL)
		return false;
	for (c = zone; *c != '\0'; c++)
		if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
		    (*c >= '0' && *c <= '9') || strchr("/_+-.", *c) != NULL))
			return false;

	/* glibc looks in $TZDIR when it is set; so do we. */
	if ((dir = getenv("TZDIR")) == NULL || dir[0] == '\0')
		dir = ZONEINFO_DIR;
	w = snprintf(path, sizeof(path), "%s/%s", dir, zone);
	if (w < 0 || (size_t)w >= sizeof(path))
		return false;
	if (stat(path, &st) == -1 || !S_ISREG(st.st_mode))
		return false;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return false;
	n = read(fd, magic, sizeof(magic));
	close(fd);
	return n == (ssize_t)sizeof(magic) && memcmp(magic, "TZif", 4) == 0;
}

/* The TZ the process started with, put back when the configuration no
 * longer names a zone (after SIGHUP, say). */
static bool	 tz_saved;
static char	*tz_orig;

/* Changes TZ, which is not thread-safe: call it before starting threads
 * or while no other thread converts times. */
/* Bumped at every zone change, so that cached days are worked out again. */
static unsigned zone_generation;

int
day_set_timezone(const char *zone)
{
	const char	*cur;

	if (!day_timezone_valid(zone))
		return -1;
	if (!tz_saved) {
		if ((cur = getenv("TZ")) != NULL &&
		    (tz_orig = strdup(cur)) == NULL)
			return -1;
		tz_saved = true;
	}

	if (zone != NULL && zone[0] != '\0') {
		if (setenv("TZ", zone, 1) == -1)
			return -1;
	} else if (tz_orig != NULL) {
		if (setenv("TZ", tz_orig, 1) == -1)
			return -1;
	} else
		unsetenv("TZ");
	tzset();
	__atomic_fetch_add(&zone_generation, 1, __ATOMIC_RELEASE);
	return 0;
}

int
day_of(time_t t)
{
	struct tm	 tm;

	if (localtime_r(&t, &tm) == NULL)
		return 0;
	return days_from_civil(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

int
day_today(void)
{
	/* Every request asks: the answer is kept for the second it holds
	 * in, per thread, until the zone changes. time(), not a cached
	 * clock: libfaketime moves it in tests. */
	static __thread time_t last_t = -1;
	static __thread unsigned last_gen;
	static __thread int last_day;
	time_t t = time(NULL);
	unsigned gen = __atomic_load_n(&zone_generation, __ATOMIC_ACQUIRE);

	if (t != last_t || gen != last_gen) {
		last_day = day_of(t);
		last_t = t;
		last_gen = gen;
	}
	return last_day;
}

/* Writes n as exactly width digits. */
static void
put_digits(char *out, int n, int width)
{
	while (width-- > 0) {
		out[width] = (char)('0' + n % 10);
		n /= 10;
	}
}

void
day_format(int day, char out[DAY_STRLEN])
{
	int	 y, m, d;

	/* Four-digit years only: clamp rather than write past out. */
	if (day < days_from_civil(0, 1, 1))
		day = days_from_civil(0, 1, 1);
	if (day > days_from_civil(9999, 12, 31))
		day = days_from_civil(9999, 12, 31);
	civil_from_days(day, &y, &m, &d);
	put_digits(out, y, 4);
	out[4] = '-';
	put_digits(out + 5, m, 2);
	out[7] = '-';
	put_digits(out + 8, d, 2);
	out[10] = '\0';
}

int
day_parse(const char *s, int *day)
{
	int	 i, y, m, d;

	if (s == NULL || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return -1;
	for (i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return -1;
	y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 +
	    (s[3] - '0');
	m = (s[5] - '0') * 10 + (s[6] - '0');
	d = (s[8] - '0') * 10 + (s[9] - '0');
	if (m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
		return -1;
	*day = days_from_civil(y, m, d);
	return 0;
}

/*
 * mktime finds the next local midnight with DST taken into account. Where
 * a zone jumps over midnight or passes it twice, mktime may pick an
 * instant before or after the first one of the new day; the steps below
 * move to the first, to a quarter of an hour, which every zone's offset
 * changes are a multiple of.
 */
long
day_seconds_to_midnight(time_t t)
{
	struct tm	 tm;
	time_t		 next;
	int		 today, guard;

	if (localtime_r(&t, &tm) == NULL)
		return 86400;
	today = days_from_civil(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
	tm.tm_mday++;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_isdst = -1;
	if ((next = mktime(&tm)) == (time_t)-1) {
		localtime_r(&t, &tm);
		return 86400L - (tm.tm_hour * 3600L + tm.tm_min * 60L +
		    tm.tm_sec);
	}

	for (guard = 0; guard < 200 && (next <= t || day_of(next) <= today);
	    guard++)
		next += 900;
	for (guard = 0; guard < 200 && next - 900 > t &&
	    day_of(next - 900) > today; guard++)
		next -= 900;
	return next - t >= 1 ? (long)(next - t) : 1;
}
