/*
 * FNV-1a, 64 bits: for hash tables, ETags and the fixed-length names of
 * long keys, where the input is not secret and speed matters. What must
 * not be guessed (visitor ids, the rate tables' keys) goes through
 * SipHash under a random key instead (libsodium's crypto_shorthash).
 */
#ifndef TALLY_HASH_H
#define TALLY_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV1A_INIT	0xcbf29ce484222325ULL

/* Continues h over len bytes; start with HASH_FNV1A_INIT. */
static inline uint64_t
hash_fnv1a(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

#endif
