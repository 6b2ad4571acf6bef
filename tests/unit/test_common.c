/*
 * Unit tests of common/: size and number parsing, endpoint URLs, hex, the
 * latency histogram, the byte buffer, the wire cursor, HMAC and key files.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/auth.h"
#include "common/buf.h"
#include "common/hist.h"
#include "common/log.h"
#include "common/url.h"
#include "common/util.h"
#include "common/wire.h"

/* ---- parse_size / parse_u64 ------------------------------------------- */

START_TEST(size_suffixes)
{
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
		{ "0", 0 },
		{ "4096", 4096 },
		{ "1K", 1ull << 10 },
		{ "1k", 1ull << 10 },
		{ "3M", 3ull << 20 },
		{ "16G", 16ull << 30 },
		{ "2T", 2ull << 40 },
		{ "1KiB", 1ull << 10 },
		{ "64MiB", 64ull << 20 },
		{ "64mib", 64ull << 20 },
		{ "8GB", 8ull << 30 },
		{ "8gb", 8ull << 30 },
		{ "18446744073709551615", UINT64_MAX },
		{ "16777215T", 16777215ull << 40 },
		{ "17179869183G", 17179869183ull << 30 },
	};

	for (unsigned i = 0; i < ARRAY_SIZE(good); i++) {
		uint64_t v = 12345;

		ck_assert_msg(parse_size(good[i].s, &v) == 0, "parse_size(%s) failed", good[i].s);
		ck_assert_msg(v == good[i].v, "parse_size(%s) = %llu", good[i].s,
			      (unsigned long long)v);
	}
}
END_TEST

START_TEST(size_bad_input)
{
	static const char *const bad[] = {
		"", "K", "-1", " 1", "1 ", "1.5G", "12Q", "1KK", "1Ki", "1KiBx", "1Kb ", "0x10",
		"1E", "1P", "G1", "+5", "1B", "1iB", "1K B",
	};
	uint64_t v = 77;

	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++)
		ck_assert_msg(parse_size(bad[i], &v) == -EINVAL, "parse_size(\"%s\") accepted",
			      bad[i]);
	ck_assert_int_eq(parse_size(NULL, &v), -EINVAL);
	ck_assert_uint_eq(v, 77);
}
END_TEST

START_TEST(size_overflow)
{
	uint64_t v = 77;

	ck_assert_int_eq(parse_size("18446744073709551616", &v), -ERANGE);
	ck_assert_int_eq(parse_size("99999999999999999999999", &v), -ERANGE);
	ck_assert_int_eq(parse_size("16777216T", &v), -ERANGE);
	ck_assert_int_eq(parse_size("17179869184G", &v), -ERANGE);
	ck_assert_int_eq(parse_size("18014398509481984K", &v), -ERANGE);
	ck_assert_int_eq(parse_size("18446744073709551615K", &v), -ERANGE);
	ck_assert_uint_eq(v, 77);
}
END_TEST

