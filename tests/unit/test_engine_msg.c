/* test_engine_msg.c - the engine's message side: seqs, dedup, conversations, read seqs, revoke,
 * hide, clear, groups, events, check, crashes. */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine_int.h"

#include "eng_fixture.h"

static void reopen(struct fx *f)
{
	eng_close(f->e);
	f->e = open_at(f->dir, 0, 0);
}

static int apply_c(struct eng *e, uint64_t idx, const struct eng_cmd *c, struct eng_result *res)
{
	struct im_buf b = {0};
	assert_int_equal(eng_cmd_encode(c, &b), 0);
	int rv = eng_apply(e, idx, b.p, b.len, res);
	im_buf_free(&b);
	return rv;
}

/* Applies c at idx; the result code must be `code`. */
static void expect(struct eng *e, uint64_t idx, const struct eng_cmd *c, int code,
		   struct eng_result *res)
{
	struct eng_result local;
	if (res == NULL)
		res = &local;
	int rv = apply_c(e, idx, c, res);
	if (rv != 0)
		fail_msg("apply %" PRIu64 ": %d %s", idx, rv, eng_errmsg(e));
	assert_false(res->skipped);
	if (res->code != code)
		fail_msg("apply %" PRIu64 " type %d: code %d, want %d (%s)", idx, c->type,
			 res->code, code, res->detail);
}

static void flush_ok(struct eng *e)
{
	int rv = eng_flush(e);
	if (rv != 0)
		fail_msg("eng_flush: %d %s", rv, eng_errmsg(e));
}

/* Registers users named by a NULL-terminated list at idx. */
static void register_users(struct eng *e, uint64_t idx, const char *const *ids)
{
	struct eng_user u[32];
	uint32_t n = 0;
	for (; ids[n] != NULL; n++)
		u[n] = (struct eng_user){.user_id = im_str_c(ids[n]), .nickname = im_str_c(ids[n])};
	struct eng_cmd c = {.type = ENG_CMD_USER_REGISTER, .now_ms = 1};
	c.u.user_register.n = n;
	c.u.user_register.users = u;
	expect(e, idx, &c, 0, NULL);
}

static int check_problems(struct eng *e, struct im_buf *rep)
{
	struct im_buf local = {0};
	struct im_buf *r = rep ? rep : &local;
	int n = eng_check(e, r);
	if (n != 0 && r->len)
		printf("check report (%d problems):\n%s", n, r->p);
	im_buf_free(&local);
	return n;
}

/* Runs fn on a plain LMDB write txn of the engine (no batch open). */
static void inject(struct eng *e, void (*fn)(struct eng *, MDB_txn *))
{
	MDB_txn *txn;
	assert_false(eng_dirty(e));
	assert_int_equal(mdb_txn_begin(eng__env(e), NULL, 0, &txn), 0);
	fn(e, txn);
	assert_int_equal(mdb_txn_commit(txn), 0);
}

/* ---------------------------------------------------------------- protobuf */

static size_t pb_varint_put(unsigned char *p, uint64_t v)
{
	size_t n = 0;
	do {
		p[n] = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v)
			p[n] |= 0x80;
		n++;
	} while (v);
	return n;
}

static size_t pb_put_str(unsigned char *p, uint32_t field, const char *s)
{
	size_t n = pb_varint_put(p, (uint64_t)field << 3 | 2), len = strlen(s);
	n += pb_varint_put(p + n, len);
	memcpy(p + n, s, len);
	return n + len;
}

static size_t pb_put_int(unsigned char *p, uint32_t field, uint64_t v)
{
	size_t n = pb_varint_put(p, (uint64_t)field << 3);
	return n + pb_varint_put(p + n, v);
}

static bool pb_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
	uint64_t x = 0;
	for (int shift = 0; *p < end && shift < 64; shift += 7) {
		unsigned char b = *(*p)++;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return true;
		}
	}
	return false;
}

/*
 * A tiny protobuf walker: the number of fields, or -1 if the bytes do not
 * parse.  *last_field and *last_varint describe the last field; *seq gets the
 * last value of field 14 and *cmid the last of field 4, as a decoder would.
 */
struct pbinfo {
	uint32_t last_field;
	uint64_t last_varint;
	uint64_t seq;
	struct im_str cmid;
	struct im_str send;
};

static int pb_walk(struct im_str data, struct pbinfo *out)
{
	const unsigned char *p = (const unsigned char *)data.p, *end = p + data.n;
	memset(out, 0, sizeof(*out));
	int n = 0;
	while (p < end) {
		uint64_t tag, v = 0;
		if (!pb_varint(&p, end, &tag))
			return -1;
		uint32_t field = (uint32_t)(tag >> 3), wt = tag & 7;
		if (wt == 0) {
			if (!pb_varint(&p, end, &v))
				return -1;
			if (field == 14)
				out->seq = v;
		} else if (wt == 2) {
			uint64_t len;
			if (!pb_varint(&p, end, &len) || len > (uint64_t)(end - p))
				return -1;
			if (field == 4)
				out->cmid = (struct im_str){(const char *)p, (uint32_t)len};
			if (field == 1)
				out->send = (struct im_str){(const char *)p, (uint32_t)len};
			p += len;
		} else {
			return -1;
		}
		out->last_field = field;
		out->last_varint = v;
		n++;
	}
	return n;
}

/* The stored bytes are the original data, then field 14 = seq, and nothing else. */
static void assert_stored(struct im_str stored, struct im_str original, uint64_t seq)
{
	struct pbinfo pi;
	assert_true(stored.n > original.n);
	assert_memory_equal(stored.p, original.p, original.n);
	assert_true(pb_walk(stored, &pi) > 0);
	assert_int_equal(pi.last_field, 14);
	assert_true(pi.last_varint == seq);
	assert_true(pi.seq == seq);
	/* Exactly one field after the original. */
	struct pbinfo po;
	assert_int_equal(pb_walk(stored, &pi), pb_walk(original, &po) + 1);
}

/* ---------------------------------------------------------------- messages */

/* A message item with MsgData-like bytes; its views point into the struct (do not copy it). */
struct tmsg {
	char conv[80], send[40], peer[40], cmid[48], smid[48];
	unsigned char data[400];
	struct eng_msg_item it;
};

#define STORE_USER (ENG_MSG_STORE | ENG_MSG_SENDER_SYNC | ENG_MSG_SENDER_READ)

/* session 1/4: peer is the receiver; 3: the group.  An empty cmid is no dedup key. */
static void tmsg_init(struct tmsg *m, const char *conv, int session, const char *send,
		      const char *peer, const char *cmid, uint32_t flags, int64_t send_time)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->conv, sizeof(m->conv), "%s", conv);
	snprintf(m->send, sizeof(m->send), "%s", send);
	snprintf(m->peer, sizeof(m->peer), "%s", peer);
	snprintf(m->cmid, sizeof(m->cmid), "%s", cmid);
	snprintf(m->smid, sizeof(m->smid), "smid-%s-%" PRId64, cmid, send_time);
	size_t n = pb_put_str(m->data, 1, send);
	if (session == 3) {
		n += pb_put_str(m->data + n, 3, peer);
	} else {
		n += pb_put_str(m->data + n, 2, peer);
	}
	n += pb_put_str(m->data + n, 4, cmid);
	n += pb_put_str(m->data + n, 5, m->smid);
	n += pb_put_int(m->data + n, 9, (uint64_t)session);
	n += pb_put_int(m->data + n, 11, 101);
	char content[80];
	snprintf(content, sizeof(content), "{\"content\":\"%s\"}", cmid);
	n += pb_put_str(m->data + n, 12, content);
	n += pb_put_int(m->data + n, 15, (uint64_t)send_time);
	m->it = (struct eng_msg_item){
	    .conv_id = im_str_c(m->conv),
	    .send_id = im_str_c(m->send),
	    .client_msg_id = im_str_c(m->cmid),
	    .server_msg_id = im_str_c(m->smid),
	    .op_id = IM_STR_LIT("op"),
	    .session_type = session,
	    .content_type = 101,
	    .send_time = send_time,
	    .flags = flags,
	    .data = {(const char *)m->data, (uint32_t)n},
	};
	if (session == 3)
		m->it.group_id = im_str_c(m->peer);
	else
		m->it.recv_id = im_str_c(m->peer);
}

/* si_<a>_<b> with the ids sorted (§6.1). */
static void conv_1v1(char *out, size_t size, const char *a, const char *b)
{
	if (strcmp(a, b) > 0) {
		const char *t = a;
		a = b;
		b = t;
	}
	snprintf(out, size, "si_%s_%s", a, b);
}

/* Applies a MSG_SEND of the n messages at idx. */
static int send_msgs(struct eng *e, uint64_t idx, struct tmsg *const *ms, int n, int64_t now,
		     struct eng_result *res)
{
	struct eng_msg_item items[ENG_ITEMS_MAX];
	for (int i = 0; i < n; i++)
		items[i] = ms[i]->it;
	struct eng_cmd c = {.type = ENG_CMD_MSG_SEND, .now_ms = now};
	c.n_items = (uint32_t)n;
	c.items = items;
	return apply_c(e, idx, &c, res);
}

/* Sends one message at idx; must succeed; returns its result. */
static struct eng_msg_result send1(struct eng *e, uint64_t idx, struct tmsg *m)
{
	struct eng_result res;
	assert_int_equal(send_msgs(e, idx, &m, 1, 1700000000000 + (int64_t)idx, &res), 0);
	if (res.code != 0)
		fail_msg("send %s at %" PRIu64 ": %d %s", m->cmid, idx, res.code, res.detail);
	assert_int_equal(res.n_msgs, 1);
	return res.msgs[0];
}

/* A 1:1 user message a -> b with the client id cmid at idx. */
static struct eng_msg_result send_1v1(struct eng *e, uint64_t idx, const char *a, const char *b,
				      const char *cmid)
{
	struct tmsg m;
	char conv[80];
	conv_1v1(conv, sizeof(conv), a, b);
	tmsg_init(&m, conv, 1, a, b, cmid, STORE_USER, 1700000000000 + (int64_t)idx);
	return send1(e, idx, &m);
}

static int64_t max_seq(struct eng *e, const char *conv)
{
	struct eng_rtxn *r;
	int64_t mx = -1, mn = -1, t = -1;
	assert_int_equal(eng_read_begin(e, &r), 0);
	int rv = eng_conv_seq(r, im_str_c(conv), &mx, &mn, &t);
	eng_read_end(r);
	if (rv == IM_ENOTFOUND)
		return 0;
	assert_int_equal(rv, 0);
	assert_true(mn == 1);
	return mx;
}

static int64_t read_seq(struct eng *e, const char *user, const char *conv)
{
	struct eng_rtxn *r;
	assert_int_equal(eng_read_begin(e, &r), 0);
	int64_t s = eng_read_seq(r, im_str_c(user), im_str_c(conv));
	eng_read_end(r);
	return s;
}

/* Message flags as "R" (read), "V" (revoked), "-" (none) or "!" (absent). */
static const char *msg_flags(struct eng *e, const char *conv, int64_t seq)
{
	struct eng_rtxn *r;
	bool rd = false, rv_ = false;
	assert_int_equal(eng_read_begin(e, &r), 0);
	int rv = eng_msg_get(r, im_str_c(conv), seq, NULL, &rd, &rv_);
	eng_read_end(r);
	if (rv == IM_ENOTFOUND)
		return "!";
	assert_int_equal(rv, 0);
	return rd && rv_ ? "RV" : rd ? "R" : rv_ ? "V" : "-";
}

