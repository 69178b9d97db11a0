/* The one decimal reader: digits only, within max, never cut. */

#include <stdint.h>
#include <string.h>

#include "tally/buf.h"
#include "tally/number.h"
#include "check.h"

static int
parse(const char *s, uint64_t max, uint64_t *out)
{
	return number_parse(s, strlen(s), max, out);
}

int
main(void)
{
	static const char *const bad[] = {
		"", "+3", " 4", "4 ", "-1", "12abc", "0x10", "1e3", "1.5",
		"18446744073709551616", "99999999999999999999999",
	};
	uint64_t v;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_INT(parse(bad[i], UINT64_MAX, &v), -1);
	CHECK_INT(parse("0", 10, &v), 0);
	CHECK(v == 0);
	CHECK_INT(parse("10", 10, &v), 0);
	CHECK(v == 10);
	CHECK_INT(parse("11", 10, &v), -1);
	CHECK_INT(parse("18446744073709551615", UINT64_MAX, &v), 0);
	CHECK(v == UINT64_MAX);
	CHECK_INT(parse("9223372036854775807", INT64_MAX, &v), 0);
	CHECK(v == INT64_MAX);
	CHECK_INT(parse("9223372036854775808", INT64_MAX, &v), -1);
	CHECK_INT(number_parse("123", 2, 1000, &v), 0);	/* only len bytes */
	CHECK(v == 12);
	CHECK_INT(number_parse(NULL, 0, 10, &v), -1);
	/* and written back: u64_text against the reader, over every digit
	 * count and both ends */
	{
		uint64_t vs[] = { 0, 7, 10, 42, 99, 100, 101, 999, 1000, 12345,
		    100000, 9876543210ULL, 10000000000000000000ULL,
		    UINT64_MAX };
		char text[21];
		uint64_t back;
		size_t k, n;

		for (k = 0; k < sizeof(vs) / sizeof(vs[0]); k++) {
			n = u64_text(text, vs[k]);
			text[n] = '\0';
			CHECK(number_parse(text, n, UINT64_MAX, &back) == 0);
			CHECK(back == vs[k]);
			CHECK(n == 1 || text[0] != '0');
		}
		CHECK(u64_text(text, UINT64_MAX) == 20);
		CHECK(memcmp(text, "18446744073709551615", 20) == 0);
	}
	return check_done();
}
