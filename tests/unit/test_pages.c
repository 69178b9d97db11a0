/* The max_pages rule: room, admission past the cap, the daily bound. */

#include "tally/pages.h"
#include "tally/path.h"
#include "check.h"

static bool
gets(long max, long npages, long admitted, long addresses, const char *path)
{
	struct page_cap cap = { max, npages, admitted, addresses };

	return page_gets_series(&cap, path);
}

int
main(void)
{
	/* Room: every path, whoever views it. */
	CHECK(gets(5, 0, 0, 0, "/a"));
	CHECK(gets(5, 4, 0, 0, "/a"));
	/* Full: not with fewer than PAGE_ADMIT_ADDRESSES addresses. */
	CHECK(!gets(5, 5, 0, 0, "/a"));
	CHECK(!gets(5, 5, 0, PAGE_ADMIT_ADDRESSES - 1, "/a"));
	CHECK(gets(5, 5, 0, PAGE_ADMIT_ADDRESSES, "/a"));
	CHECK(gets(5, 9, 0, PAGE_ADMIT_ADDRESSES, "/a"));
	/* ... and not past the day's allowance. */
	CHECK(gets(5, 5, 9, PAGE_ADMIT_ADDRESSES, "/a"));
	CHECK(!gets(5, 5, 10, PAGE_ADMIT_ADDRESSES, "/a"));
	/* /(other) itself always has its series; 0 is no cap. */
	CHECK(gets(5, 5, 10, 0, PATH_OTHER));
	CHECK(gets(0, 1000000, 0, 0, "/a"));
	/* 1% of max_pages a day, at least 10. */
	CHECK_INT(page_admit_per_day(1), 10);
	CHECK_INT(page_admit_per_day(1099), 10);
	CHECK_INT(page_admit_per_day(100000), 1000);
	return check_done();
}