/* The flags of seqs 1..n of conv, concatenated with ',' */
static const char *flags_of(struct eng *e, const char *conv, int n)
{
	static char out[256];
	size_t o = 0;
	for (int s = 1; s <= n; s++)
		o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%s", s > 1 ? "," : "",
				      msg_flags(e, conv, s));
	out[o] = '\0';
	return out;
}

/* Every conversation row of owner as "conv:type:user_id:group_id:min_seq;". */
static int collect_conv(const struct eng_conv *c, void *arg)
{
	im_buf_printf(arg, "%.*s:%d:%.*s:%.*s:%" PRId64 ";", (int)c->conversation_id.n,
		      c->conversation_id.p, c->conversation_type, (int)c->user_id.n, c->user_id.p,
		      (int)c->group_id.n, c->group_id.p, c->min_seq);
	return 0;
}

static const char *conv_rows(struct eng *e, const char *owner)
{
	static char out[1024];
	struct im_buf b = {0};
	struct eng_rtxn *r;
	assert_int_equal(eng_read_begin(e, &r), 0);
	assert_int_equal(eng_conv_scan(r, im_str_c(owner), collect_conv, &b), 0);
	eng_read_end(r);
	snprintf(out, sizeof(out), "%s", b.p ? b.p : "");
	im_buf_free(&b);
	return out;
}

/* ---------------------------------------------------------------- events */

/* Events as "index:conv:cmid:seq;" after checking the stored bytes of each. */
static void collect_event(const struct eng_event *ev, void *arg)
{
	if (ev->seq > 0) {
		struct pbinfo pi;
		assert_true(pb_walk(ev->stored, &pi) > 0);
		assert_int_equal(pi.last_field, 14);
		assert_true(pi.last_varint == ev->seq);
		assert_memory_equal(ev->stored.p, ev->item.data.p, ev->item.data.n);
	} else {
		assert_int_equal(ev->stored.n, ev->item.data.n);
	}
	im_buf_printf(arg, "%" PRIu64 ":%.*s:%.*s:%" PRIu64 ";", ev->index, (int)ev->item.conv_id.n,
		      ev->item.conv_id.p, (int)ev->item.client_msg_id.n, ev->item.client_msg_id.p,
		      ev->seq);
}

static const char *drain(struct eng *e)
{
	static char out[4096];
	struct im_buf b = {0};
	eng_events_drain(e, collect_event, &b);
	snprintf(out, sizeof(out), "%s", b.p ? b.p : "");
	im_buf_free(&b);
	return out;
}

static void ignore_event(const struct eng_event *ev, void *arg)
{
}

/* ---------------------------------------------------------------- seqs */

#define NU 6
static const char *const users6[] = {"u0", "u1", "u2", "u3", "u4", "u5", NULL};

/* A group g1 of u0..u3 (u0 the owner) at idx. */
static void create_group(struct eng *e, uint64_t idx, const char *gid, const char *const *members,
			 struct tmsg *note)
{
	struct eng_member m[16];
	uint32_t n = 0;
	for (; members[n] != NULL; n++)
		m[n] = (struct eng_member){.user_id = im_str_c(members[n]),
					   .role_level = n == 0 ? 100 : 20,
					   .join_time = 1000 + n};
	struct eng_cmd c = {.type = ENG_CMD_GROUP_CREATE, .now_ms = 1000};
	c.m.group_create.group = (struct eng_group){.group_id = im_str_c(gid),
						    .group_name = IM_STR_LIT("G"),
						    .owner_user_id = im_str_c(members[0]),
						    .creator_user_id = im_str_c(members[0]),
						    .create_time = 1000};
	c.m.group_create.n_members = n;
	c.m.group_create.members = m;
	if (note != NULL) {
		c.n_items = 1;
		c.items = &note->it;
	}
	expect(e, idx, &c, 0, NULL);
}

/* A digest of every message of the conversations named (bytes, flags), and their seqs. */
static uint32_t msgs_digest(struct eng *e, char (*convs)[80], int n)
{
	struct eng_rtxn *r;
	uint32_t crc = 0;
	assert_int_equal(eng_read_begin(e, &r), 0);
	for (int i = 0; i < n; i++) {
		int64_t mx = 0, mn, t;
		if (eng_conv_seq(r, im_str_c(convs[i]), &mx, &mn, &t) != 0)
			continue;
		crc = im_crc32(crc, &mx, sizeof(mx));
		crc = im_crc32(crc, &t, sizeof(t));
		for (int64_t s = 1; s <= mx; s++) {
			struct im_str d;
			bool rd, rv_;
			assert_int_equal(eng_msg_get(r, im_str_c(convs[i]), s, &d, &rd, &rv_), 0);
			crc = im_crc32(crc, d.p, d.n);
			crc = im_crc32(crc, &rd, 1);
		}
	}
	eng_read_end(r);
	return crc;
}

/*
 * Random sends (1:1 among six users, and a group), several items per command,
 * random flushes: per conversation the seqs are 1, 2, 3, ... in apply order,
 * and each stored message is its bytes plus the seq field.
 */
static void seqs_are_contiguous_per_conversation(void **state)
{
	struct fx *f = *state;
	unsigned seed = test_seed("seqs_are_contiguous_per_conversation");
	srand(seed);
	register_users(f->e, 1, users6);
	create_group(f->e, 2, "g1", (const char *[]){"u0", "u1", "u2", "u3", NULL}, NULL);
	enum { NCONV = 32, NCMD = 300 }; /* 21 pairs of 6 users and a group */
	char convs[NCONV][80];
	int64_t model[NCONV] = {0};
	int nconv = 0;
	/* The same history goes to a second engine, flushed differently. */
	char dir2[80];
	snprintf(dir2, sizeof(dir2), "%s2", f->dir);
	struct eng *e2 = open_at(dir2, 0, 0);
	register_users(e2, 1, users6);
	create_group(e2, 2, "g1", (const char *[]){"u0", "u1", "u2", "u3", NULL}, NULL);
	uint64_t idx = 3;
	static struct tmsg ms[NCMD][4];
	for (int k = 0; k < NCMD; k++, idx++) {
		int n = 1 + rand() % 4;
		struct tmsg *ptr[4];
		int ci[4];
		for (int i = 0; i < n; i++) {
			char conv[80], cmid[48];
			snprintf(cmid, sizeof(cmid), "m%d.%d", k, i);
			int a = rand() % NU, b = rand() % NU;
			if (rand() % 5 == 0) {
				a = rand() % 4;
				snprintf(conv, sizeof(conv), "sg_g1");
				tmsg_init(&ms[k][i], conv, 3, users6[a], "g1", cmid,
					  STORE_USER | ENG_MSG_CHECK_MEMBER, 5000 + k);
			} else {
				conv_1v1(conv, sizeof(conv), users6[a], users6[b]);
				tmsg_init(&ms[k][i], conv, 1, users6[a], users6[b], cmid,
					  STORE_USER, 5000 + k);
			}
			int c = 0;
			while (c < nconv && strcmp(convs[c], conv) != 0)
				c++;
			if (c == nconv) {
				assert_true(nconv < NCONV);
				snprintf(convs[nconv++], sizeof(convs[0]), "%s", conv);
			}
			ci[i] = c;
			ptr[i] = &ms[k][i];
		}
		struct eng_result res;
		assert_int_equal(send_msgs(f->e, idx, ptr, n, 7000 + k, &res), 0);
		assert_int_equal(res.code, 0);
		assert_int_equal(res.n_msgs, n);
		for (int i = 0; i < n; i++) {
			assert_false(res.msgs[i].dup);
			if (res.msgs[i].seq != (uint64_t)++model[ci[i]])
				fail_msg("cmd %d item %d in %s: seq %" PRIu64 ", want %" PRId64, k,
					 i, convs[ci[i]], res.msgs[i].seq, model[ci[i]]);
			assert_string_equal(res.msgs[i].server_msg_id, ms[k][i].smid);
		}
		assert_int_equal(send_msgs(e2, idx, ptr, n, 7000 + k, &res), 0);
		if (rand() % 7 == 0)
			flush_ok(f->e);
		if (rand() % 13 == 0) {
			flush_ok(e2);
			eng_events_drain(e2, ignore_event, NULL);
		}
	}
	flush_ok(f->e);
	flush_ok(e2);
	eng_events_drain(f->e, ignore_event, NULL);
	eng_events_drain(e2, ignore_event, NULL);

	/* Each conversation: exactly 1..n, each the original bytes plus its seq. */
	struct eng_rtxn *r;
	assert_int_equal(eng_read_begin(f->e, &r), 0);
	for (int c = 0; c < nconv; c++) {
		int64_t mx, mn, t;
		assert_int_equal(eng_conv_seq(r, im_str_c(convs[c]), &mx, &mn, &t), 0);
		assert_true(mx == model[c]);
		assert_true(mn == 1);
		struct im_str d;
		assert_int_equal(eng_msg_get(r, im_str_c(convs[c]), mx + 1, &d, NULL, NULL),
				 IM_ENOTFOUND);
		assert_int_equal(eng_msg_get(r, im_str_c(convs[c]), 0, &d, NULL, NULL),
				 IM_ENOTFOUND);
		for (int64_t s = 1; s <= mx; s++) {
			assert_int_equal(eng_msg_get(r, im_str_c(convs[c]), s, &d, NULL, NULL), 0);
			struct pbinfo pi;
			assert_true(pb_walk(d, &pi) > 0);
			assert_int_equal(pi.last_field, 14);
			assert_true(pi.seq == (uint64_t)s);
			/* The dedup record of its client id names this very message. */
			struct im_str conv, smid;
			int64_t seq, st;
			assert_int_equal(
			    eng_msg_dedup(r, pi.send, pi.cmid, &conv, &seq, &smid, &st), 0);
			assert_true(im_str_eq(conv, im_str_c(convs[c])));
			assert_true(seq == s);
		}
	}
	eng_read_end(r);
	assert_int_equal(check_problems(f->e, NULL), 0);
	/* The other engine, flushed at other points, has the same messages. */
	assert_int_equal(msgs_digest(e2, convs, nconv), msgs_digest(f->e, convs, nconv));
	assert_int_equal(check_problems(e2, NULL), 0);
	eng_close(e2);
	rm_rf(dir2);
}