START_TEST(u64_parse)
{
	uint64_t v = 0;

	ck_assert_int_eq(parse_u64("0", &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(parse_u64("12345", &v), 0);
	ck_assert_uint_eq(v, 12345);
	ck_assert_int_eq(parse_u64("0x1f", &v), 0);
	ck_assert_uint_eq(v, 31);
	ck_assert_int_eq(parse_u64("0XFF", &v), 0);
	ck_assert_uint_eq(v, 255);
	ck_assert_int_eq(parse_u64("18446744073709551615", &v), 0);
	ck_assert_uint_eq(v, UINT64_MAX);
	ck_assert_int_eq(parse_u64("0xffffffffffffffff", &v), 0);
	ck_assert_uint_eq(v, UINT64_MAX);

	v = 99;
	ck_assert_int_eq(parse_u64("18446744073709551616", &v), -ERANGE);
	ck_assert_int_eq(parse_u64("0x10000000000000000", &v), -ERANGE);
	ck_assert_int_eq(parse_u64("", &v), -EINVAL);
	ck_assert_int_eq(parse_u64(NULL, &v), -EINVAL);
	ck_assert_int_eq(parse_u64("-1", &v), -EINVAL);
	ck_assert_int_eq(parse_u64(" 1", &v), -EINVAL);
	ck_assert_int_eq(parse_u64("1 ", &v), -EINVAL);
	ck_assert_int_eq(parse_u64("12abc", &v), -EINVAL);
	ck_assert_int_eq(parse_u64("0x", &v), -EINVAL);
	ck_assert_int_eq(parse_u64("0xg", &v), -EINVAL);
	ck_assert_int_eq(parse_u64("0x1g", &v), -EINVAL);
	ck_assert_int_eq(parse_u64("1K", &v), -EINVAL);
	ck_assert_uint_eq(v, 99);
}
END_TEST

/* ---- URLs ------------------------------------------------------------- */

START_TEST(url_good)
{
	struct url u;
	char out[300];

	ck_assert_int_eq(url_parse("tcp://127.0.0.1:7000", &u), 0);
	ck_assert_int_eq(u.scheme, URL_TCP);
	ck_assert_str_eq(u.host, "127.0.0.1");
	ck_assert_uint_eq(u.port, 7000);
	url_format(&u, out, sizeof(out));
	ck_assert_str_eq(out, "tcp://127.0.0.1:7000");

	ck_assert_int_eq(url_parse("rdma://10.1.2.3:18515", &u), 0);
	ck_assert_int_eq(u.scheme, URL_RDMA);
	ck_assert_str_eq(u.host, "10.1.2.3");
	ck_assert_uint_eq(u.port, 18515);
	url_format(&u, out, sizeof(out));
	ck_assert_str_eq(out, "rdma://10.1.2.3:18515");

	ck_assert_int_eq(url_parse("tcp://[::1]:0", &u), 0);
	ck_assert_str_eq(u.host, "::1");
	ck_assert_uint_eq(u.port, 0);
	url_format(&u, out, sizeof(out));
	ck_assert_str_eq(out, "tcp://[::1]:0");

	ck_assert_int_eq(url_parse("tcp://[fe80::1:2]:65535", &u), 0);
	ck_assert_str_eq(u.host, "fe80::1:2");
	ck_assert_uint_eq(u.port, 65535);
	url_format(&u, out, sizeof(out));
	ck_assert_str_eq(out, "tcp://[fe80::1:2]:65535");

	ck_assert_int_eq(url_parse("tcp://memserver-3.example:1", &u), 0);
	ck_assert_str_eq(u.host, "memserver-3.example");
	ck_assert_uint_eq(u.port, 1);
}
END_TEST

START_TEST(url_bad)
{
	static const char *const bad[] = {
		"",
		"127.0.0.1:7000",
		"udp://127.0.0.1:7000",
		"TCP://127.0.0.1:7000",
		"tcp:/127.0.0.1:7000",
		"tcp://127.0.0.1",
		"tcp://127.0.0.1:",
		"tcp://:7000",
		"tcp://127.0.0.1:65536",
		"tcp://127.0.0.1:99999999999999999999999",
		"tcp://127.0.0.1:-1",
		"tcp://127.0.0.1:+80",
		"tcp://127.0.0.1:80x",
		"tcp://127.0.0.1:0x50",
		"tcp://127.0.0.1: 80",
		"tcp://[::1]",
		"tcp://[::1]:",
		"tcp://[::1]80",
		"tcp://[]:80",
		"tcp://[::1:80",
		"rdma://",
	};
	char longhost[400];
	struct url u;

	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++)
		ck_assert_msg(url_parse(bad[i], &u) == -EINVAL, "url_parse(\"%s\") accepted",
			      bad[i]);
	/* A host that does not fit struct url. */
	strcpy(longhost, "tcp://");
	memset(longhost + 6, 'a', 300);
	strcpy(longhost + 306, ":80");
	ck_assert_int_eq(url_parse(longhost, &u), -EINVAL);
}
END_TEST

/* ---- hex -------------------------------------------------------------- */

START_TEST(hex_round_trip)
{
	uint8_t in[32], out[32];
	char text[65];

	for (unsigned i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 37 + 5);
	hex_encode(in, sizeof(in), text);
	ck_assert_uint_eq(strlen(text), 64);
	for (unsigned i = 0; i < 64; i++)
		ck_assert(strchr("0123456789abcdef", text[i]));
	ck_assert_int_eq(hex_decode(text, out, sizeof(out)), 0);
	ck_assert_mem_eq(in, out, sizeof(in));

	hex_encode((const uint8_t *)"\x00\xff\x10", 3, text);
	ck_assert_str_eq(text, "00ff10");
	ck_assert_int_eq(hex_decode("ABcd01", out, 3), 0);
	ck_assert_mem_eq(out, "\xab\xcd\x01", 3);
	hex_encode(in, 0, text);
	ck_assert_str_eq(text, "");
}
END_TEST

START_TEST(hex_bad)
{
	uint8_t out[4];

	ck_assert_int_eq(hex_decode("abc", out, 2), -EINVAL);
	ck_assert_int_eq(hex_decode("abcdef", out, 2), -EINVAL);
	ck_assert_int_eq(hex_decode("", out, 1), -EINVAL);
	ck_assert_int_eq(hex_decode("zz", out, 1), -EINVAL);
	ck_assert_int_eq(hex_decode("0g", out, 1), -EINVAL);
	ck_assert_int_eq(hex_decode(" 0", out, 1), -EINVAL);
	ck_assert_int_eq(hex_decode("0x", out, 1), -EINVAL);
}
END_TEST

/* ---- histogram -------------------------------------------------------- */

/* Every value lands in a bucket whose range holds it, and buckets never go
 * backwards as values grow. */
START_TEST(hist_buckets_monotonic)
{
	unsigned prev = 0;
	const uint64_t top = 1ull << 37;

	for (uint64_t v = 0; v < 200000; v++) {
		unsigned b = hist_bucket(v);

		/* One assertion per value is slow under the sanitizers. */
		if (b < prev || b >= HIST_BUCKETS || hist_bucket_low(b) > v ||
		    hist_bucket_low(b + 1) <= v)
			ck_abort_msg("value %llu in bucket %u [%llu, %llu), previous bucket %u",
				     (unsigned long long)v, b,
				     (unsigned long long)hist_bucket_low(b),
				     (unsigned long long)hist_bucket_low(b + 1), prev);
		prev = b;
	}
	for (unsigned e = 2; e < 64; e++) {
		uint64_t p = 1ull << e;
		const uint64_t probes[] = { p - 1, p, p + 1, p + p / 2, p * 2 - 1 };

		for (unsigned i = 0; i < ARRAY_SIZE(probes); i++) {
			uint64_t v = probes[i];
			unsigned b = hist_bucket(v);

			ck_assert_uint_lt(b, HIST_BUCKETS);
			ck_assert_uint_ge(b, hist_bucket(v - 1));
			if (v < top) {
				ck_assert_uint_le(hist_bucket_low(b), v);
				ck_assert_uint_gt(hist_bucket_low(b + 1), v);
			} else {
				ck_assert_uint_eq(b, HIST_BUCKETS - 1);
			}
		}
	}
	ck_assert_uint_eq(hist_bucket(UINT64_MAX), HIST_BUCKETS - 1);
	for (unsigned b = 1; b < HIST_BUCKETS; b++) {
		ck_assert_uint_gt(hist_bucket_low(b), hist_bucket_low(b - 1));
		ck_assert_uint_eq(hist_bucket(hist_bucket_low(b)), b);
	}
}
END_TEST

#define LOGU_N 20000
static uint64_t logu[LOGU_N];
static const double qs[] = { 0.1, 0.25, 0.5, 0.75, 0.9, 0.99 };

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void assert_close(uint64_t got, uint64_t want, const char *what)
{
	double err = got > want ? (double)(got - want) : (double)(want - got);

	ck_assert_msg(err <= (double)want / 4, "%s: got %llu, want %llu (within 1/4)", what,
		      (unsigned long long)got, (unsigned long long)want);
}

START_TEST(hist_quantiles_known)
{
	static struct hist h;
	uint64_t seed = 88172645463325252ull;

	memset(&h, 0, sizeof(h));
	ck_assert_uint_eq(hist_quantile(&h, 0.5), 0);
	ck_assert_uint_eq(hist_total(&h), 0);

	/* Uniform 1..100000. */
	for (uint64_t v = 1; v <= 100000; v++)
		hist_add(&h, v);
	ck_assert_uint_eq(hist_total(&h), 100000);
	assert_close(hist_quantile(&h, 0.5), 50000, "uniform p50");
	assert_close(hist_quantile(&h, 0.9), 90000, "uniform p90");
	assert_close(hist_quantile(&h, 0.99), 99000, "uniform p99");
	assert_close(hist_quantile(&h, 0.01), 1000, "uniform p1");
	assert_close(hist_quantile(&h, 1.0), 100000, "uniform max");
	assert_close(hist_quantile(&h, 0.0), 1, "uniform min");
	/* Out-of-range quantiles clamp. */
	ck_assert_uint_eq(hist_quantile(&h, 2.0), hist_quantile(&h, 1.0));
	ck_assert_uint_eq(hist_quantile(&h, -1.0), hist_quantile(&h, 0.0));

	/* One constant value. */
	memset(&h, 0, sizeof(h));
	for (unsigned i = 0; i < 1000; i++)
		hist_add(&h, 45000);
	assert_close(hist_quantile(&h, 0.0), 45000, "constant p0");
	assert_close(hist_quantile(&h, 0.5), 45000, "constant p50");
	assert_close(hist_quantile(&h, 1.0), 45000, "constant p100");

	/* Two clusters: 90% at 20 us, 10% at 3 ms. */
	memset(&h, 0, sizeof(h));
	for (unsigned i = 0; i < 9000; i++)
		hist_add(&h, 20000);
	for (unsigned i = 0; i < 1000; i++)
		hist_add(&h, 3000000);
	assert_close(hist_quantile(&h, 0.5), 20000, "bimodal p50");
	assert_close(hist_quantile(&h, 0.89), 20000, "bimodal p89");
	assert_close(hist_quantile(&h, 0.95), 3000000, "bimodal p95");
	assert_close(hist_quantile(&h, 0.999), 3000000, "bimodal p99.9");

	/* Small exact values. */
	memset(&h, 0, sizeof(h));
	hist_add(&h, 0);
	hist_add(&h, 1);
	hist_add(&h, 2);
	hist_add(&h, 3);
	ck_assert_uint_eq(hist_quantile(&h, 0.0), 0);
	ck_assert_uint_eq(hist_quantile(&h, 1.0), 3);

	/* Log-uniform values from 1 us to 1 s, compared against the exact
	 * order statistics. */
	memset(&h, 0, sizeof(h));
	for (unsigned i = 0; i < LOGU_N; i++) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		logu[i] = 1000ull << (seed % 20);
		logu[i] += (seed >> 8) % logu[i];
		hist_add(&h, logu[i]);
	}
	qsort(logu, LOGU_N, sizeof(logu[0]), cmp_u64);
	for (unsigned i = 0; i < ARRAY_SIZE(qs); i++) {
		uint64_t rank = (uint64_t)(qs[i] * (LOGU_N - 1));

		assert_close(hist_quantile(&h, qs[i]), logu[rank], "log-uniform");
	}
}
END_TEST

