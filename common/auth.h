/*
 * Cluster authentication primitives: the shared cluster key, HMAC-SHA256
 * (OpenSSL libcrypto), random nonces and tokens, and constant-time comparison.
 * The challenge-response exchange itself lives with each protocol.
 */
#ifndef LEGATO_COMMON_AUTH_H
#define LEGATO_COMMON_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_MAC_LEN 32
#define AUTH_KEY_MIN 16
#define AUTH_KEY_MAX 4096

struct auth_key {
	size_t len;
	uint8_t bytes[AUTH_KEY_MAX];
};

/*
 * Loads a key file: its whole contents, minus one trailing newline, must be
 * AUTH_KEY_MIN..AUTH_KEY_MAX bytes. Returns 0, -EINVAL for a key of the wrong
 * size, or -errno from reading.
 */
int auth_key_load(const char *path, struct auth_key *key);

/* For main-level set-up: auth_key_load or die with a one-line message. */
void auth_key_load_or_die(const char *path, struct auth_key *key);

/* out = HMAC-SHA256(key, a || b || c); b and c may be NULL with length 0. */
void auth_hmac(const struct auth_key *key, const void *a, size_t alen, const void *b,
	       size_t blen, const void *c, size_t clen, uint8_t out[AUTH_MAC_LEN]);

/* Fills buf with cryptographically random bytes. Returns 0 or -EIO. */
int auth_random(void *buf, size_t len);

/* Constant-time equality of two buffers of length len. */
int auth_equal(const void *a, const void *b, size_t len);

#endif