/* Field 14 is appended as a varint: one byte up to 127, two from 128. */
static void stored_bytes_end_with_the_seq_field(void **state)
{
	struct fx *f = *state;
	register_users(f->e, 1, (const char *[]){"a", "b", NULL});
	static struct tmsg ms[130];
	for (int i = 0; i < 130; i++) {
		char cmid[16];
		snprintf(cmid, sizeof(cmid), "c%d", i);
		tmsg_init(&ms[i], "si_a_b", 1, i % 2 ? "a" : "b", i % 2 ? "b" : "a", cmid,
			  STORE_USER, 100 + i);
		assert_true(send1(f->e, 2 + (uint64_t)i, &ms[i]).seq == (uint64_t)i + 1);
	}
	flush_ok(f->e);
	struct eng_rtxn *r;
	assert_int_equal(eng_read_begin(f->e, &r), 0);
	for (int i = 0; i < 130; i++) {
		struct im_str d;
		assert_int_equal(eng_msg_get(r, IM_STR_LIT("si_a_b"), i + 1, &d, NULL, NULL), 0);
		assert_stored(d, ms[i].it.data, (uint64_t)i + 1);
		/* The exact bytes: 0x70 and the varint. */
		if (i + 1 < 128) {
			assert_int_equal(d.n, ms[i].it.data.n + 2);
			assert_int_equal((unsigned char)d.p[d.n - 2], 0x70);
			assert_int_equal((unsigned char)d.p[d.n - 1], i + 1);
		} else {
			assert_int_equal(d.n, ms[i].it.data.n + 3);
			assert_int_equal((unsigned char)d.p[d.n - 3], 0x70);
			assert_int_equal((unsigned char)d.p[d.n - 2], 0x80 | ((i + 1) & 0x7f));
			assert_int_equal((unsigned char)d.p[d.n - 1], (i + 1) >> 7);
		}
	}
	int64_t mx, mn, t;
	assert_int_equal(eng_conv_seq(r, IM_STR_LIT("si_a_b"), &mx, &mn, &t), 0);
	assert_true(mx == 130 && mn == 1 && t == 100 + 129);
	eng_read_end(r);
	assert_int_equal(check_problems(f->e, NULL), 0);
}

/* ---------------------------------------------------------------- dedup */

static void dedup_returns_the_original_and_stores_once(void **state)
{
	struct fx *f = *state;
	register_users(f->e, 1, (const char *[]){"a", "b", "c", NULL});
	struct tmsg m1, again, other, nokey1, nokey2;
	tmsg_init(&m1, "si_a_b", 1, "a", "b", "c1", STORE_USER, 1111);
	struct eng_msg_result r1 = send1(f->e, 2, &m1);
	assert_true(r1.seq == 1);
	assert_false(r1.dup);
	/* A retry: new serverMsgID and sendTime (the proposer stamps them again). */
	tmsg_init(&again, "si_a_b", 1, "a", "b", "c1", STORE_USER, 2222);
	struct eng_msg_result r2 = send1(f->e, 3, &again);
	assert_true(r2.dup);
	assert_true(r2.seq == 1);
	assert_string_equal(r2.server_msg_id, m1.smid);
	assert_true(r2.send_time == 1111);
	/* Same client id from another sender: a different message. */
	tmsg_init(&other, "si_b_c", 1, "c", "b", "c1", STORE_USER, 3333);
	assert_false(send1(f->e, 4, &other).dup);
	/* No client id: never deduplicated. */
	tmsg_init(&nokey1, "si_a_b", 1, "a", "b", "", STORE_USER, 4444);
	tmsg_init(&nokey2, "si_a_b", 1, "a", "b", "", STORE_USER, 4444);
	assert_true(send1(f->e, 5, &nokey1).seq == 2);
	assert_true(send1(f->e, 6, &nokey2).seq == 3);
	/* The same message twice in one command: the second is the first's dup. */
	struct tmsg t1, t2;
	tmsg_init(&t1, "si_a_b", 1, "b", "a", "c2", STORE_USER, 5555);
	tmsg_init(&t2, "si_a_b", 1, "b", "a", "c2", STORE_USER, 6666);
	struct tmsg *pair[] = {&t1, &t2};
	struct eng_result res;
	assert_int_equal(send_msgs(f->e, 7, pair, 2, 1, &res), 0);
	assert_int_equal(res.code, 0);
	assert_true(res.msgs[0].seq == 4 && !res.msgs[0].dup);
	assert_true(res.msgs[1].seq == 4 && res.msgs[1].dup);
	assert_true(res.msgs[1].send_time == 5555);
	flush_ok(f->e);
	assert_string_equal(drain(f->e), "2:si_a_b:c1:1;4:si_b_c:c1:1;5:si_a_b::2;6:si_a_b::3;"
					 "7:si_a_b:c2:4;");
	assert_true(max_seq(f->e, "si_a_b") == 4);

	/* After a restart: a replay of the original is skipped, a retry is a dup. */
	reopen(f);
	assert_int_equal(send_msgs(f->e, 2, (struct tmsg *[]){&m1}, 1, 1, &res), 0);
	assert_true(res.skipped);
	assert_int_equal(res.n_msgs, 0);
	struct eng_msg_result r3 = send1(f->e, 8, &again);
	assert_true(r3.dup && r3.seq == 1);
	assert_string_equal(r3.server_msg_id, m1.smid);
	flush_ok(f->e);
	assert_string_equal(drain(f->e), "");
	assert_true(max_seq(f->e, "si_a_b") == 4);
	struct eng_rtxn *r;
	struct im_str conv, smid;
	int64_t seq, st;
	assert_int_equal(eng_read_begin(f->e, &r), 0);
	assert_int_equal(
	    eng_msg_dedup(r, IM_STR_LIT("a"), IM_STR_LIT("c1"), &conv, &seq, &smid, &st), 0);
	assert_true(im_str_eq(conv, IM_STR_LIT("si_a_b")) && seq == 1 && st == 1111);
	assert_true(im_str_eq(smid, im_str_c(m1.smid)));
	assert_int_equal(
	    eng_msg_dedup(r, IM_STR_LIT("b"), IM_STR_LIT("c1"), &conv, &seq, &smid, &st),
	    IM_ENOTFOUND);
	assert_int_equal(eng_msg_dedup(r, IM_STR_LIT("a"), IM_STR_LIT(""), &conv, &seq, &smid, &st),
			 IM_ENOTFOUND);
	eng_read_end(r);
	assert_int_equal(check_problems(f->e, NULL), 0);
}

/* ---------------------------------------------------------------- conversation rows */

static void first_message_creates_conversation_rows(void **state)
{
	struct fx *f = *state;
	register_users(f->e, 1, (const char *[]){"a", "b", "c", "d", "sys", NULL});
	uint64_t i = 2;
	/* 1:1: both users, each with the other as user_id; create_time is now_ms. */
	struct tmsg m;
	tmsg_init(&m, "si_a_b", 1, "a", "b", "m1", STORE_USER, 10);
	send1(f->e, i++, &m);
	flush_ok(f->e);
	assert_string_equal(conv_rows(f->e, "a"), "si_a_b:1:b::0;");
	assert_string_equal(conv_rows(f->e, "b"), "si_a_b:1:a::0;");
	struct eng_rtxn *r;
	struct eng_conv cv;
	assert_int_equal(eng_read_begin(f->e, &r), 0);
	assert_int_equal(eng_conv_get(r, IM_STR_LIT("b"), IM_STR_LIT("si_a_b"), &cv), 0);
	assert_true(im_str_eq(cv.owner_user_id, IM_STR_LIT("b")));
	assert_true(im_str_eq(cv.conversation_id, IM_STR_LIT("si_a_b")));
	assert_true(cv.create_time == 1700000000002);
	assert_int_equal(eng_conv_get(r, IM_STR_LIT("c"), IM_STR_LIT("si_a_b"), &cv), IM_ENOTFOUND);
	eng_read_end(r);
	/* The sender's read seq follows its message (ENG_MSG_SENDER_READ). */
	assert_true(read_seq(f->e, "a", "si_a_b") == 1);
	assert_true(read_seq(f->e, "b", "si_a_b") == 0);

	/* Type 4 (notification account): the receiver only. */
	tmsg_init(&m, "sn_c_sys", 4, "sys", "c", "n1", ENG_MSG_STORE, 11);
	send1(f->e, i++, &m);
	/* Group: every member, with the group id. */
	create_group(f->e, i++, "g", (const char *[]){"a", "b", "c", NULL}, NULL);
	tmsg_init(&m, "sg_g", 3, "b", "g", "g1", STORE_USER | ENG_MSG_CHECK_MEMBER, 12);
	send1(f->e, i++, &m);
	/* A notification stream: no rows at all. */
	tmsg_init(&m, "n_a_d", 1, "a", "d", "x1", ENG_MSG_STORE | ENG_MSG_NOTIFICATION, 13);
	send1(f->e, i++, &m);
	/* An unregistered receiver gets no row (rows belong to users). */
	tmsg_init(&m, "si_a_zed", 1, "a", "zed", "z1", STORE_USER, 14);
	send1(f->e, i++, &m);
	/* Not stored: no rows either. */
	tmsg_init(&m, "si_c_d", 1, "c", "d", "t1", ENG_MSG_SENDER_SYNC, 15);
	assert_true(send1(f->e, i++, &m).seq == 0);
	flush_ok(f->e);
	assert_string_equal(conv_rows(f->e, "a"), "sg_g:3::g:0;si_a_b:1:b::0;si_a_zed:1:zed::0;");
	assert_string_equal(conv_rows(f->e, "b"), "sg_g:3::g:0;si_a_b:1:a::0;");
	assert_string_equal(conv_rows(f->e, "c"), "sg_g:3::g:0;sn_c_sys:4:sys::0;");
	assert_string_equal(conv_rows(f->e, "d"), "");
	assert_string_equal(conv_rows(f->e, "sys"), "");
	assert_string_equal(conv_rows(f->e, "zed"), "");
	assert_true(max_seq(f->e, "si_c_d") == 0);

	/* Rows are never changed by messages: a pinned row stays pinned. */
	struct eng_cmd c = {.type = ENG_CMD_CONV_SET, .now_ms = 5};
	c.m.conv_set.n_owners = 1;
	c.m.conv_set.owners = (struct im_str[]){IM_STR_LIT("a")};
	c.m.conv_set.mask = ENG_CONV_IS_PINNED;
	c.m.conv_set.conv =
	    (struct eng_conv){.conversation_id = IM_STR_LIT("si_a_b"), .is_pinned = true};
	expect(f->e, i++, &c, 0, NULL);
	tmsg_init(&m, "si_a_b", 1, "b", "a", "m2", STORE_USER, 16);
	send1(f->e, i++, &m);
	/* A participant who lacked a row gets one on a later message. */
	register_users(f->e, i++, (const char *[]){"zed", NULL});
	tmsg_init(&m, "si_a_zed", 1, "a", "zed", "z2", STORE_USER, 17);
	assert_true(send1(f->e, i++, &m).seq == 2);
	flush_ok(f->e);
	assert_int_equal(eng_read_begin(f->e, &r), 0);
	assert_int_equal(eng_conv_get(r, IM_STR_LIT("a"), IM_STR_LIT("si_a_b"), &cv), 0);
	assert_true(cv.is_pinned);
	assert_int_equal(cv.conversation_type, 1);
	eng_read_end(r);
	assert_string_equal(conv_rows(f->e, "zed"), "si_a_zed:1:a::0;");
	assert_int_equal(check_problems(f->e, NULL), 0);
}

/* ---------------------------------------------------------------- membership */