START_TEST(hist_merge_adds)
{
	static struct hist a, b;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	for (unsigned i = 0; i < 100; i++)
		hist_add(&a, 1000);
	for (unsigned i = 0; i < 300; i++)
		hist_add(&b, 1000000);
	hist_merge(&a, &b);
	ck_assert_uint_eq(hist_total(&a), 400);
	ck_assert_uint_eq(hist_total(&b), 300);
	ck_assert_uint_eq(a.count[hist_bucket(1000)], 100);
	ck_assert_uint_eq(a.count[hist_bucket(1000000)], 300);
	assert_close(hist_quantile(&a, 0.9), 1000000, "merged p90");
	assert_close(hist_quantile(&a, 0.1), 1000, "merged p10");
}
END_TEST

/* ---- buf -------------------------------------------------------------- */

START_TEST(buf_reserve_consume_shrink)
{
	struct buf b = { 0 };
	uint8_t *p;

	ck_assert_uint_eq(buf_len(&b), 0);
	p = buf_reserve(&b, 10);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_ge(b.cap, 10);
	memcpy(p, "0123456789", 10);
	buf_commit(&b, 10);
	ck_assert_uint_eq(buf_len(&b), 10);
	ck_assert_mem_eq(buf_head(&b), "0123456789", 10);

	buf_consume(&b, 4);
	ck_assert_uint_eq(buf_len(&b), 6);
	ck_assert_mem_eq(buf_head(&b), "456789", 6);

	/* Growth keeps the live bytes and drops the consumed prefix. */
	p = buf_reserve(&b, 100000);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_ge(b.cap - b.end, 100000);
	ck_assert_mem_eq(buf_head(&b), "456789", 6);
	memset(p, 'x', 100000);
	buf_commit(&b, 100000);
	ck_assert_uint_eq(buf_len(&b), 100006);
	ck_assert_mem_eq(buf_head(&b), "456789x", 7);

	/* Non-empty: shrink keeps storage. */
	buf_shrink(&b, 0);
	ck_assert_ptr_nonnull(b.data);
	ck_assert_uint_eq(buf_len(&b), 100006);

	/* Consuming everything resets the offsets. */
	buf_consume(&b, 100006);
	ck_assert_uint_eq(buf_len(&b), 0);
	ck_assert_uint_eq(b.start, 0);
	ck_assert_uint_eq(b.end, 0);

	/* Empty and small enough: kept. Empty and larger than keep: freed. */
	buf_shrink(&b, b.cap);
	ck_assert_ptr_nonnull(b.data);
	buf_shrink(&b, 4096);
	ck_assert_ptr_null(b.data);
	ck_assert_uint_eq(b.cap, 0);
	buf_free(&b);
	ck_assert_ptr_null(b.data);
}
END_TEST

