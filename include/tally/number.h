/* Decimal numbers as tally reads them from people and files. */
#ifndef TALLY_NUMBER_H
#define TALLY_NUMBER_H

#include <stddef.h>
#include <stdint.h>

/*
 * s[0..len) as a number from 0 to max: digits only, so "", "+3", " 4",
 * "-1", "12abc" and "0x10" are not numbers, and one too large for max is
 * refused rather than cut. Returns 0 with *out set, or -1.
 */
int number_parse(const char *s, size_t len, uint64_t max, uint64_t *out);

#endif