static void check_member_rejects_outsiders_and_changes_nothing(void **state)
{
	struct fx *f = *state;
	register_users(f->e, 1, (const char *[]){"a", "b", "c", NULL});
	create_group(f->e, 2, "g", (const char *[]){"a", "b", NULL}, NULL);
	struct tmsg ok, out;
	tmsg_init(&ok, "sg_g", 3, "a", "g", "ok1", STORE_USER | ENG_MSG_CHECK_MEMBER, 1);
	tmsg_init(&out, "sg_g", 3, "c", "g", "out1", STORE_USER | ENG_MSG_CHECK_MEMBER, 2);
	flush_ok(f->e);
	eng_events_drain(f->e, ignore_event, NULL);
	struct eng_result res;
	assert_int_equal(send_msgs(f->e, 3, (struct tmsg *[]){&out}, 1, 1, &res), 0);
	assert_int_equal(res.code, IM_EPERM);
	assert_non_null(strstr(res.detail, "c is not a member of group g"));
	assert_int_equal(res.n_msgs, 0);
	/* A member's item before the outsider's in one command goes too. */
	assert_int_equal(send_msgs(f->e, 4, (struct tmsg *[]){&ok, &out}, 2, 1, &res), 0);
	assert_int_equal(res.code, IM_EPERM);
	assert_int_equal(eng_applied_index(f->e), 4);
	flush_ok(f->e);
	assert_string_equal(drain(f->e), "");
	assert_true(max_seq(f->e, "sg_g") == 0);
	/* Only the row group_create made: the rejected items added nothing. */
	assert_string_equal(conv_rows(f->e, "a"), "sg_g:3::g:0;");
	assert_string_equal(conv_rows(f->e, "c"), "");
	struct eng_rtxn *r;
	assert_int_equal(eng_read_begin(f->e, &r), 0);
	assert_int_equal(
	    eng_msg_dedup(r, IM_STR_LIT("a"), IM_STR_LIT("ok1"), NULL, NULL, NULL, NULL),
	    IM_ENOTFOUND);
	eng_read_end(r);
	/* The member alone is fine; without the flag the engine does not check. */
	assert_true(send1(f->e, 5, &ok).seq == 1);
	out.it.flags = STORE_USER;
	assert_true(send1(f->e, 6, &out).seq == 2);
	/* A resend is answered before the member check: c's retry dups. */
	out.it.flags |= ENG_MSG_CHECK_MEMBER;
	assert_true(send1(f->e, 7, &out).dup);
	flush_ok(f->e);
	assert_string_equal(drain(f->e), "5:sg_g:ok1:1;6:sg_g:out1:2;");
	assert_int_equal(check_problems(f->e, NULL), 0);
}

/* Item rules: each one rejects the whole command. */
static void items_are_validated(void **state)
{
	struct fx *f = *state;
	register_users(f->e, 1, (const char *[]){"a", "b", NULL});
	struct tmsg m;
	struct eng_result res;
	uint64_t i = 2;
	tmsg_init(&m, "si_a_b", 1, "a", "b", "v", STORE_USER, 1);
	m.it.conv_id = (struct im_str){NULL, 0};
	assert_int_equal(send_msgs(f->e, i++, (struct tmsg *[]){&m}, 1, 1, &res), 0);
	assert_int_equal(res.code, IM_EINVAL);
	assert_non_null(strstr(res.detail, "empty conversationID"));
	tmsg_init(&m, "si_a_b", 1, "", "b", "v", STORE_USER, 1);
	assert_int_equal(send_msgs(f->e, i++, (struct tmsg *[]){&m}, 1, 1, &res), 0);
	assert_int_equal(res.code, IM_EINVAL);
	tmsg_init(&m, "si_a_b", 1, "a", "", "v", STORE_USER, 1);
	assert_int_equal(send_msgs(f->e, i++, (struct tmsg *[]){&m}, 1, 1, &res), 0);
	assert_int_equal(res.code, IM_EINVAL);
	assert_non_null(strstr(res.detail, "recvID"));
	tmsg_init(&m, "sg_", 3, "a", "", "v", STORE_USER, 1);
	assert_int_equal(send_msgs(f->e, i++, (struct tmsg *[]){&m}, 1, 1, &res), 0);
	assert_int_equal(res.code, IM_EINVAL);
	assert_non_null(strstr(res.detail, "groupID"));
	tmsg_init(&m, "si_a_b", 2, "a", "b", "v", STORE_USER, 1);
	assert_int_equal(send_msgs(f->e, i++, (struct tmsg *[]){&m}, 1, 1, &res), 0);
	assert_int_equal(res.code, IM_EINVAL);
	assert_non_null(strstr(res.detail, "sessionType 2"));
	tmsg_init(&m, "si_a_b", 1, "a", "b", "v", STORE_USER | 1u << 9, 1);
	assert_int_equal(send_msgs(f->e, i++, (struct tmsg *[]){&m}, 1, 1, &res), 0);
	assert_int_equal(res.code, IM_EINVAL);
	assert_non_null(strstr(res.detail, "flags"));
	/* A send without items. */
	struct eng_cmd c = {.type = ENG_CMD_MSG_SEND, .now_ms = 1};
	expect(f->e, i++, &c, IM_EINVAL, NULL);
	flush_ok(f->e);
	assert_string_equal(drain(f->e), "");
	assert_true(max_seq(f->e, "si_a_b") == 0);
	assert_int_equal(check_problems(f->e, NULL), 0);
}

/* ---------------------------------------------------------------- read, revoke, hide, clear */

static struct eng_cmd mark_cmd(const char *user, const char *conv, int64_t upto, int64_t *seqs,
			       uint32_t n, bool mark)
{
	struct eng_cmd c = {.type = ENG_CMD_MARK_READ, .now_ms = 1};
	c.m.mark_read.user_id = im_str_c(user);
	c.m.mark_read.conv_id = im_str_c(conv);
	c.m.mark_read.has_read_seq = upto;
	c.m.mark_read.seqs = seqs;
	c.m.mark_read.n_seqs = n;
	c.m.mark_read.mark_msgs = mark;
	return c;
}

static void mark_read_raises_never_lowers_and_flags(void **state)
{
	struct fx *f = *state;
	register_users(f->e, 1, (const char *[]){"a", "b", "c", NULL});
	send_1v1(f->e, 2, "a", "b", "m1");
	send_1v1(f->e, 3, "a", "b", "m2");
	send_1v1(f->e, 4, "a", "b", "m3");
	send_1v1(f->e, 5, "b", "a", "m4");
	flush_ok(f->e);
	assert_true(read_seq(f->e, "a", "si_a_b") == 3);
	assert_true(read_seq(f->e, "b", "si_a_b") == 4);
	assert_string_equal(flags_of(f->e, "si_a_b", 4), "-,-,-,-");

	/* b's read seq is already 4 (its own message): a reads up to 2. */
	struct eng_cmd c = mark_cmd("a", "si_a_b", 2, NULL, 0, true);
	expect(f->e, 6, &c, 0, NULL);
	flush_ok(f->e);
	assert_true(read_seq(f->e, "a", "si_a_b") == 3); /* never lowered */
	assert_string_equal(flags_of(f->e, "si_a_b", 4), "-,-,-,-");
	/* Up to 100: clamped to max_seq 4; (3, 4] gets isRead. */
	c = mark_cmd("a", "si_a_b", 100, NULL, 0, true);
	expect(f->e, 7, &c, 0, NULL);
	flush_ok(f->e);
	assert_true(read_seq(f->e, "a", "si_a_b") == 4);
	assert_string_equal(flags_of(f->e, "si_a_b", 4), "-,-,-,R");
	/* Listed seqs that exist are marked too, the rest ignored. */
	int64_t seqs[] = {2, 99, -1, 0, 2};
	c = mark_cmd("b", "si_a_b", 0, seqs, 5, true);
	expect(f->e, 8, &c, 0, NULL);
	flush_ok(f->e);
	assert_string_equal(flags_of(f->e, "si_a_b", 4), "-,R,-,R");
	assert_true(read_seq(f->e, "b", "si_a_b") == 4);
	/* Without mark_msgs (groups, type 4): only the read seq moves. */
	send_1v1(f->e, 9, "a", "b", "m5");
	c = mark_cmd("b", "si_a_b", 5, NULL, 0, false);
	expect(f->e, 10, &c, 0, NULL);
	flush_ok(f->e);
	assert_true(read_seq(f->e, "b", "si_a_b") == 5);
	assert_string_equal(flags_of(f->e, "si_a_b", 5), "-,R,-,R,-");
	/* c has no row for the conversation: IM_ENOTFOUND, nothing changes. */
	c = mark_cmd("c", "si_a_b", 5, seqs, 1, true);
	struct eng_result res;
	expect(f->e, 11, &c, IM_ENOTFOUND, &res);
	assert_non_null(strstr(res.detail, "si_a_b"));
	c = mark_cmd("", "si_a_b", 5, NULL, 0, true);
	expect(f->e, 12, &c, IM_EINVAL, NULL);
	/* With its 2200 receipt as an item (stored in n_, pushed). */
	send_1v1(f->e, 13, "a", "b", "m6");
	struct tmsg rc;
	tmsg_init(&rc, "n_a_b", 1, "b", "a", "rcpt1", ENG_MSG_STORE | ENG_MSG_NOTIFICATION, 50);
	c = mark_cmd("b", "si_a_b", 6, NULL, 0, true);
	c.n_items = 1;
	c.items = &rc.it;
	expect(f->e, 14, &c, 0, &res);
	assert_int_equal(res.n_msgs, 1);
	assert_true(res.msgs[0].seq == 1);
	flush_ok(f->e);
	/* Only (5, 6]: seq 5 was read without mark_msgs, so it stays unflagged. */
	assert_string_equal(flags_of(f->e, "si_a_b", 6), "-,R,-,R,-,R");
	assert_string_equal(flags_of(f->e, "n_a_b", 1), "-");
	eng_events_drain(f->e, ignore_event, NULL);
	assert_int_equal(check_problems(f->e, NULL), 0);
}

static struct eng_cmd revoke_cmd(const char *conv, int64_t seq, const char *who)
{
	struct eng_cmd c = {.type = ENG_CMD_REVOKE, .now_ms = 9};
	c.m.revoke.conv_id = im_str_c(conv);
	c.m.revoke.seq = seq;
	c.m.revoke.revoker_id = im_str_c(who);
	c.m.revoke.revoker_role = 100;
	c.m.revoke.revoker_nickname = IM_STR_LIT("Revoker");
	c.m.revoke.revoke_time = 777;
	return c;
}