/* Reserving after a consumed prefix slides the live bytes instead of
 * growing when they fit. */
START_TEST(buf_compacts)
{
	struct buf b = { 0 };
	uint8_t chunk[1000];
	size_t cap;

	for (unsigned i = 0; i < sizeof(chunk); i++)
		chunk[i] = (uint8_t)i;
	ck_assert_int_eq(buf_append(&b, chunk, sizeof(chunk)), 0);
	cap = b.cap;
	while (b.cap - b.end >= sizeof(chunk))
		ck_assert_int_eq(buf_append(&b, chunk, sizeof(chunk)), 0);
	ck_assert_uint_eq(b.cap, cap);
	buf_consume(&b, b.end - 10);
	ck_assert_ptr_nonnull(buf_reserve(&b, sizeof(chunk)));
	ck_assert_uint_eq(b.cap, cap);
	ck_assert_uint_eq(b.start, 0);
	ck_assert_uint_eq(buf_len(&b), 10);
	ck_assert_mem_eq(buf_head(&b), chunk + sizeof(chunk) - 10, 10);

	/* Many appends grow the buffer and keep every byte in order. */
	buf_consume(&b, buf_len(&b));
	for (unsigned i = 0; i < 3000; i++)
		ck_assert_int_eq(buf_append(&b, chunk, sizeof(chunk)), 0);
	ck_assert_uint_eq(buf_len(&b), 3000 * sizeof(chunk));
	for (unsigned i = 0; i < 3000; i++)
		ck_assert_mem_eq(buf_head(&b) + (size_t)i * sizeof(chunk), chunk, sizeof(chunk));
	buf_free(&b);
}
END_TEST

