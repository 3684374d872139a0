/* events.c - the engine's event list: what apply did that the server must push. */
#include <errno.h>

#include "engine_int.h"
#include "rw.h"

/*
 * Events are serialised back to back into e->events, so an event owns copies
 * of its strings (the command buffer and the map pages they came from do not
 * outlive the apply) and dropping the events of a command is one truncation:
 *
 *   len u32 (of the rest) | index u64 | seq u64 | item (codec.c) | stored str |
 *   extra str
 *
 * The bytes before e->events_committed belong to committed batches and are
 * the only ones eng_events_drain() hands out; the rest belong to the open
 * batch:
 *
 *   eng__event_add        apply_once: the command's items
 *   eng__events_truncate  apply_once: the command was rejected or failed
 *   eng__events_commit    the batch committed
 *   eng__events_lose      the batch was lost (its commit failed)
 */

/* A drained buffer bigger than this is released, so one big batch does not pin memory. */
#define EVENTS_KEEP (1u << 20)

int eng__event_add(struct eng *e, uint64_t index, const struct eng_msg_item *it, uint64_t seq,
		   struct im_str stored, struct im_str extra)
{
	uint64_t n =
	    4 + 8 + 8 + eng__item_wire_size(it) + 4 + (uint64_t)stored.n + 4 + (uint64_t)extra.n;
	int rv = im_buf_reserve(&e->events, (size_t)n);
	if (rv != 0)
		return eng__errf(e, rv, "event: out of memory");
	unsigned char *p = (unsigned char *)e->events.p + e->events.len;
	p = wr_u32(p, (uint32_t)(n - 4));
	p = wr_u64(p, index);
	p = wr_u64(p, seq);
	p = eng__item_write(p, it);
	p = wr_str(p, stored);
	wr_str(p, extra);
	e->events.len += (size_t)n;
	return 0;
}

void eng__events_truncate(struct eng *e, size_t mark)
{
	if (mark < e->events_committed)
		mark = e->events_committed; /* never drop a committed event */
	if (mark < e->events.len)
		e->events.len = mark;
}

void eng__events_commit(struct eng *e)
{
	e->events_committed = e->events.len;
}

void eng__events_lose(struct eng *e)
{
	e->events.len = e->events_committed;
}

void eng_events_drain(struct eng *e, eng_event_cb cb, void *arg)
{
	size_t end = e->events_committed, off = 0;
	const unsigned char *base = (const unsigned char *)e->events.p;
	while (off + 4 <= end) {
		uint32_t n = im_get_be32(base + off);
		struct rd r = {base + off + 4, IM_MIN((size_t)n, end - off - 4), false};
		struct eng_event ev;
		ev.index = rd_u64(&r);
		ev.seq = rd_u64(&r);
		eng__item_read(&r, &ev.item);
		ev.stored = rd_str(&r, ENG_MSG_MAX + ENG__SEQ_FIELD_MAX);
		ev.extra = rd_str(&r, ENG_MEMBERS_MAX * (ENG_ID_MAX + 1));
		/* The bytes were written by eng__event_add(): they always read back. */
		if (!r.bad)
			cb(&ev, arg);
		off += 4 + (size_t)n;
	}
	/* Keep the events of the open batch, if any, at the front. */
	size_t rest = e->events.len - end;
	if (rest > 0)
		memmove(e->events.p, e->events.p + end, rest);
	e->events.len = rest;
	e->events_committed = 0;
	if (rest == 0 && e->events.cap > EVENTS_KEEP)
		im_buf_free(&e->events);
}
