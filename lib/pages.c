/*
 * The max_pages rule, in one place for tallyd and import-log. A junk
 * path is typically made by one client; a real page is read by many.
 * Asking for three addresses (an IPv6 /64 being one) on one day keeps
 * one client, however it rotates its User-Agent, from adding a single
 * path past the cap, and the daily allowance bounds what many clients
 * together can add: the store grows by at most page_admit_per_day()
 * paths a site a day once it is full.
 */
#include <string.h>

#include "tally/pages.h"
#include "tally/path.h"

long
page_admit_per_day(long max_pages)
{
	return max_pages / 100 > 10 ? max_pages / 100 : 10;
}

bool
page_gets_series(const struct page_cap *cap, const char *path)
{
	if (strcmp(path, PATH_OTHER) == 0 || cap->max_pages <= 0 ||
	    cap->npages < cap->max_pages)
		return true;
	return cap->addresses >= PAGE_ADMIT_ADDRESSES &&
	    cap->admitted < page_admit_per_day(cap->max_pages);
}