/* buf.h: "Returns NULL when memory runs out." A request no allocation can
 * satisfy must fail, not spin while the doubling capacity wraps to zero. */
START_TEST(buf_reserve_impossible)
{
	struct buf b = { 0 };

	ck_assert_int_eq(buf_append(&b, "abc", 3), 0);
	ck_assert_ptr_null(buf_reserve(&b, SIZE_MAX / 2 + 2));
	ck_assert_uint_eq(buf_len(&b), 3);
	buf_free(&b);
}
END_TEST

/* ---- wire ------------------------------------------------------------- */

START_TEST(wire_le_layout)
{
	uint8_t b[8];

	put_le16(b, 0x1234);
	ck_assert_mem_eq(b, "\x34\x12", 2);
	put_le32(b, 0x12345678);
	ck_assert_mem_eq(b, "\x78\x56\x34\x12", 4);
	put_le64(b, 0x0102030405060708ull);
	ck_assert_mem_eq(b, "\x08\x07\x06\x05\x04\x03\x02\x01", 8);
	ck_assert_uint_eq(get_le64(b), 0x0102030405060708ull);
	ck_assert_uint_eq(get_le32(b), 0x05060708);
	ck_assert_uint_eq(get_le16(b), 0x0708);
}
END_TEST

START_TEST(wire_reader_bounds)
{
	uint8_t data[15], out[8];
	struct wire_reader r;

	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i + 1);
	wire_reader_init(&r, data, sizeof(data));
	ck_assert_uint_eq(wire_get64(&r), 0x0807060504030201ull);
	ck_assert_uint_eq(wire_get32(&r), 0x0c0b0a09);
	ck_assert_uint_eq(wire_get16(&r), 0x0e0d);
	ck_assert(r.ok);
	ck_assert_uint_eq(r.left, 1);
	/* Short read: fails, yields zero, does not advance. */
	ck_assert_uint_eq(wire_get16(&r), 0);
	ck_assert(!r.ok);
	ck_assert_uint_eq(r.left, 1);
	/* Sticky: even a read that would fit now fails. */
	ck_assert_ptr_null(wire_take(&r, 1));
	ck_assert_uint_eq(wire_get16(&r), 0);
	memset(out, 0xaa, sizeof(out));
	wire_get_bytes(&r, out, sizeof(out));
	ck_assert_mem_eq(out, "\0\0\0\0\0\0\0\0", 8);

	/* Exactly consuming everything is fine; zero-length takes succeed. */
	wire_reader_init(&r, data, 8);
	ck_assert_ptr_nonnull(wire_take(&r, 0));
	wire_get_bytes(&r, out, 8);
	ck_assert(r.ok);
	ck_assert_uint_eq(r.left, 0);
	ck_assert_mem_eq(out, data, 8);
	ck_assert_uint_eq(wire_get32(&r), 0);
	ck_assert(!r.ok);

	/* A huge take never wraps. */
	wire_reader_init(&r, data, sizeof(data));
	ck_assert_ptr_null(wire_take(&r, SIZE_MAX));
	ck_assert(!r.ok);
	ck_assert_uint_eq(r.left, sizeof(data));

	wire_reader_init(&r, NULL, 0);
	ck_assert_uint_eq(wire_get64(&r), 0);
	ck_assert(!r.ok);
}
END_TEST