static void revoke_twice_is_eexist(void **state)
{
	struct fx *f = *state;
	register_users(f->e, 1, (const char *[]){"a", "b", NULL});
	send_1v1(f->e, 2, "a", "b", "m1");
	send_1v1(f->e, 3, "b", "a", "m2");
	struct tmsg tip;
	tmsg_init(&tip, "n_a_b", 1, "a", "b", "rv1", ENG_MSG_STORE | ENG_MSG_NOTIFICATION, 60);
	struct eng_cmd c = revoke_cmd("si_a_b", 1, "a");
	c.n_items = 1;
	c.items = &tip.it;
	expect(f->e, 4, &c, 0, NULL);
	flush_ok(f->e);
	assert_string_equal(flags_of(f->e, "si_a_b", 2), "V,-");
	struct eng_rtxn *r;
	struct eng_revoke rv;
	assert_int_equal(eng_read_begin(f->e, &r), 0);
	assert_int_equal(eng_revoke_get(r, IM_STR_LIT("si_a_b"), 1, &rv), 0);
	assert_true(im_str_eq(rv.revoker_id, IM_STR_LIT("a")));
	assert_true(im_str_eq(rv.revoker_nickname, IM_STR_LIT("Revoker")));
	assert_int_equal(rv.revoker_role, 100);
	assert_true(rv.revoke_time == 777);
	assert_int_equal(eng_revoke_get(r, IM_STR_LIT("si_a_b"), 2, &rv), IM_ENOTFOUND);
	eng_read_end(r);
	/* Again: IM_EEXIST, and its tip is not stored. */
	struct tmsg tip2;
	tmsg_init(&tip2, "n_a_b", 1, "a", "b", "rv2", ENG_MSG_STORE | ENG_MSG_NOTIFICATION, 61);
	c = revoke_cmd("si_a_b", 1, "a");
	c.n_items = 1;
	c.items = &tip2.it;
	struct eng_result res;
	expect(f->e, 5, &c, IM_EEXIST, &res);
	assert_non_null(strstr(res.detail, "already revoked"));
	c = revoke_cmd("si_a_b", 99, "a");
	expect(f->e, 6, &c, IM_ENOTFOUND, NULL);
	c = revoke_cmd("si_a_b", 0, "a");
	expect(f->e, 7, &c, IM_ENOTFOUND, NULL);
	c = revoke_cmd("si_x_y", 1, "a");
	expect(f->e, 8, &c, IM_ENOTFOUND, NULL);
	c = revoke_cmd("si_a_b", 2, "");
	expect(f->e, 9, &c, IM_EINVAL, NULL);
	flush_ok(f->e);
	assert_string_equal(drain(f->e), "2:si_a_b:m1:1;3:si_a_b:m2:2;4:n_a_b:rv1:1;");
	assert_true(max_seq(f->e, "n_a_b") == 1);
	/* Revoked and read are independent bits (b's read seq is 2 already: seq 1 listed). */
	c = mark_cmd("b", "si_a_b", 2, (int64_t[]){1}, 1, true);
	expect(f->e, 10, &c, 0, NULL);
	flush_ok(f->e);
	assert_string_equal(flags_of(f->e, "si_a_b", 2), "RV,-");
	assert_int_equal(check_problems(f->e, NULL), 0);
}

static bool hidden(struct eng *e, const char *user, const char *conv, int64_t seq)
{
	struct eng_rtxn *r;
	assert_int_equal(eng_read_begin(e, &r), 0);
	bool h = eng_msg_hidden(r, im_str_c(user), im_str_c(conv), seq);
	eng_read_end(r);
	return h;
}

static void hide_and_clear(void **state)
{
	struct fx *f = *state;
	register_users(f->e, 1, (const char *[]){"a", "b", "c", NULL});
	for (uint64_t i = 2; i <= 5; i++)
		send_1v1(f->e, i, i % 2 ? "a" : "b", i % 2 ? "b" : "a", (char[]){'m', '0' + i, 0});
	create_group(f->e, 6, "g", (const char *[]){"a", "b", NULL}, NULL);
	struct tmsg g1, g2;
	tmsg_init(&g1, "sg_g", 3, "b", "g", "g1", STORE_USER, 1);
	tmsg_init(&g2, "sg_g", 3, "b", "g", "g2", STORE_USER, 2);
	send1(f->e, 7, &g1);
	send1(f->e, 8, &g2);

	/* Hide: only the seqs that exist, only for that user. */
	struct eng_cmd c = {.type = ENG_CMD_MSG_HIDE, .now_ms = 1};
	int64_t seqs[] = {1, 3, 99, -4};
	c.m.msg_hide.user_id = IM_STR_LIT("a");
	c.m.msg_hide.conv_id = IM_STR_LIT("si_a_b");
	c.m.msg_hide.seqs = seqs;
	c.m.msg_hide.n_seqs = 4;
	expect(f->e, 9, &c, 0, NULL);
	flush_ok(f->e);
	assert_true(hidden(f->e, "a", "si_a_b", 1));
	assert_false(hidden(f->e, "a", "si_a_b", 2));
	assert_true(hidden(f->e, "a", "si_a_b", 3));
	assert_false(hidden(f->e, "a", "si_a_b", 99));
	assert_false(hidden(f->e, "b", "si_a_b", 1));
	assert_false(hidden(f->e, "a", "si_a_bx", 1));
	/* The message itself stays. */
	assert_string_equal(flags_of(f->e, "si_a_b", 4), "-,-,-,-");

	/* Clear one conversation: min_seq = max_seq + 1, read seq = max_seq. */
	struct eng_cmd cl = {.type = ENG_CMD_CONV_CLEAR, .now_ms = 1};
	cl.m.conv_clear.user_id = IM_STR_LIT("a");
	cl.m.conv_clear.conv_ids = (struct im_str[]){IM_STR_LIT("si_a_b"), IM_STR_LIT("si_nope")};
	cl.m.conv_clear.n_convs = 2;
	expect(f->e, 10, &cl, 0, NULL);
	flush_ok(f->e);
	assert_string_equal(conv_rows(f->e, "a"), "sg_g:3::g:0;si_a_b:1:b::5;");
	assert_string_equal(conv_rows(f->e, "b"), "sg_g:3::g:0;si_a_b:1:a::0;");
	assert_true(read_seq(f->e, "a", "si_a_b") == 4);
	assert_true(read_seq(f->e, "a", "sg_g") == 0);
	/* A row without messages (conv_set) clears to 1. */
	struct eng_cmd cs = {.type = ENG_CMD_CONV_SET, .now_ms = 3};
	cs.m.conv_set.owners = (struct im_str[]){IM_STR_LIT("a")};
	cs.m.conv_set.n_owners = 1;
	cs.m.conv_set.conv =
	    (struct eng_conv){.conversation_id = IM_STR_LIT("si_a_c"), .conversation_type = 1};
	expect(f->e, 11, &cs, 0, NULL);
	/* Clear all of a's: every row. */
	cl.m.conv_clear.n_convs = 0;
	cl.m.conv_clear.conv_ids = NULL;
	expect(f->e, 12, &cl, 0, NULL);
	flush_ok(f->e);
	assert_string_equal(conv_rows(f->e, "a"), "sg_g:3::g:3;si_a_b:1:b::5;si_a_c:1:::1;");
	assert_true(read_seq(f->e, "a", "sg_g") == 2);
	assert_true(read_seq(f->e, "a", "si_a_c") == 0);
	/* A user without rows: nothing, no error; an empty user is invalid. */
	cl.m.conv_clear.user_id = IM_STR_LIT("c");
	expect(f->e, 13, &cl, 0, NULL);
	cl.m.conv_clear.user_id = IM_STR_LIT("");
	expect(f->e, 14, &cl, IM_EINVAL, NULL);
	flush_ok(f->e);
	assert_int_equal(check_problems(f->e, NULL), 0);
}

static void conv_set_creates_and_updates_rows(void **state)
{
	struct fx *f = *state;
	register_users(f->e, 1, (const char *[]){"a", "b", NULL});
	struct eng_cmd c = {.type = ENG_CMD_CONV_SET, .now_ms = 4242};
	c.m.conv_set.owners = (struct im_str[]){IM_STR_LIT("a"), IM_STR_LIT("b")};
	c.m.conv_set.n_owners = 2;
	c.m.conv_set.mask = ENG_CONV_IS_PINNED | ENG_CONV_RECV_MSG_OPT;
	c.m.conv_set.conv = (struct eng_conv){.conversation_id = IM_STR_LIT("sg_g"),
					      .conversation_type = 3,
					      .group_id = IM_STR_LIT("g"),
					      .is_pinned = true,
					      .recv_msg_opt = 2,
					      .ex = IM_STR_LIT("not masked")};
	expect(f->e, 2, &c, 0, NULL);
	/* An update: only the masked field changes, the type stays. */
	c.m.conv_set.owners = (struct im_str[]){IM_STR_LIT("a")};
	c.m.conv_set.n_owners = 1;
	c.m.conv_set.mask = ENG_CONV_EX | ENG_CONV_MIN_SEQ;
	c.m.conv_set.conv.conversation_type = 1;
	c.m.conv_set.conv.is_pinned = false;
	c.m.conv_set.conv.min_seq = 7;
	c.now_ms = 9999;
	expect(f->e, 3, &c, 0, NULL);
	/* Rules: an unknown owner, an unknown mask bit, no owners, no conversation id. */
	struct eng_result res;
	c.m.conv_set.owners = (struct im_str[]){IM_STR_LIT("a"), IM_STR_LIT("ghost")};
	c.m.conv_set.n_owners = 2;
	expect(f->e, 4, &c, IM_ENOTFOUND, &res);
	assert_non_null(strstr(res.detail, "ghost"));
	c.m.conv_set.n_owners = 1;
	c.m.conv_set.mask = 1u << 20;
	expect(f->e, 5, &c, IM_EINVAL, NULL);
	c.m.conv_set.mask = ENG_CONV_EX;
	c.m.conv_set.n_owners = 0;
	expect(f->e, 6, &c, IM_EINVAL, NULL);
	c.m.conv_set.n_owners = 1;
	c.m.conv_set.conv.conversation_id = IM_STR_LIT("");
	expect(f->e, 7, &c, IM_EINVAL, NULL);
	flush_ok(f->e);
	struct eng_rtxn *r;
	struct eng_conv cv;
	assert_int_equal(eng_read_begin(f->e, &r), 0);
	assert_int_equal(eng_conv_get(r, IM_STR_LIT("a"), IM_STR_LIT("sg_g"), &cv), 0);
	assert_int_equal(cv.conversation_type, 3);
	assert_true(im_str_eq(cv.group_id, IM_STR_LIT("g")));
	assert_true(cv.is_pinned);
	assert_int_equal(cv.recv_msg_opt, 2);
	assert_true(im_str_eq(cv.ex, IM_STR_LIT("not masked")));
	assert_true(cv.min_seq == 7);
	assert_true(cv.create_time == 4242);
	assert_int_equal(eng_conv_get(r, IM_STR_LIT("b"), IM_STR_LIT("sg_g"), &cv), 0);
	assert_int_equal(cv.ex.n, 0);
	assert_true(cv.min_seq == 0);
	assert_int_equal(eng_conv_get(r, IM_STR_LIT("ghost"), IM_STR_LIT("sg_g"), &cv),
			 IM_ENOTFOUND);
	eng_read_end(r);
	assert_int_equal(check_problems(f->e, NULL), 0);
}

/* ---------------------------------------------------------------- groups */

static int collect_member(const struct eng_member *m, void *arg)
{
	im_buf_printf(arg, "%.*s/%.*s:%d;", (int)m->group_id.n, m->group_id.p, (int)m->user_id.n,
		      m->user_id.p, m->role_level);
	return 0;
}

static int collect_id(struct im_str id, void *arg)
{
	im_buf_printf(arg, "%.*s;", (int)id.n, id.p);
	return 0;
}

static const char *members_of(struct eng *e, const char *gid)
{
	static char out[512];
	struct im_buf b = {0};
	struct eng_rtxn *r;
	assert_int_equal(eng_read_begin(e, &r), 0);
	assert_int_equal(eng_member_scan(r, im_str_c(gid), collect_member, &b), 0);
	eng_read_end(r);
	snprintf(out, sizeof(out), "%s", b.p ? b.p : "");
	im_buf_free(&b);
	return out;
}

