/*
 * HMAC, randomness and key loading for cluster authentication (see auth.h),
 * all delegated to OpenSSL's libcrypto.
 */
#include "common/auth.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "common/log.h"
#include "common/util.h"

int auth_key_load(const char *path, struct auth_key *key)
{
	uint8_t *buf;
	size_t len;
	int ret;

	ret = read_file(path, AUTH_KEY_MAX + 1, &buf, &len);
	if (ret == -EFBIG)
		return -EINVAL;
	if (ret)
		return ret;
	if (len && buf[len - 1] == '\n')
		len--;
	if (len < AUTH_KEY_MIN || len > AUTH_KEY_MAX) {
		free(buf);
		return -EINVAL;
	}
	memcpy(key->bytes, buf, len);
	key->len = len;
	OPENSSL_cleanse(buf, len);
	free(buf);
	return 0;
}

void auth_key_load_or_die(const char *path, struct auth_key *key)
{
	int ret = auth_key_load(path, key);

	if (ret == -EINVAL)
		die("key file %s must hold %d to %d bytes", path, AUTH_KEY_MIN, AUTH_KEY_MAX);
	if (ret)
		die("cannot read key file %s: %s", path, strerror(-ret));
}

void auth_hmac(const struct auth_key *key, const void *a, size_t alen, const void *b,
	       size_t blen, const void *c, size_t clen, uint8_t out[AUTH_MAC_LEN])
{
	uint8_t msg[512];
	unsigned int outlen = AUTH_MAC_LEN;

	/* Callers hash nonces and fixed labels: a few dozen bytes. */
	if (alen + blen + clen > sizeof(msg))
		abort();
	memcpy(msg, a, alen);
	if (blen)
		memcpy(msg + alen, b, blen);
	if (clen)
		memcpy(msg + alen + blen, c, clen);
	HMAC(EVP_sha256(), key->bytes, (int)key->len, msg, alen + blen + clen, out, &outlen);
	OPENSSL_cleanse(msg, sizeof(msg));
}

int auth_random(void *buf, size_t len)
{
	return RAND_bytes(buf, (int)len) == 1 ? 0 : -EIO;
}

int auth_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}
