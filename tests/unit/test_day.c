/* Calendar days, time zones and midnight. */

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tally/day.h"
#include "check.h"

/* 2026-11-27 00:00:00 UTC, day 20784. */
#define T_20261127	((time_t)1795737600)
#define HOUR		3600

struct date_case {
	int		 day;
	const char	*text;
};

static const struct date_case date_cases[] = {
	{ 0, "1970-01-01" },
	{ 1, "1970-01-02" },
	{ -1, "1969-12-31" },
	{ 31, "1970-02-01" },
	{ 365, "1971-01-01" },
	{ 10957, "2000-01-01" },
	{ 11016, "2000-02-29" },
	{ 11017, "2000-03-01" },
	{ 19782, "2024-02-29" },
	{ 20784, "2026-11-27" },
	{ 47540, "2100-02-28" },
	{ 47541, "2100-03-01" },
	{ -25509, "1900-02-28" },
	{ -25508, "1900-03-01" },
	{ -719162, "0001-01-01" },
	{ 2932896, "9999-12-31" },
};

static const char *const bad_dates[] = {
	"2100-02-29", "1900-02-29", "2023-02-29", "2000-02-30",
	"2026-04-31", "2026-13-01", "2026-00-10", "2026-01-00",
	"2026-01-32", "2026-1-01", "2026-01-1", "2026/01/01",
	"2026-01-01x", " 2026-01-01", "2026-01-01 ", "20260101",
	"", "abcd-ef-gh", "+026-01-01", "-026-01-01", "2026-0a-01",
	"2026--1-01", "12026-01-01",
};

static int
is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static void
test_format_parse(void)
{
	char	 text[DAY_STRLEN], want[48];
	size_t	 i;
	int	 d, day, y, m, md, failures;
	static const int mdays[] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
	};

	for (i = 0; i < sizeof(date_cases) / sizeof(date_cases[0]); i++) {
		day_format(date_cases[i].day, text);
		CHECK_STR(text, date_cases[i].text);
		day = 12345678;
		CHECK_INT(day_parse(date_cases[i].text, &day), 0);
		CHECK_INT(day, date_cases[i].day);
	}

	for (i = 0; i < sizeof(bad_dates) / sizeof(bad_dates[0]); i++) {
		day = 12345678;
		if (day_parse(bad_dates[i], &day) != -1)
			fprintf(stderr, "date \"%s\"\n", bad_dates[i]);
		CHECK_INT(day_parse(bad_dates[i], &day), -1);
		CHECK_INT(day, 12345678);	/* untouched */
	}
	CHECK_INT(day_parse("2024-02-29", &day), 0);
	CHECK_INT(day_parse(NULL, &day), -1);

	/* Every day from 0001-01-01 to 9999-12-31 against a calendar
	 * counted one day at a time. */
	failures = 0;
	y = 1;
	m = 1;
	md = 1;
	for (d = -719162; d <= 2932896; d++) {
		snprintf(want, sizeof(want), "%04d-%02d-%02d", y, m, md);
		day_format(d, text);
		if (strcmp(text, want) != 0 || day_parse(want, &day) != 0 ||
		    day != d) {
			if (failures++ < 5)
				fprintf(stderr, "day %d: got %s, want %s\n",
				    d, text, want);
		}
		if (++md > (m == 2 && is_leap(y) ? 29 : mdays[m - 1])) {
			md = 1;
			if (++m > 12) {
				m = 1;
				y++;
			}
		}
	}
	CHECK_INT(failures, 0);
	CHECK_INT(y, 10000);

	/* Outside four-digit years: clamped, never longer. */
	day_format(2932897, text);
	CHECK_STR(text, "9999-12-31");
	day_format(-2000000000, text);
	CHECK_STR(text, "0000-01-01");
}

static void
test_zones(void)
{
	CHECK(day_timezone_valid(NULL));
	CHECK(day_timezone_valid(""));
	CHECK(day_timezone_valid("UTC"));
	CHECK(day_timezone_valid("Asia/Baku"));
	CHECK(day_timezone_valid("Europe/Berlin"));
	CHECK(day_timezone_valid("America/Sao_Paulo"));
	CHECK(day_timezone_valid("Etc/GMT+3"));
	CHECK(!day_timezone_valid("Nowhere/City"));
	CHECK(!day_timezone_valid("Asia"));		/* a directory */
	CHECK(!day_timezone_valid("zone.tab"));		/* no zone */
	CHECK(!day_timezone_valid("../../../etc/passwd"));
	CHECK(!day_timezone_valid("Asia/../UTC"));
	CHECK(!day_timezone_valid("/usr/share/zoneinfo/UTC"));
	CHECK(!day_timezone_valid("Asia/Baku "));
	CHECK(!day_timezone_valid(":UTC"));
	CHECK(!day_timezone_valid("utc\n"));

	CHECK_INT(day_set_timezone("Nowhere/City"), -1);
	CHECK_INT(day_set_timezone("../etc/passwd"), -1);
}

struct day_of_case {
	const char	*zone;
	time_t		 t;
	int		 day;
};