static const char *groups_of(struct eng *e, const char *uid)
{
	static char out[512];
	struct im_buf b = {0};
	struct eng_rtxn *r;
	assert_int_equal(eng_read_begin(e, &r), 0);
	assert_int_equal(eng_user_group_scan(r, im_str_c(uid), collect_id, &b), 0);
	eng_read_end(r);
	snprintf(out, sizeof(out), "%s", b.p ? b.p : "");
	im_buf_free(&b);
	return out;
}

static void group_create_stores_members_and_indexes(void **state)
{
	struct fx *f = *state;
	register_users(f->e, 1, (const char *[]){"a", "b", "c", "d", NULL});
	/* With its 1501 notification as an item: stored in sg_g1, rows for all. */
	struct tmsg note;
	tmsg_init(&note, "sg_g1", 3, "a", "g1", "created-g1", ENG_MSG_STORE | ENG_MSG_SENDER_SYNC,
		  1000);
	create_group(f->e, 2, "g1", (const char *[]){"a", "c", "b", NULL}, &note);
	create_group(f->e, 3, "g0", (const char *[]){"b", "a", NULL}, NULL);
	flush_ok(f->e);
	assert_string_equal(drain(f->e), "2:sg_g1:created-g1:1;");
	assert_string_equal(members_of(f->e, "g1"), "g1/a:100;g1/b:20;g1/c:20;");
	assert_string_equal(members_of(f->e, "g0"), "g0/a:20;g0/b:100;");
	assert_string_equal(members_of(f->e, "g"), "");
	assert_string_equal(groups_of(f->e, "a"), "g0;g1;");
	assert_string_equal(groups_of(f->e, "c"), "g1;");
	assert_string_equal(groups_of(f->e, "d"), "");
	assert_string_equal(conv_rows(f->e, "c"), "sg_g1:3::g1:0;");
	/* Rows come from group_create itself, for every member of every group. */
	assert_string_equal(conv_rows(f->e, "b"), "sg_g0:3::g0:0;sg_g1:3::g1:0;");
	struct eng_rtxn *r;
	struct eng_group g;
	struct eng_member m;
	assert_int_equal(eng_read_begin(f->e, &r), 0);
	assert_int_equal(eng_group_get(r, IM_STR_LIT("g1"), &g), 0);
	assert_true(im_str_eq(g.group_id, IM_STR_LIT("g1")));
	assert_true(im_str_eq(g.group_name, IM_STR_LIT("G")));
	assert_true(im_str_eq(g.owner_user_id, IM_STR_LIT("a")));
	assert_int_equal(g.member_count, 3);
	assert_true(g.create_time == 1000);
	assert_int_equal(eng_group_get(r, IM_STR_LIT("g2"), &g), IM_ENOTFOUND);
	assert_int_equal(eng_member_get(r, IM_STR_LIT("g1"), IM_STR_LIT("c"), &m), 0);
	assert_true(im_str_eq(m.group_id, IM_STR_LIT("g1")));
	assert_true(im_str_eq(m.user_id, IM_STR_LIT("c")));
	assert_int_equal(m.role_level, 20);
	assert_true(m.join_time == 1001);
	assert_int_equal(eng_member_get(r, IM_STR_LIT("g1"), IM_STR_LIT("d"), &m), IM_ENOTFOUND);
	eng_read_end(r);

	/* Rules: exists, unknown member, a member twice, no members, no id. */
	struct eng_member ms[2] = {{.user_id = IM_STR_LIT("a")}, {.user_id = IM_STR_LIT("zz")}};
	struct eng_cmd c = {.type = ENG_CMD_GROUP_CREATE, .now_ms = 1};
	c.m.group_create.group = (struct eng_group){.group_id = IM_STR_LIT("g1")};
	c.m.group_create.members = ms;
	c.m.group_create.n_members = 1;
	struct eng_result res;
	expect(f->e, 4, &c, IM_EEXIST, &res);
	assert_non_null(strstr(res.detail, "g1"));
	c.m.group_create.group.group_id = IM_STR_LIT("g2");
	c.m.group_create.n_members = 2;
	expect(f->e, 5, &c, IM_ENOTFOUND, &res);
	assert_non_null(strstr(res.detail, "zz"));
	ms[1].user_id = IM_STR_LIT("a");
	expect(f->e, 6, &c, IM_EEXIST, &res);
	assert_non_null(strstr(res.detail, "twice"));
	c.m.group_create.n_members = 0;
	expect(f->e, 7, &c, IM_EINVAL, NULL);
	c.m.group_create.n_members = 1;
	c.m.group_create.group.group_id = IM_STR_LIT("");
	expect(f->e, 8, &c, IM_EINVAL, NULL);
	flush_ok(f->e);
	assert_string_equal(groups_of(f->e, "a"), "g0;g1;");
	assert_string_equal(drain(f->e), "");
	assert_int_equal(check_problems(f->e, NULL), 0);
}

/* ---------------------------------------------------------------- events */

static void events_follow_commits_in_order(void **state)
{
	struct fx *f = *state;
	register_users(f->e, 1, (const char *[]){"a", "b", "c", NULL});
	create_group(f->e, 2, "g", (const char *[]){"a", "b", NULL}, NULL);
	flush_ok(f->e);
	assert_string_equal(drain(f->e), "");
	send_1v1(f->e, 3, "a", "b", "m1");
	/* Online only (typing): an event without a seq. */
	struct tmsg typing;
	tmsg_init(&typing, "si_a_b", 1, "a", "b", "t1", ENG_MSG_SENDER_SYNC, 5);
	assert_true(send1(f->e, 4, &typing).seq == 0);
	send_1v1(f->e, 5, "a", "b", "m1"); /* dup: no event */
	struct tmsg out;
	tmsg_init(&out, "sg_g", 3, "c", "g", "x", STORE_USER | ENG_MSG_CHECK_MEMBER, 6);
	struct eng_result res;
	assert_int_equal(send_msgs(f->e, 6, (struct tmsg *[]){&out}, 1, 1, &res), 0);
	assert_int_equal(res.code, IM_EPERM); /* rejected: no event */
	/* Items on a command of another type (a user command with its notification). */
	struct tmsg note;
	tmsg_init(&note, "n_b_b", 1, "b", "b", "uc1", ENG_MSG_STORE | ENG_MSG_NOTIFICATION, 7);
	struct eng_cmd uc = {.type = ENG_CMD_USER_CMD_ADD, .now_ms = 7};
	uc.u.user_cmd.c =
	    (struct eng_user_cmd){.user_id = IM_STR_LIT("b"), .type = 1, .uuid = IM_STR_LIT("fav")};
	uc.n_items = 1;
	uc.items = &note.it;
	expect(f->e, 7, &uc, 0, &res);
	assert_int_equal(res.n_msgs, 1);
	/* The same with a rejected own effect (exists): no event, no message. */
	struct tmsg note2;
	tmsg_init(&note2, "n_b_b", 1, "b", "b", "uc2", ENG_MSG_STORE | ENG_MSG_NOTIFICATION, 8);
	uc.items = &note2.it;
	expect(f->e, 8, &uc, IM_EEXIST, &res);
	assert_int_equal(res.n_msgs, 0);
	/* Nothing before the commit. */
	assert_string_equal(drain(f->e), "");
	flush_ok(f->e);
	assert_string_equal(drain(f->e), "3:si_a_b:m1:1;4:si_a_b:t1:0;7:n_b_b:uc1:1;");
	assert_string_equal(drain(f->e), "");
	assert_true(max_seq(f->e, "n_b_b") == 1);

	/* A batch still open keeps its events for a later drain. */
	send_1v1(f->e, 9, "b", "a", "m2");
	flush_ok(f->e);
	send_1v1(f->e, 10, "b", "a", "m3");
	assert_string_equal(drain(f->e), "9:si_a_b:m2:2;");
	flush_ok(f->e);
	assert_string_equal(drain(f->e), "10:si_a_b:m3:3;");
	/* Replays are skipped: no events. */
	send_msgs(f->e, 10, (struct tmsg *[]){&typing}, 1, 1, &res);
	assert_true(res.skipped);
	flush_ok(f->e);
	assert_string_equal(drain(f->e), "");
	/* A batch dropped before its commit (a crash): its events go with it. */
	send_1v1(f->e, 11, "b", "a", "m4");
	reopen(f);
	assert_int_equal(eng_applied_index(f->e), 10);
	assert_string_equal(drain(f->e), "");
	send_1v1(f->e, 11, "b", "a", "m4");
	flush_ok(f->e);
	assert_string_equal(drain(f->e), "11:si_a_b:m4:4;");
	assert_int_equal(check_problems(f->e, NULL), 0);
}

/* Out of memory anywhere in an apply with items: nothing of it, no event; then it applies. */
static void apply_out_of_memory_leaves_no_trace(void **state)
{
	struct fx *f = *state;
	register_users(f->e, 1, (const char *[]){"a", "b", NULL});
	flush_ok(f->e);
	struct tmsg m[3];
	for (int i = 0; i < 3; i++) {
		char cmid[8];
		snprintf(cmid, sizeof(cmid), "m%d", i);
		tmsg_init(&m[i], "si_a_b", 1, "a", "b", cmid, STORE_USER, i);
	}
	struct im_buf b = {0};
	struct eng_msg_item items[3] = {m[0].it, m[1].it, m[2].it};
	struct eng_cmd c = {.type = ENG_CMD_MSG_SEND, .now_ms = 1, .n_items = 3, .items = items};
	assert_int_equal(eng_cmd_encode(&c, &b), 0);
	struct eng_result res;
	int fails = 0;
	for (long n = 1;; n++) {
		im_alloc_fail_after(n);
		int rv = eng_apply(f->e, 2, b.p, b.len, &res);
		im_alloc_fail_after(0);
		if (rv == 0)
			break;
		assert_int_equal(rv, -ENOMEM);
		assert_int_equal(eng_applied_index(f->e), 1);
		fails++;
	}
	printf("apply failed with -ENOMEM at %d allocation points\n", fails);
	assert_true(fails >= 2); /* the items array and an event at least */
	assert_int_equal(res.code, 0);
	flush_ok(f->e);
	assert_string_equal(drain(f->e), "2:si_a_b:m0:1;2:si_a_b:m1:2;2:si_a_b:m2:3;");
	assert_true(max_seq(f->e, "si_a_b") == 3);
	assert_int_equal(check_problems(f->e, NULL), 0);
	im_buf_free(&b);
}

/* ---------------------------------------------------------------- token kick */

static int token_status(struct eng *e, const char *user, int plat, const char *token)
{
	struct eng_rtxn *r;
	int st = -1;
	assert_int_equal(eng_read_begin(e, &r), 0);
	int rv = eng_token_status(r, im_str_c(user), plat, im_str_c(token), &st, NULL);
	eng_read_end(r);
	return rv == 0 ? st : -1;
}

