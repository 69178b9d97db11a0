/*
 * How many pages a site keeps apart: until it holds max_pages paths,
 * every new path gets a series of its own. Past them, junk cannot lock
 * real pages out for good, nor grow the store without bound: a new
 * path gets its own series once PAGE_ADMIT_ADDRESSES distinct client
 * addresses have viewed it on one day, at most page_admit_per_day()
 * paths a day; until then its views count under PATH_OTHER. tallyd and
 * tallyctl import-log both decide by page_gets_series().
 */
#ifndef TALLY_PAGES_H
#define TALLY_PAGES_H

#include <stdbool.h>

#define PAGE_ADMIT_ADDRESSES	3

struct page_cap {
	long	 max_pages;	/* the site's cap; 0: none */
	long	 npages;	/* distinct paths the site holds */
	long	 admitted;	/* paths admitted past the cap this day */
	long	 addresses;	/* distinct addresses on the path this day,
				 * this view's included */
};

/* Paths admitted past max_pages per site and day: 1% of it, at least
 * 10. */
long page_admit_per_day(long max_pages);

/* Whether a view of path, which the site does not hold yet, makes it a
 * page of its own (else it counts under PATH_OTHER). With addresses 0,
 * true only while the site is not full: then nothing more need be
 * known. */
bool page_gets_series(const struct page_cap *, const char *path);

#endif