/* ---- auth ------------------------------------------------------------- */

static void hex_to(const char *hex, uint8_t *out, size_t len)
{
	ck_assert_int_eq(hex_decode(hex, out, len), 0);
}

/* RFC 4231 test cases 1 and 2, with the message split across a, b and c. */
START_TEST(auth_hmac_vectors)
{
	static struct auth_key key;
	uint8_t mac[AUTH_MAC_LEN], want[AUTH_MAC_LEN];
	const char *msg = "what do ya want for nothing?";

	memset(&key, 0, sizeof(key));
	key.len = 4;
	memcpy(key.bytes, "Jefe", 4);
	hex_to("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", want, 32);
	auth_hmac(&key, msg, strlen(msg), NULL, 0, NULL, 0, mac);
	ck_assert_mem_eq(mac, want, 32);
	auth_hmac(&key, msg, 4, msg + 4, 10, msg + 14, strlen(msg) - 14, mac);
	ck_assert_mem_eq(mac, want, 32);
	auth_hmac(&key, msg, 1, msg + 1, strlen(msg) - 1, NULL, 0, mac);
	ck_assert_mem_eq(mac, want, 32);

	key.len = 20;
	memset(key.bytes, 0x0b, 20);
	hex_to("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", want, 32);
	auth_hmac(&key, "Hi", 2, " There", 6, NULL, 0, mac);
	ck_assert_mem_eq(mac, want, 32);
}
END_TEST