static void token_kick_keeps_the_except_token(void **state)
{
	struct fx *f = *state;
	register_users(f->e, 1, (const char *[]){"a", NULL});
	const char *toks[] = {"t1", "t2", "t3"};
	for (int i = 0; i < 3; i++) {
		struct eng_cmd c = {.type = ENG_CMD_TOKEN_ISSUE, .now_ms = 1000};
		c.u.token_issue.user_id = IM_STR_LIT("a");
		c.u.token_issue.platform_id = 5;
		c.u.token_issue.token = im_str_c(toks[i]);
		c.u.token_issue.expire_at = 999999;
		expect(f->e, 2 + (uint64_t)i, &c, 0, NULL);
	}
	struct eng_cmd k = {.type = ENG_CMD_TOKEN_KICK, .now_ms = 2000};
	k.u.token_kick.user_id = IM_STR_LIT("a");
	k.u.token_kick.platform_id = 5;
	k.u.token_kick.except_token = IM_STR_LIT("t2");
	expect(f->e, 5, &k, 0, NULL);
	flush_ok(f->e);
	assert_int_equal(token_status(f->e, "a", 5, "t1"), ENG_TOKEN_KICKED);
	assert_int_equal(token_status(f->e, "a", 5, "t2"), ENG_TOKEN_NORMAL);
	assert_int_equal(token_status(f->e, "a", 5, "t3"), ENG_TOKEN_KICKED);
	/* A prefix of a token is another token. */
	k.u.token_kick.except_token = IM_STR_LIT("t");
	expect(f->e, 6, &k, 0, NULL);
	flush_ok(f->e);
	assert_int_equal(token_status(f->e, "a", 5, "t2"), ENG_TOKEN_KICKED);
}

/* ---------------------------------------------------------------- check */

static void del_msg_2(struct eng *e, MDB_txn *txn)
{
	unsigned char k[ENG__MSG_KEY_MAX];
	MDB_val key = {eng__msg_key(k, IM_STR_LIT("si_a_b"), 2), k};
	assert_int_equal(mdb_del(txn, eng__dbi(e, ENG__T_MSGS), &key, NULL), 0);
}

static void del_user_group_b(struct eng *e, MDB_txn *txn)
{
	unsigned char k[ENG__PAIR_KEY_MAX];
	MDB_val key = {eng__key_join(k, IM_STR_LIT("b"), IM_STR_LIT("g")), k};
	assert_int_equal(mdb_del(txn, eng__dbi(e, ENG__T_USER_GROUPS), &key, NULL), 0);
}

static void add_orphans(struct eng *e, MDB_txn *txn)
{
	/* A conversation row of an unknown user, a member of an unknown group. */
	struct eng_conv c = {.conversation_type = 1};
	unsigned char k[ENG__CONV_KEY_MAX], v[256];
	MDB_val key = {eng__key_join(k, IM_STR_LIT("ghost"), IM_STR_LIT("si_a_ghost")), k};
	MDB_val val = {eng__conv_rec_size(&c), v};
	eng__conv_rec_encode(v, &c);
	assert_int_equal(mdb_put(txn, eng__dbi(e, ENG__T_CONVS), &key, &val, 0), 0);
	struct eng_member m = {.role_level = 20};
	key = (MDB_val){eng__key_join(k, IM_STR_LIT("nog"), IM_STR_LIT("a")), k};
	val = (MDB_val){eng__member_rec_size(&m), v};
	eng__member_rec_encode(v, &m);
	assert_int_equal(mdb_put(txn, eng__dbi(e, ENG__T_MEMBERS), &key, &val, 0), 0);
}

static void bad_seq_field(struct eng *e, MDB_txn *txn)
{
	/* Message 1 of sg_g rewritten without its seq field. */
	unsigned char k[ENG__MSG_KEY_MAX];
	MDB_val key = {eng__msg_key(k, IM_STR_LIT("sg_g"), 1), k}, val = {5, "\x01\x00\x0a\x01x"};
	assert_int_equal(mdb_put(txn, eng__dbi(e, ENG__T_MSGS), &key, &val, 0), 0);
}

static void check_detects_gaps_and_broken_indexes(void **state)
{
	struct fx *f = *state;
	register_users(f->e, 1, (const char *[]){"a", "b", NULL});
	for (uint64_t i = 2; i <= 4; i++)
		send_1v1(f->e, i, "a", "b", (char[]){'m', (char)('0' + i), 0});
	create_group(f->e, 5, "g", (const char *[]){"a", "b", NULL}, NULL);
	struct tmsg g1;
	tmsg_init(&g1, "sg_g", 3, "a", "g", "g1", STORE_USER, 1);
	send1(f->e, 6, &g1);
	struct eng_cmd rv = revoke_cmd("si_a_b", 3, "a");
	expect(f->e, 7, &rv, 0, NULL);
	flush_ok(f->e);
	assert_int_equal(check_problems(f->e, NULL), 0);

	/* A gap: seq 2 of si_a_b removed. */
	inject(f->e, del_msg_2);
	struct im_buf rep = {0};
	int n = eng_check(f->e, &rep);
	printf("after removing si_a_b 2 (%d problems):\n%s", n, rep.p ? rep.p : "");
	assert_int_equal(n, 2);
	assert_non_null(strstr(rep.p, "msgs si_a_b: seq 3 where 2 was expected"));
	assert_non_null(strstr(rep.p, "msg_dedup"));
	im_buf_free(&rep);

	/* A member without its user_groups entry: the count still agrees. */
	inject(f->e, del_user_group_b);
	int n2 = eng_check(f->e, &rep);
	printf("plus a missing user_groups entry (%d problems):\n%s", n2, rep.p);
	assert_int_equal(n2, n + 1);
	assert_non_null(strstr(rep.p, "members (g, b): no user_groups entry"));
	im_buf_free(&rep);

	/* Orphans: a row of no user, a member of no group (whose count is then off). */
	inject(f->e, add_orphans);
	int n3 = eng_check(f->e, &rep);
	printf("plus orphans (%d problems):\n%s", n3, rep.p);
	assert_int_equal(n3, n2 + 3);
	assert_non_null(strstr(rep.p, "convs (ghost, si_a_ghost): owner does not exist"));
	assert_non_null(strstr(rep.p, "members (nog, a): group does not exist"));
	assert_non_null(strstr(rep.p, "members (nog, a): no user_groups entry"));
	im_buf_free(&rep);

	/* A message without its seq field. */
	inject(f->e, bad_seq_field);
	int n4 = eng_check(f->e, &rep);
	printf("plus a message without its seq field (%d problems):\n%s", n4, rep.p);
	assert_int_equal(n4, n3 + 1);
	assert_non_null(strstr(rep.p, "msgs sg_g 1: does not end with its seq field"));
	im_buf_free(&rep);
}

static void drop_msg_tables(struct eng *e, MDB_txn *txn)
{
	for (int t = ENG__T_MSGS; t <= ENG__T_USER_GROUPS; t++)
		assert_int_equal(mdb_drop(txn, eng__dbi(e, (enum eng__table)t), 1), 0);
}

/* An environment written before the message tables existed (schema 1 all the same). */
static void open_handles_an_environment_without_message_tables(void **state)
{
	struct fx *f = *state;
	register_users(f->e, 1, (const char *[]){"a", "b", NULL});
	flush_ok(f->e);
	inject(f->e, drop_msg_tables);
	eng_close(f->e);
	struct eng_opts o = {.dir = f->dir, .read_only = true};
	char err[256];
	if (eng_open(&f->e, &o, err, sizeof(err)) != 0)
		fail_msg("read-only open: %s", err);
	struct eng_rtxn *r;
	struct eng_conv cv;
	struct eng_group g;
	assert_int_equal(eng_read_begin(f->e, &r), 0);
	assert_int_equal(eng_conv_seq(r, IM_STR_LIT("si_a_b"), NULL, NULL, NULL), IM_ENOTFOUND);
	assert_int_equal(eng_msg_get(r, IM_STR_LIT("si_a_b"), 1, NULL, NULL, NULL), IM_ENOTFOUND);
	assert_int_equal(eng_conv_get(r, IM_STR_LIT("a"), IM_STR_LIT("si_a_b"), &cv), IM_ENOTFOUND);
	assert_int_equal(eng_group_get(r, IM_STR_LIT("g"), &g), IM_ENOTFOUND);
	assert_false(eng_msg_hidden(r, IM_STR_LIT("a"), IM_STR_LIT("si_a_b"), 1));
	assert_true(eng_read_seq(r, IM_STR_LIT("a"), IM_STR_LIT("si_a_b")) == 0);
	eng_read_end(r);
	assert_string_equal(conv_rows(f->e, "a"), "");
	assert_string_equal(members_of(f->e, "g"), "");
	assert_string_equal(groups_of(f->e, "a"), "");
	assert_int_equal(check_problems(f->e, NULL), 0);
	eng_close(f->e);
	/* Read-write creates them, and messages work. */
	f->e = open_at(f->dir, 0, 0);
	send_1v1(f->e, 2, "a", "b", "m1");
	flush_ok(f->e);
	assert_true(max_seq(f->e, "si_a_b") == 1);
	assert_int_equal(check_problems(f->e, NULL), 0);
}

/* ---------------------------------------------------------------- crashes */

/*
 * The crash history is a pure function of the log index (and a salt), so the
 * parent can replay it in a model: index 1 registers u0..u7, index 2 creates
 * group g of u0..u3, every later index is a msg_send of 1..3 items in random
 * conversations.  Item 0 is always new; later items are often resends of an
 * earlier index's item 0 (same conversation, sender and client id); some
 * commands repeat an earlier index's command whole (a client retry after a
 * timeout); some carry a group message from an outsider with
 * ENG_MSG_CHECK_MEMBER, which rejects the whole command.
 */
#define CU 8
static const char *const cusers[] = {"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7", NULL};

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Item k (only k == 0 is ever "new") of index idx, as first written. */
static void crash_item0(struct tmsg *m, uint64_t idx, uint64_t salt)
{
	uint64_t h = mix(idx ^ salt);
	char cmid[32];
	snprintf(cmid, sizeof(cmid), "c%" PRIu64, idx);
	int a = (int)(h % CU), b = (int)((h >> 8) % CU);
	if ((h >> 16) % 4 == 0) {
		char conv[80];
		a = (int)((h >> 20) % 4); /* a member */
		snprintf(conv, sizeof(conv), "sg_g");
		tmsg_init(m, conv, 3, cusers[a], "g", cmid, STORE_USER | ENG_MSG_CHECK_MEMBER,
			  (int64_t)idx);
	} else {
		char conv[80];
		conv_1v1(conv, sizeof(conv), cusers[a], cusers[b]);
		tmsg_init(m, conv, 1, cusers[a], cusers[b], cmid, STORE_USER, (int64_t)idx);
	}
}

