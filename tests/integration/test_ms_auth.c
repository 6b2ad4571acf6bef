/*
 * Integration tests of memory-server authentication: a daemon started with
 * --auth-key-file admits only clients that prove the key, closes raw
 * connections that skip or fail the handshake, and keeps serving others.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "common/wire.h"
#include "tests/integration/harness.h"

static const char key_text[] = "correct horse battery staple 0123456789";
static struct auth_key good, wrong;

static void fixture_keyed(void)
{
	static char with_nl[sizeof(key_text) + 1];
	const char *extra[] = { "--auth-key-file", NULL, NULL };
	size_t len = strlen(key_text);

	memset(&D, 0, sizeof(D));
	/* The client loads the key from a file without a newline... */
	ck_assert_int_eq(auth_key_load(daemon_file(&D, "client.key", key_text, len), &good), 0);
	ck_assert_uint_eq(good.len, len);
	wrong = good;
	wrong.bytes[5] ^= 0x20;
	/* ...the server from one that ends in a newline, as editors write it. */
	memcpy(with_nl, key_text, len);
	with_nl[len] = '\n';
	extra[1] = daemon_file(&D, "cluster.key", with_nl, len + 1);
	daemon_start(&D, extra);
}

START_TEST(client_without_key_refused)
{
	struct ms_client *c = NULL;

	ck_assert_int_eq(ms_client_connect(D.url, NULL, 10000, &c), -EPERM);
	ck_assert_ptr_null(c);
}
END_TEST

START_TEST(client_with_wrong_key_refused)
{
	struct ms_client *c = NULL;
	struct auth_key shorter = good;

	ck_assert_int_eq(ms_client_connect(D.url, &wrong, 10000, &c), -EPERM);
	ck_assert_ptr_null(c);
	shorter.len--;
	ck_assert_int_eq(ms_client_connect(D.url, &shorter, 10000, &c), -EPERM);
	ck_assert_ptr_null(c);
}
END_TEST

START_TEST(client_with_right_key_works)
{
	struct ms_client *c = client_connect(D.url, &good);
	uint8_t token[MS_TOKEN_LEN], page[MS_PAGE_SIZE];
	uint64_t epoch, p = 2;

	ck_assert_int_eq(ms_client_ping(c, 0), 0);
	ck_assert_int_eq(ms_client_create(c, 1, 1 << 20, token), 0);
	ck_assert_int_eq(ms_client_open(c, 1, token, &epoch, NULL), 0);
	pattern_fill(page, 1, p);
	ck_assert_int_eq(ms_client_write(c, 1, epoch, &p, 1, page), 0);
	ck_assert_int_eq(ms_client_read(c, 1, epoch, &p, 1, page, NULL), 0);
	ck_assert(pattern_check(page, 1, p));
	ms_client_close(c);
}
END_TEST

/* Failed attempts do not disturb an authenticated client. */
START_TEST(failures_do_not_disturb_others)
{
	struct ms_client *c = client_connect(D.url, &good), *bad = NULL;

	for (unsigned i = 0; i < 20; i++) {
		ck_assert_int_eq(ms_client_connect(D.url, i % 2 ? &wrong : NULL, 10000, &bad),
				 -EPERM);
		ck_assert_int_eq(ms_client_ping(c, 0), 0);
	}
	ms_client_close(c);
}
END_TEST

/* HELLO on a keyed server; returns the nonces. */
static void raw_hello_keyed(int fd, uint8_t cn[MS_NONCE_LEN], uint8_t sn[MS_NONCE_LEN])
{
	uint8_t b[40] = { 0 }, reply[48];
	struct ms_hdr h;

	put_le16(b, MS_PROTO_VERSION);
	put_le16(b + 2, MS_PROTO_VERSION);
	ck_assert_int_eq(auth_random(cn, MS_NONCE_LEN), 0);
	memcpy(b + 8, cn, MS_NONCE_LEN);
	ck_assert_int_eq(raw_frame(fd, MS_OP_HELLO, 1, 0, b, sizeof(b)), 0);
	ck_assert_int_eq(raw_reply(fd, &h, reply, sizeof(reply)), 0);
	ck_assert_uint_eq(h.status, MS_ST_OK);
	ck_assert_uint_eq(h.len, MS_HDR_LEN + 48);
	ck_assert_uint_eq(get_le16(reply + 2), MS_AUTH_HMAC_SHA256);
	memcpy(sn, reply + 16, MS_NONCE_LEN);
}

static void raw_auth(int fd, const struct auth_key *k, const uint8_t *cn, const uint8_t *sn,
		     int want)
{
	static const char label[] = "legato-ms-c";
	uint8_t mac[MS_MAC_LEN];

	auth_hmac(k, label, sizeof(label), sn, MS_NONCE_LEN, cn, MS_NONCE_LEN, mac);
	ck_assert_int_eq(raw_call(fd, MS_OP_AUTH, 0, mac, sizeof(mac)), want);
}

START_TEST(raw_read_before_hello_closed)
{
	uint8_t body[64];
	uint64_t page = 0;
	int fd = raw_connect(D.url);
	size_t n = raw_read_body(body, 1, 1, &page, 1);

	ck_assert_int_eq(raw_call(fd, MS_OP_READ, 1, body, n), MS_ST_AUTH);
	ck_assert(raw_closed(fd));
	close(fd);
	assert_daemon_serves(&good, NULL, 0);
}
END_TEST