static const struct day_of_case day_of_cases[] = {
	{ "UTC", 0, 0 },
	{ "UTC", -1, -1 },
	{ "UTC", T_20261127 - 1, 20783 },
	{ "UTC", T_20261127, 20784 },
	{ "UTC", T_20261127 + 24 * HOUR - 1, 20784 },
	/* Baku is UTC+4: its day begins at 20:00 UTC the day before. */
	{ "Asia/Baku", T_20261127 - 1, 20784 },
	{ "Asia/Baku", T_20261127, 20784 },
	{ "Asia/Baku", T_20261127 - 4 * HOUR - 1, 20783 },
	{ "Asia/Baku", T_20261127 - 4 * HOUR, 20784 },
	{ "Asia/Baku", T_20261127 + 20 * HOUR - 1, 20784 },
	{ "Asia/Baku", T_20261127 + 20 * HOUR, 20785 },
	/* New York is UTC-5 in November. */
	{ "America/New_York", T_20261127, 20783 },
	{ "America/New_York", T_20261127 + 5 * HOUR - 1, 20783 },
	{ "America/New_York", T_20261127 + 5 * HOUR, 20784 },
};

static void
test_day_of(void)
{
	size_t	 i;

	for (i = 0; i < sizeof(day_of_cases) / sizeof(day_of_cases[0]); i++) {
		const struct day_of_case	*c = &day_of_cases[i];

		CHECK_INT(day_set_timezone(c->zone), 0);
		if (day_of(c->t) != c->day)
			fprintf(stderr, "%s at %lld\n", c->zone,
			    (long long)c->t);
		CHECK_INT(day_of(c->t), c->day);
	}
}

struct midnight_case {
	const char	*zone;
	time_t		 t;
	long		 secs;
};

static const struct midnight_case midnight_cases[] = {
	{ "UTC", T_20261127, 24 * HOUR },
	{ "UTC", T_20261127 - 1, 1 },
	{ "UTC", T_20261127 + HOUR, 23 * HOUR },
	{ "UTC", T_20261127 + 90061, 86400 - 3661 },
	{ "Asia/Baku", T_20261127, 20 * HOUR },
	{ "Asia/Baku", T_20261127 + 20 * HOUR - 1, 1 },
	{ "Asia/Baku", T_20261127 + 20 * HOUR, 24 * HOUR },
	/* Berlin, 2026-03-29 00:00 CET: clocks go forward at 02:00, the
	 * day has 23 hours. */
	{ "Europe/Berlin", 1774738800, 23 * HOUR },
	/* 2026-10-25 00:00 CEST (2026-10-24 22:00 UTC): 25 hours. */
	{ "Europe/Berlin", 1792879200, 25 * HOUR },
	/* Sao Paulo 2018-11-03 12:00 -03: at midnight clocks jumped to
	 * 01:00, which is then the first second of 2018-11-04. */
	{ "America/Sao_Paulo", 1541257200, 12 * HOUR },
	{ "America/Sao_Paulo", 1541300399, 1 },
	/* 2019-02-16 12:00 -02: at midnight clocks went back to 23:00, so
	 * 2019-02-17 began an hour later. */
	{ "America/Sao_Paulo", 1550325600, 13 * HOUR },
	{ "America/Sao_Paulo", 1550368799, HOUR + 1 },	/* 23:59:59 -02 */
	{ "America/Sao_Paulo", 1550372399, 1 },		/* 23:59:59 -03 */
};

static void
test_midnight(void)
{
	size_t	 i;
	long	 s;

	for (i = 0; i < sizeof(midnight_cases) / sizeof(midnight_cases[0]);
	    i++) {
		const struct midnight_case	*c = &midnight_cases[i];

		CHECK_INT(day_set_timezone(c->zone), 0);
		s = day_seconds_to_midnight(c->t);
		if (s != c->secs)
			fprintf(stderr, "%s at %lld\n", c->zone,
			    (long long)c->t);
		CHECK_INT(s, c->secs);
		/* The answer is the first second of the next day. */
		CHECK_INT(day_of(c->t + s), day_of(c->t) + 1);
		CHECK_INT(day_of(c->t + s - 1), day_of(c->t));
	}
}

static void
test_today_and_restore(void)
{
	time_t	 before, after;
	int	 today;

	CHECK_INT(day_set_timezone("UTC"), 0);
	before = time(NULL);
	today = day_today();
	after = time(NULL);
	CHECK(today == (int)(before / 86400) || today == (int)(after / 86400));

	/* No zone configured: back to the TZ the process started with,
	 * which main() set to Baku. */
	CHECK_INT(day_set_timezone(NULL), 0);
	CHECK_STR(getenv("TZ"), "Asia/Baku");
	CHECK_INT(day_of(T_20261127 - 1), 20784);
	CHECK_INT(day_set_timezone("UTC"), 0);
	CHECK_INT(day_of(T_20261127 - 1), 20783);
	CHECK_INT(day_set_timezone(""), 0);
	CHECK_INT(day_of(T_20261127 - 1), 20784);
	/* A bad zone changes nothing. */
	CHECK_INT(day_set_timezone("Nowhere/City"), -1);
	CHECK_STR(getenv("TZ"), "Asia/Baku");
}

int
main(void)
{
	/* The "host's zone" for this test. */
	setenv("TZ", "Asia/Baku", 1);
	tzset();

	test_zones();
	test_format_parse();
	test_day_of();
	test_midnight();
	test_today_and_restore();
	return check_done();
}