/* The items of the msg_send at idx >= 3 into ms (up to 3); returns their number. */
static int crash_items(struct tmsg *ms, uint64_t idx, uint64_t salt)
{
	uint64_t h = mix(mix(idx) ^ salt);
	/* A whole earlier command again. */
	if (idx > 4 && h % 6 == 0)
		return crash_items(ms, 3 + (h >> 8) % (idx - 3), salt);
	int n = 1 + (int)((h >> 4) % 3);
	crash_item0(&ms[0], idx, salt);
	for (int k = 1; k < n; k++) {
		uint64_t hk = mix(h + (uint64_t)k);
		if (idx > 3 && hk % 2 == 0) {
			crash_item0(&ms[k], 3 + (hk >> 8) % (idx - 3), salt); /* a resend */
		} else if (hk % 7 == 1) {
			char cmid[32];
			snprintf(cmid, sizeof(cmid), "x%" PRIu64 ".%d", idx, k);
			tmsg_init(&ms[k], "sg_g", 3, cusers[4 + (hk >> 8) % 4], "g", cmid,
				  STORE_USER | ENG_MSG_CHECK_MEMBER, (int64_t)idx); /* outsider */
		} else {
			char cmid[32], conv[80];
			snprintf(cmid, sizeof(cmid), "c%" PRIu64 ".%d", idx, k);
			int a = (int)((hk >> 8) % CU), b = (int)((hk >> 16) % CU);
			conv_1v1(conv, sizeof(conv), cusers[a], cusers[b]);
			tmsg_init(&ms[k], conv, 1, cusers[a], cusers[b], cmid, STORE_USER,
				  (int64_t)idx);
		}
	}
	return n;
}

static int crash_apply(struct eng *e, uint64_t idx, uint64_t salt, struct eng_result *res)
{
	if (idx == 1) {
		struct eng_user u[CU];
		for (int i = 0; i < CU; i++)
			u[i] = (struct eng_user){.user_id = im_str_c(cusers[i])};
		struct eng_cmd c = {.type = ENG_CMD_USER_REGISTER, .now_ms = 1};
		c.u.user_register.n = CU;
		c.u.user_register.users = u;
		struct im_buf b = {0};
		if (eng_cmd_encode(&c, &b) != 0)
			return -1;
		int rv = eng_apply(e, idx, b.p, b.len, res);
		im_buf_free(&b);
		return rv;
	}
	if (idx == 2) {
		struct eng_member m[4];
		for (int i = 0; i < 4; i++)
			m[i] =
			    (struct eng_member){.user_id = im_str_c(cusers[i]), .role_level = 20};
		struct eng_cmd c = {.type = ENG_CMD_GROUP_CREATE, .now_ms = 2};
		c.m.group_create.group = (struct eng_group){.group_id = IM_STR_LIT("g")};
		c.m.group_create.members = m;
		c.m.group_create.n_members = 4;
		struct im_buf b = {0};
		if (eng_cmd_encode(&c, &b) != 0)
			return -1;
		int rv = eng_apply(e, idx, b.p, b.len, res);
		im_buf_free(&b);
		return rv;
	}
	struct tmsg ms[3];
	int n = crash_items(ms, idx, salt);
	struct eng_msg_item items[3];
	for (int i = 0; i < n; i++)
		items[i] = ms[i].it;
	struct eng_cmd c = {.type = ENG_CMD_MSG_SEND, .now_ms = (int64_t)idx};
	c.n_items = (uint32_t)n;
	c.items = items;
	struct im_buf b = {0};
	if (eng_cmd_encode(&c, &b) != 0)
		return -1;
	int rv = eng_apply(e, idx, b.p, b.len, res);
	im_buf_free(&b);
	return rv;
}

static void xwrite(int fd, const void *p, size_t n)
{
	if (write(fd, p, n) != (ssize_t)n)
		_exit(9);
}

static void msg_crash_child(const char *dir, int wfd, unsigned seed, uint64_t salt)
{
	struct eng_opts o = {.dir = dir, .map_size = 128 << 10, .map_max = 64 << 20};
	struct eng *e;
	if (eng_open(&e, &o, NULL, 0) != 0)
		_exit(2);
	srand(seed);
	uint64_t start = eng_applied_index(e) + 1;
	uint64_t from = start > 4 && rand() % 2 ? start - 1 - (uint64_t)(rand() % 3) : start;
	for (uint64_t i = from; i < from + 100000; i++) {
		struct eng_result res;
		if (crash_apply(e, i, salt, &res) != 0)
			_exit(3);
		if (i < start && !res.skipped)
			_exit(4);
		if (i >= start && res.skipped)
			_exit(5);
		if (i <= 2 && res.code != 0)
			_exit(7);
		if (rand() % 4 == 0) {
			if (eng_flush(e) != 0)
				_exit(6);
			eng_events_drain(e, ignore_event, NULL);
			uint64_t a = eng_applied_index(e);
			xwrite(wfd, &a, sizeof(a));
		}
	}
	_exit(0);
}

/* The model: client ids to (conversation, seq), and each conversation's count. */
struct model {
	struct mkey {
		char key[96]; /* sender 0x01 client id */
		char conv[80];
		int64_t seq;
	} * keys;
	size_t n_keys, cap_keys;
	struct mconv {
		char conv[80];
		int64_t max;
	} convs[64];
	int n_convs;
};

static struct mkey *model_find(struct model *m, const char *send, const char *cmid)
{
	char key[96];
	snprintf(key, sizeof(key), "%s\x01%s", send, cmid);
	for (size_t i = 0; i < m->n_keys; i++)
		if (strcmp(m->keys[i].key, key) == 0)
			return &m->keys[i];
	return NULL;
}

static struct mconv *model_conv(struct model *m, const char *conv)
{
	for (int i = 0; i < m->n_convs; i++)
		if (strcmp(m->convs[i].conv, conv) == 0)
			return &m->convs[i];
	assert_true(m->n_convs < 64);
	struct mconv *c = &m->convs[m->n_convs++];
	snprintf(c->conv, sizeof(c->conv), "%.79s", conv);
	c->max = 0;
	return c;
}

/* Applies index idx's command to the model: returns false when it is rejected. */
static bool model_apply(struct model *m, uint64_t idx, uint64_t salt)
{
	struct tmsg ms[3];
	int n = crash_items(ms, idx, salt);
	size_t keys0 = m->n_keys;
	struct {
		struct mconv *c;
		int64_t max;
	} undo[3];
	int n_undo = 0;
	for (int i = 0; i < n; i++) {
		if (model_find(m, ms[i].send, ms[i].cmid) != NULL)
			continue; /* a dup */
		if (ms[i].it.session_type == 3 && strcmp(ms[i].send, "u4") >= 0) {
			/* An outsider: the whole command is rejected. */
			m->n_keys = keys0;
			for (int u = n_undo - 1; u >= 0; u--)
				undo[u].c->max = undo[u].max;
			return false;
		}
		struct mconv *c = model_conv(m, ms[i].conv);
		undo[n_undo].c = c;
		undo[n_undo++].max = c->max;
		if (m->n_keys == m->cap_keys) {
			m->cap_keys = m->cap_keys ? m->cap_keys * 2 : 1024;
			m->keys = realloc(m->keys, m->cap_keys * sizeof(*m->keys));
		}
		struct mkey *k = &m->keys[m->n_keys++];
		snprintf(k->key, sizeof(k->key), "%s\x01%s", ms[i].send, ms[i].cmid);
		snprintf(k->conv, sizeof(k->conv), "%.79s", ms[i].conv);
		k->seq = ++c->max;
	}
	return true;
}

static void msg_crash_at_random_points_stores_each_message_once(void **state)
{
	struct fx *f = *state;
	unsigned seed = test_seed("msg_crash_at_random_points_stores_each_message_once");
	srand(seed);
	uint64_t salt = mix(seed);
	eng_close(f->e); /* no environment open across fork */
	f->e = NULL;
	uint64_t acked = 0;
	for (int round = 0; round < 20; round++) {
		int p[2];
		assert_int_equal(pipe(p), 0);
		unsigned child_seed = (unsigned)rand();
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(p[0]);
			msg_crash_child(f->dir, p[1], child_seed, salt);
		}
		close(p[1]);
		int want = 1 + rand() % 40;
		for (int k = 0; k < want; k++) {
			uint64_t a;
			ssize_t n = read(p[0], &a, sizeof(a));
			if (n != (ssize_t)sizeof(a)) {
				int st;
				waitpid(pid, &st, 0);
				fail_msg("round %d: child ended early, status 0x%x", round, st);
			}
			assert_true(a >= acked);
			acked = a;
		}
		kill(pid, SIGKILL);
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		close(p[0]);
	}

	f->e = open_at(f->dir, 0, 0);
	uint64_t applied = eng_applied_index(f->e);
	/* The model of indexes 3..applied. */
	struct model m = {0};
	int rejected = 0;
	for (uint64_t i = 3; i <= applied; i++)
		rejected += !model_apply(&m, i, salt);
	printf("acknowledged %" PRIu64 ", applied %" PRIu64 ": %zu messages in %d conversations, "
	       "%d commands rejected\n",
	       acked, applied, m.n_keys, m.n_convs, rejected);
	assert_true(applied >= acked);
	assert_true(m.n_keys > 0);

	/* Every message once, where the model put it; nothing else. */
	struct eng_rtxn *r;
	assert_int_equal(eng_read_begin(f->e, &r), 0);
	size_t stored = 0;
	for (int c = 0; c < m.n_convs; c++) {
		int64_t mx, mn, t;
		assert_int_equal(eng_conv_seq(r, im_str_c(m.convs[c].conv), &mx, &mn, &t), 0);
		if (mx != m.convs[c].max)
			fail_msg("%s: max_seq %" PRId64 ", model %" PRId64, m.convs[c].conv, mx,
				 m.convs[c].max);
		stored += (size_t)mx;
	}
	assert_int_equal(stored, m.n_keys);
	for (size_t i = 0; i < m.n_keys; i++) {
		struct mkey *k = &m.keys[i];
		const char *sep = strchr(k->key, '\x01');
		struct im_str send = {k->key, (uint32_t)(sep - k->key)}, cmid = im_str_c(sep + 1);
		struct im_str conv, smid, d;
		int64_t seq, st;
		assert_int_equal(eng_msg_dedup(r, send, cmid, &conv, &seq, &smid, &st), 0);
		assert_true(im_str_eq(conv, im_str_c(k->conv)));
		if (seq != k->seq)
			fail_msg("%s: seq %" PRId64 ", model %" PRId64, k->key, seq, k->seq);
		assert_int_equal(eng_msg_get(r, conv, seq, &d, NULL, NULL), 0);
		struct pbinfo pi;
		assert_true(pb_walk(d, &pi) > 0);
		assert_true(im_str_eq(pi.cmid, cmid));
		assert_true(im_str_eq(pi.send, send));
		assert_int_equal(pi.last_field, 14);
		assert_true(pi.seq == (uint64_t)seq);
	}
	eng_read_end(r);
	assert_int_equal(check_problems(f->e, NULL), 0);
	free(m.keys);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(seqs_are_contiguous_per_conversation),
	    T(stored_bytes_end_with_the_seq_field),
	    T(dedup_returns_the_original_and_stores_once),
	    T(first_message_creates_conversation_rows),
	    T(check_member_rejects_outsiders_and_changes_nothing),
	    T(items_are_validated),
	    T(mark_read_raises_never_lowers_and_flags),
	    T(revoke_twice_is_eexist),
	    T(hide_and_clear),
	    T(conv_set_creates_and_updates_rows),
	    T(group_create_stores_members_and_indexes),
	    T(events_follow_commits_in_order),
	    T(apply_out_of_memory_leaves_no_trace),
	    T(token_kick_keeps_the_except_token),
	    T(check_detects_gaps_and_broken_indexes),
	    T(open_handles_an_environment_without_message_tables),
	    T(msg_crash_at_random_points_stores_each_message_once),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
