/* fuzz_cmd.c - libFuzzer target for the command codec and apply (untrusted Raft entries). */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

/*
 * For each input:
 *  1. decode it; if it decodes, encoding the result must give the same bytes
 *     (the codec is canonical) and the views must lie inside the input;
 *  2. if it fails only on the checksum, fix the CRC and try again, so the
 *     fuzzer reaches the payload parser without having to learn CRC-32;
 *  3. apply the (fixed) bytes to one engine opened once in a temporary
 *     directory with a small map: apply must return 0 or IM_EFULL, and a
 *     command that does not decode must be reported as IM_ECORRUPT;
 *  4. after each flush, drain the events: each comes from an applied index,
 *     in log order, and a stored one ends with its seq field (0x70, varint).
 * The engine is recreated when its map is full, so every run stays fast.
 */

static struct eng *eng;
static char dir[64];
static uint64_t next_index;
static uint64_t last_event_index;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void engine_drop(void)
{
	eng_close(eng);
	eng = NULL;
	last_event_index = 0;
	if (dir[0])
		nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	dir[0] = '\0';
}

static void engine_open(void)
{
	snprintf(dir, sizeof(dir), "/tmp/imlog-fuzz-cmd-XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	struct eng_opts o = {.dir = dir, .map_size = 256 << 10, .map_max = 1 << 20};
	char err[256];
	if (eng_open(&eng, &o, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_cmd: eng_open: %s\n", err);
		abort();
	}
	next_index = 1;
	static bool registered;
	if (!registered) {
		atexit(engine_drop);
		registered = true;
	}
}

static void check_view(struct im_str s, const uint8_t *d, size_t n)
{
	if (s.n && ((const uint8_t *)s.p < d || (const uint8_t *)s.p + s.n > d + n))
		abort();
}

/* Every string view of a decoded command lies inside the input. */
static void check_views(const struct eng_cmd *c, const uint8_t *d, size_t n)
{
	switch (c->type) {
	case ENG_CMD_USER_REGISTER:
		for (uint32_t i = 0; i < c->u.user_register.n; i++) {
			check_view(c->u.user_register.users[i].user_id, d, n);
			check_view(c->u.user_register.users[i].nickname, d, n);
			check_view(c->u.user_register.users[i].ex, d, n);
		}
		break;
	case ENG_CMD_TOKEN_ISSUE:
		check_view(c->u.token_issue.token, d, n);
		break;
	case ENG_CMD_TOKEN_KICK:
		check_view(c->u.token_kick.user_id, d, n);
		check_view(c->u.token_kick.except_token, d, n);
		break;
	case ENG_CMD_CONV_SET:
		for (uint32_t i = 0; i < c->m.conv_set.n_owners; i++)
			check_view(c->m.conv_set.owners[i], d, n);
		check_view(c->m.conv_set.conv.conversation_id, d, n);
		check_view(c->m.conv_set.conv.user_id, d, n);
		check_view(c->m.conv_set.conv.group_id, d, n);
		check_view(c->m.conv_set.conv.attached_info, d, n);
		check_view(c->m.conv_set.conv.ex, d, n);
		break;
	case ENG_CMD_MARK_READ:
		check_view(c->m.mark_read.user_id, d, n);
		check_view(c->m.mark_read.conv_id, d, n);
		if (c->m.mark_read.n_seqs > ENG_SEQS_MAX)
			abort();
		break;
	case ENG_CMD_REVOKE:
		check_view(c->m.revoke.conv_id, d, n);
		check_view(c->m.revoke.revoker_id, d, n);
		check_view(c->m.revoke.revoker_nickname, d, n);
		break;
	case ENG_CMD_MSG_HIDE:
		check_view(c->m.msg_hide.user_id, d, n);
		check_view(c->m.msg_hide.conv_id, d, n);
		if (c->m.msg_hide.n_seqs > ENG_SEQS_MAX)
			abort();
		break;
	case ENG_CMD_CONV_CLEAR:
		check_view(c->m.conv_clear.user_id, d, n);
		for (uint32_t i = 0; i < c->m.conv_clear.n_convs; i++)
			check_view(c->m.conv_clear.conv_ids[i], d, n);
		break;
	case ENG_CMD_GROUP_CREATE: {
		const struct eng_group *g = &c->m.group_create.group;
		check_view(g->group_id, d, n);
		check_view(g->group_name, d, n);
		check_view(g->notification, d, n);
		check_view(g->introduction, d, n);
		check_view(g->face_url, d, n);
		check_view(g->owner_user_id, d, n);
		check_view(g->ex, d, n);
		check_view(g->creator_user_id, d, n);
		check_view(g->notification_user_id, d, n);
		for (uint32_t i = 0; i < c->m.group_create.n_members; i++) {
			const struct eng_member *m = &c->m.group_create.members[i];
			check_view(m->group_id, d, n);
			check_view(m->user_id, d, n);
			check_view(m->nickname, d, n);
			check_view(m->face_url, d, n);
			check_view(m->operator_user_id, d, n);
			check_view(m->ex, d, n);
			check_view(m->inviter_user_id, d, n);
		}
		break;
	}
	case ENG_CMD_GROUP_SET:
		check_view(c->m.group_set.group.group_id, d, n);
		check_view(c->m.group_set.group.notification, d, n);
		check_view(c->m.group_set.group.notification_user_id, d, n);
		break;
	case ENG_CMD_MEMBER_SET:
		check_view(c->m.member_set.group_id, d, n);
		for (uint32_t i = 0; i < c->m.member_set.n_members; i++) {
			check_view(c->m.member_set.members[i].user_id, d, n);
			check_view(c->m.member_set.members[i].nickname, d, n);
			check_view(c->m.member_set.members[i].inviter_user_id, d, n);
		}
		break;
	case ENG_CMD_GROUP_TRANSFER:
		check_view(c->m.group_transfer.group_id, d, n);
		check_view(c->m.group_transfer.new_owner, d, n);
		break;
	case ENG_CMD_GROUP_REQ_PUT:
		for (uint32_t i = 0; i < c->m.group_req_put.n_reqs; i++) {
			check_view(c->m.group_req_put.reqs[i].group_id, d, n);
			check_view(c->m.group_req_put.reqs[i].user_id, d, n);
			check_view(c->m.group_req_put.reqs[i].req_msg, d, n);
			check_view(c->m.group_req_put.reqs[i].inviter_user_id, d, n);
		}
		break;
	case ENG_CMD_GROUP_REQ_RESPOND:
		check_view(c->m.group_req_respond.group_id, d, n);
		check_view(c->m.group_req_respond.handler, d, n);
		check_view(c->m.group_req_respond.handled_msg, d, n);
		break;
	default:
		break;
	}
	if (c->n_items > ENG_ITEMS_MAX)
		abort();
	for (uint32_t i = 0; i < c->n_items; i++) {
		const struct eng_msg_item *it = &c->items[i];
		check_view(it->conv_id, d, n);
		check_view(it->send_id, d, n);
		check_view(it->recv_id, d, n);
		check_view(it->group_id, d, n);
		check_view(it->client_msg_id, d, n);
		check_view(it->server_msg_id, d, n);
		check_view(it->op_id, d, n);
		check_view(it->data, d, n);
	}
}

/* Step 4: events of committed indexes, in order; stored bytes end with their seq. */
static void check_event(const struct eng_event *ev, void *arg)
{
	uint64_t applied = *(const uint64_t *)arg;
	if (ev->index == 0 || ev->index > applied || ev->index < last_event_index)
		abort();
	last_event_index = ev->index;
	if (ev->seq == 0)
		return;
	/* The tag, then the varint of seq: find the varint's start from the end. */
	unsigned char f[11];
	size_t k = 0;
	uint64_t s = ev->seq;
	f[k++] = 0x70;
	do {
		f[k] = (unsigned char)(s & 0x7f);
		s >>= 7;
		if (s)
			f[k] |= 0x80;
		k++;
	} while (s);
	if (ev->stored.n < k || memcmp(ev->stored.p + ev->stored.n - k, f, k) != 0)
		abort();
}

static void flush_and_drain(void)
{
	if (eng_flush(eng) != 0) {
		engine_drop();
		return;
	}
	uint64_t applied = eng_applied_index(eng);
	eng_events_drain(eng, check_event, &applied);
}

/* Step 1: a successful decode of a current-version entry re-encodes to the same bytes. */
static int round_trip(const uint8_t *d, size_t n)
{
	struct eng_cmd c;
	int rv = eng_cmd_decode(d, n, &c);
	if (rv != 0)
		return rv;
	check_views(&c, d, n);
	struct im_buf b = {0};
	/* Only the current version (3) is canonical: a version 2 entry re-encodes as 3. */
	if (d[2] == 3 && (eng_cmd_encode(&c, &b) != 0 || b.len != n || memcmp(b.p, d, n) != 0))
		abort();
	im_buf_free(&b);
	eng_cmd_release(&c);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > (1u << 20))
		return 0;
	uint8_t *d = malloc(size ? size : 1);
	if (d == NULL)
		return 0;
	memcpy(d, data, size);
	int rv = round_trip(d, size);
	if (rv == IM_ECHECKSUM) {
		/* Step 2: the CRC covers header bytes 0..7 and the payload. */
		uint32_t crc = im_crc32(0, d, 8);
		crc = im_crc32(crc, d + ENG_CMD_HEADER, size - ENG_CMD_HEADER);
		im_put_be32(d + 8, crc);
		rv = round_trip(d, size);
		if (rv == IM_ECHECKSUM)
			abort();
	}

	if (eng == NULL)
		engine_open();
	struct eng_result res;
	int arv = eng_apply(eng, next_index, d, size, &res);
	if (arv == 0) {
		if (rv != 0 && res.code != IM_ECORRUPT)
			abort();
		if (eng_applied_index(eng) != next_index)
			abort();
		next_index++;
		/* A replay of the same index is skipped. */
		if (eng_apply(eng, next_index - 1, d, size, &res) != 0 || !res.skipped)
			abort();
		if (next_index % 8 == 0)
			flush_and_drain();
	} else if (arv == IM_EFULL) {
		engine_drop();
	} else {
		fprintf(stderr, "fuzz_cmd: eng_apply: %s\n", eng_errmsg(eng));
		abort();
	}
	free(d);
	return 0;
}