START_TEST(raw_read_before_auth_closed)
{
	uint8_t body[64], cn[MS_NONCE_LEN], sn[MS_NONCE_LEN];
	uint64_t page = 0;
	int fd = raw_connect(D.url);
	size_t n = raw_read_body(body, 1, 1, &page, 1);

	raw_hello_keyed(fd, cn, sn);
	ck_assert_int_eq(raw_call(fd, MS_OP_READ, 1, body, n), MS_ST_AUTH);
	ck_assert(raw_closed(fd));
	close(fd);

	/* STAT and CREATE are refused the same way. */
	fd = raw_connect(D.url);
	raw_hello_keyed(fd, cn, sn);
	ck_assert_int_eq(raw_call(fd, MS_OP_STAT, 0, NULL, 0), MS_ST_AUTH);
	ck_assert(raw_closed(fd));
	close(fd);
	assert_daemon_serves(&good, NULL, 0);
}
END_TEST

START_TEST(raw_bad_mac_closed)
{
	uint8_t cn[MS_NONCE_LEN], sn[MS_NONCE_LEN];
	int fd = raw_connect(D.url);

	raw_hello_keyed(fd, cn, sn);
	raw_auth(fd, &wrong, cn, sn, MS_ST_AUTH);
	ck_assert(raw_closed(fd));
	close(fd);

	/* A MAC over the wrong nonces (a replay) fails too. */
	fd = raw_connect(D.url);
	raw_hello_keyed(fd, cn, sn);
	sn[0] ^= 1;
	raw_auth(fd, &good, cn, sn, MS_ST_AUTH);
	ck_assert(raw_closed(fd));
	close(fd);
	assert_daemon_serves(&good, NULL, 0);
}
END_TEST

START_TEST(raw_good_mac_accepted)
{
	uint8_t cn[MS_NONCE_LEN], sn[MS_NONCE_LEN], ping[8] = { 0 };
	int fd = raw_connect(D.url);

	raw_hello_keyed(fd, cn, sn);
	raw_auth(fd, &good, cn, sn, MS_ST_OK);
	ck_assert_int_eq(raw_call(fd, MS_OP_PING, 0, ping, sizeof(ping)), MS_ST_OK);
	/* Once authenticated, a malformed request is answered, not fatal. */
	ck_assert_int_eq(raw_call(fd, MS_OP_PING, 0, ping, 3), MS_ST_PROTO);
	ck_assert_int_eq(raw_call(fd, MS_OP_PING, 0, ping, sizeof(ping)), MS_ST_OK);
	close(fd);
}
END_TEST

/* ---- an open server ---------------------------------------------------- */

static void fixture_open(void)
{
	memset(&D, 0, sizeof(D));
	daemon_start(&D, NULL);
}

START_TEST(open_server_still_wants_hello)
{
	uint8_t body[64];
	uint64_t page = 0;
	int fd = raw_connect(D.url);
	size_t n = raw_read_body(body, 1, 1, &page, 1);

	ck_assert_int_eq(raw_call(fd, MS_OP_READ, 1, body, n), MS_ST_AUTH);
	ck_assert(raw_closed(fd));
	close(fd);

	/* AUTH where none is asked for is a protocol error that closes. */
	fd = raw_connect(D.url);
	raw_hello(fd);
	ck_assert_int_eq(raw_call(fd, MS_OP_AUTH, 0, body, MS_MAC_LEN), MS_ST_PROTO);
	ck_assert(raw_closed(fd));
	close(fd);
	assert_daemon_serves(NULL, NULL, 0);
}
END_TEST

/* A client given a key talks only to a server that proves it holds the
 * key: an open server (anyone's) is refused, not handed the pages. */
START_TEST(keyed_client_refuses_open_server)
{
	struct auth_key key = { .len = 32 };
	struct ms_client *c;

	memset(key.bytes, 0x5a, key.len);
	ck_assert_int_eq(ms_client_connect(D.url, &key, 5000, &c), -EPERM);
	assert_daemon_serves(NULL, NULL, 0);
}
END_TEST

static Suite *auth_suite(void)
{
	Suite *s = suite_create("memserver_auth");
	TCase *tc;

	tc = tcase_create("keyed");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, fixture_keyed, fixture_stop);
	tcase_add_test(tc, client_without_key_refused);
	tcase_add_test(tc, client_with_wrong_key_refused);
	tcase_add_test(tc, client_with_right_key_works);
	tcase_add_test(tc, failures_do_not_disturb_others);
	tcase_add_test(tc, raw_read_before_hello_closed);
	tcase_add_test(tc, raw_read_before_auth_closed);
	tcase_add_test(tc, raw_bad_mac_closed);
	tcase_add_test(tc, raw_good_mac_accepted);
	suite_add_tcase(s, tc);

	tc = tcase_create("open");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, fixture_open, fixture_stop);
	tcase_add_test(tc, open_server_still_wants_hello);
	tcase_add_test(tc, keyed_client_refuses_open_server);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	log_init("test_ms_auth", LOG_WARN);
	sr = srunner_create(auth_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