/* The handshake's use: label (with its NUL) || nonce || nonce, checked against
 * OpenSSL's one-shot HMAC. */
START_TEST(auth_hmac_matches_openssl)
{
	static struct auth_key key;
	uint8_t n1[32], n2[32], msg[12 + 64], mac[32], want[32];
	unsigned int wlen = sizeof(want);
	static const char label[] = "legato-ms-c";

	memset(&key, 0, sizeof(key));
	key.len = 40;
	ck_assert_int_eq(auth_random(key.bytes, key.len), 0);
	ck_assert_int_eq(auth_random(n1, sizeof(n1)), 0);
	ck_assert_int_eq(auth_random(n2, sizeof(n2)), 0);
	ck_assert_mem_ne(n1, n2, sizeof(n1));
	memcpy(msg, label, sizeof(label));
	memcpy(msg + sizeof(label), n1, 32);
	memcpy(msg + sizeof(label) + 32, n2, 32);
	auth_hmac(&key, label, sizeof(label), n1, 32, n2, 32, mac);
	HMAC(EVP_sha256(), key.bytes, (int)key.len, msg, sizeof(label) + 64, want, &wlen);
	ck_assert_uint_eq(wlen, 32);
	ck_assert_mem_eq(mac, want, 32);

	ck_assert(auth_equal(mac, want, 32));
	mac[31] ^= 1;
	ck_assert(!auth_equal(mac, want, 32));
	ck_assert(auth_equal(mac, want, 0));
}
END_TEST

static char tmpdir[] = "/tmp/legato-ut-XXXXXX";

