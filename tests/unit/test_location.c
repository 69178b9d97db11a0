/* Store locations: which are URLs, and how they are shown without a
 * password. */

#include <string.h>

#include "tally/location.h"
#include "check.h"

struct shown_case {
	const char	*in;
	const char	*want;
};

static const struct shown_case shown_cases[] = {
	{ "./tally-data", "./tally-data" },
	{ "/var/lib/tally", "/var/lib/tally" },
	{ "postgresql://db.example/tally", "postgresql://db.example/tally" },
	{ "postgresql://tally@db.example/tally",
	    "postgresql://tally@db.example/tally" },
	{ "postgresql://tally:s3cret@db.example:5432/tally",
	    "postgresql://tally:***@db.example:5432/tally" },
	{ "postgres://tally:a%40b@h1:5432,h2:5432/tally?"
	    "target_session_attrs=read-write",
	    "postgres://tally:***@h1:5432,h2:5432/tally?"
	    "target_session_attrs=read-write" },
	{ "postgresql://h/tally?password=s3cret&sslmode=require",
	    "postgresql://h/tally?password=***&sslmode=require" },
	{ "postgresql://u:p@h/tally?sslmode=require&PASSWORD=p",
	    "postgresql://u:***@h/tally?sslmode=require&password=***" },
	/* An '@' after the authority is not user information. */
	{ "postgresql://h/tally?application_name=a@b",
	    "postgresql://h/tally?application_name=a@b" },
	{ "POSTGRESQL://u:pw@h", "POSTGRESQL://u:***@h" },
	{ "postgresql://", "postgresql://" },
	{ "postgresql://u:@h", "postgresql://u:***@h" },
};

int
main(void)
{
	char buf[256], small[16];
	size_t i;

	CHECK(location_is_url("postgresql://h/db"));
	CHECK(location_is_url("postgres://h/db"));
	CHECK(location_is_url("PostgreSQL://h/db"));
	CHECK(!location_is_url("./tally-data"));
	CHECK(!location_is_url("postgresql:/h"));
	CHECK(!location_is_url("mysql://h/db"));
	CHECK(!location_is_url(NULL));
	for (i = 0; i < sizeof(shown_cases) / sizeof(shown_cases[0]); i++)
		CHECK_STR(location_shown(buf, sizeof(buf), shown_cases[i].in),
		    shown_cases[i].want);
	/* Cut short, it says so, and still shows no password. */
	location_shown(small, sizeof(small), "postgresql://u:secret@h/db");
	CHECK_STR(small, "postgresql:/...");
	CHECK(strstr(small, "secret") == NULL);
	location_shown(small, sizeof(small), "postgresql://averyveryverylonghost/x?password=abc");
	CHECK(strstr(small, "abc") == NULL);
	return check_done();
}