static void make_tmpdir(void)
{
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static const char *write_tmp(const char *name, const void *data, size_t len)
{
	static char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
	return path;
}

START_TEST(auth_key_files)
{
	static struct auth_key key;
	static char big[AUTH_KEY_MAX + 2];

	make_tmpdir();
	/* 15 bytes: too short, with or without newline. */
	ck_assert_int_eq(auth_key_load(write_tmp("k1", "0123456789abcde", 15), &key), -EINVAL);
	ck_assert_int_eq(auth_key_load(write_tmp("k2", "0123456789abcde\n", 16), &key),
			 -EINVAL);
	ck_assert_int_eq(auth_key_load(write_tmp("k3", "", 0), &key), -EINVAL);
	/* 16 bytes plus the newline an editor adds: the newline is not key. */
	ck_assert_int_eq(auth_key_load(write_tmp("k4", "0123456789abcdef\n", 17), &key), 0);
	ck_assert_uint_eq(key.len, 16);
	ck_assert_mem_eq(key.bytes, "0123456789abcdef", 16);
	ck_assert_int_eq(auth_key_load(write_tmp("k5", "0123456789abcdef", 16), &key), 0);
	ck_assert_uint_eq(key.len, 16);
	/* Only one newline is stripped. */
	ck_assert_int_eq(auth_key_load(write_tmp("k6", "0123456789abcdef\n\n", 18), &key), 0);
	ck_assert_uint_eq(key.len, 17);
	ck_assert_mem_eq(key.bytes, "0123456789abcdef\n", 17);
	/* Binary keys are fine. */
	ck_assert_int_eq(auth_key_load(write_tmp("k7", "\0\1\2\3\4\5\6\7\0\1\2\3\4\5\6\7\0", 17),
				       &key),
			 0);
	ck_assert_uint_eq(key.len, 17);
	/* Upper bound: AUTH_KEY_MAX (+ newline) accepted, one more rejected. */
	memset(big, 'k', sizeof(big));
	ck_assert_int_eq(auth_key_load(write_tmp("k8", big, AUTH_KEY_MAX), &key), 0);
	ck_assert_uint_eq(key.len, AUTH_KEY_MAX);
	big[AUTH_KEY_MAX] = '\n';
	ck_assert_int_eq(auth_key_load(write_tmp("k9", big, AUTH_KEY_MAX + 1), &key), 0);
	ck_assert_uint_eq(key.len, AUTH_KEY_MAX);
	big[AUTH_KEY_MAX] = 'k';
	ck_assert_int_eq(auth_key_load(write_tmp("k10", big, AUTH_KEY_MAX + 1), &key), -EINVAL);
	ck_assert_int_eq(auth_key_load(write_tmp("k11", big, AUTH_KEY_MAX + 2), &key), -EINVAL);
	/* Missing file and a directory: -errno from reading. */
	{
		char path[600];

		snprintf(path, sizeof(path), "%s/absent", tmpdir);
		ck_assert_int_eq(auth_key_load(path, &key), -ENOENT);
		ck_assert_int_eq(auth_key_load(tmpdir, &key), -EISDIR);
	}
	for (unsigned i = 1; i <= 11; i++) {
		char path[600];

		snprintf(path, sizeof(path), "%s/k%u", tmpdir, i);
		unlink(path);
	}
	rmdir(tmpdir);
}
END_TEST

/* ---- misc util -------------------------------------------------------- */

START_TEST(fd_helpers)
{
	int fds[2];
	uint8_t out[64];

	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(write_full(fds[1], "hello world", 11), 0);
	ck_assert_int_eq(read_full(fds[0], out, 5), 0);
	ck_assert_mem_eq(out, "hello", 5);
	close(fds[1]);
	ck_assert_int_eq(read_upto(fds[0], out, sizeof(out)), 6);
	ck_assert_mem_eq(out, " world", 6);
	ck_assert_int_eq(read_full(fds[0], out, 1), -EPIPE);
	close(fds[0]);
	ck_assert_int_eq(read_full(-1, out, 1), -EBADF);

	{
		enum log_level l = LOG_ERROR;

		ck_assert_int_eq(log_parse_level("debug", &l), 0);
		ck_assert_int_eq(l, LOG_DEBUG);
		ck_assert_int_eq(log_parse_level("warn", &l), 0);
		ck_assert_int_eq(l, LOG_WARN);
		ck_assert_int_eq(log_parse_level("loud", &l), -EINVAL);
	}
	ck_assert_uint_le(now_ns(), now_ns());
}
END_TEST

static Suite *common_suite(void)
{
	Suite *s = suite_create("common");
	TCase *tc;

	tc = tcase_create("parse");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, size_suffixes);
	tcase_add_test(tc, size_bad_input);
	tcase_add_test(tc, size_overflow);
	tcase_add_test(tc, u64_parse);
	tcase_add_test(tc, url_good);
	tcase_add_test(tc, url_bad);
	tcase_add_test(tc, hex_round_trip);
	tcase_add_test(tc, hex_bad);
	suite_add_tcase(s, tc);

	tc = tcase_create("hist");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, hist_buckets_monotonic);
	tcase_add_test(tc, hist_quantiles_known);
	tcase_add_test(tc, hist_merge_adds);
	suite_add_tcase(s, tc);

	tc = tcase_create("buf");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, buf_reserve_consume_shrink);
	tcase_add_test(tc, buf_compacts);
	tcase_add_test(tc, wire_le_layout);
	tcase_add_test(tc, wire_reader_bounds);
	suite_add_tcase(s, tc);

	/* Separate so that a hang costs only its own short timeout. */
	tc = tcase_create("buf_limits");
	tcase_set_timeout(tc, 3);
	tcase_add_test(tc, buf_reserve_impossible);
	suite_add_tcase(s, tc);

	tc = tcase_create("auth");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, auth_hmac_vectors);
	tcase_add_test(tc, auth_hmac_matches_openssl);
	tcase_add_test(tc, auth_key_files);
	tcase_add_test(tc, fd_helpers);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(common_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
