/* gw_online.c - the gateway's online state: connections by user, platform masks, 2005
 * subscriptions and the publication of online changes (openim-protocol.md §4.4, §5.2).
 *
 * Invariants:
 * 1. A gw_sub sits in two lists, its conn's and its target user's; only
 *    registered conns hold subscriptions and unregistering drops them.
 * 2. A gw_user lives while it has conns, subscribers or is dirty; only
 *    gw__flush_dirty() frees one, and only between operations.
 * 3. Online-status changes are deferred: they mark the user dirty and the
 *    outermost operation (gw__enter/gw__leave) publishes every user whose
 *    platform mask changed, so no list is changed under a walk but by the
 *    removal of the element being served.
 * 4. user->published is the mask subscribers last heard of; a push goes out
 *    only when the live mask differs from it.
 */
#include "gateway_int.h"

#include <errno.h>

#include "api.h"
#include "pb.h"

/* ---- users ---- */

static uint64_t hash_id(struct im_str id)
{
	uint64_t h = 1469598103934665603ull;
	for (uint32_t i = 0; i < id.n; i++)
		h = (h ^ (unsigned char)id.p[i]) * 1099511628211ull;
	return h;
}

struct gw_user *gw__user_find(struct gw *g, struct im_str id)
{
	uint64_t h = hash_id(id);
	for (struct gw_user *u = g->buckets[h & (g->n_buckets - 1)]; u; u = u->hnext)
		if (u->hash == h && im_str_eq((struct im_str){u->id, u->id_len}, id))
			return u;
	return NULL;
}

static void mark_dirty(struct gw *g, struct gw_user *u)
{
	if (u->dirty)
		return;
	u->dirty = true;
	u->dnext = g->dirty;
	g->dirty = u;
}

static void grow(struct gw *g)
{
	size_t n = g->n_buckets * 2;
	struct gw_user **b = im_calloc(n, sizeof(*b));
	if (b == NULL)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < g->n_buckets; i++) {
		struct gw_user *u = g->buckets[i], *next;
		for (; u; u = next) {
			next = u->hnext;
			u->hnext = b[u->hash & (n - 1)];
			b[u->hash & (n - 1)] = u;
		}
	}
	im_free(g->buckets);
	g->buckets = b;
	g->n_buckets = n;
}

/* Finds or creates; a new entry is dirty so that gw__flush_dirty() drops it if unused. */
static struct gw_user *user_get(struct gw *g, struct im_str id)
{
	struct gw_user *u = gw__user_find(g, id);
	if (u != NULL)
		return u;
	u = im_calloc(1, sizeof(*u) + id.n + 1);
	if (u == NULL)
		return NULL;
	u->hash = hash_id(id);
	u->id_len = id.n;
	memcpy(u->id, id.p, id.n);
	if (g->n_users >= g->n_buckets)
		grow(g);
	struct gw_user **head = &g->buckets[u->hash & (g->n_buckets - 1)];
	u->hnext = *head;
	*head = u;
	g->n_users++;
	mark_dirty(g, u);
	return u;
}

static void user_free(struct gw *g, struct gw_user *u)
{
	struct gw_user **pp = &g->buckets[u->hash & (g->n_buckets - 1)];
	while (*pp != u)
		pp = &(*pp)->hnext;
	*pp = u->hnext;
	g->n_users--;
	im_free(u);
}

static uint32_t user_mask(const struct gw_user *u)
{
	uint32_t m = 0;
	for (unsigned p = 0; p < GW_PLATFORMS; p++)
		if (u->per_platform[p])
			m |= 1u << p;
	return m;
}

/* Appends SubUserOnlineStatusElem{userID, onlinePlatformIDs} as field 1 (§5.2). */
static void tips_add(struct pb_w *w, struct im_str user_id, uint32_t mask)
{
	size_t elem = pb_w_begin(w, 1);
	pb_w_str(w, 1, user_id);
	if (mask) {
		size_t ids = pb_w_begin(w, 2); /* packed repeated int32 */
		for (unsigned p = 0; p < GW_PLATFORMS; p++)
			if (mask & (1u << p))
				pb_w_varint(w, p);
		pb_w_end(w, ids);
	}
	pb_w_end(w, elem);
}

/* ---- publication of online state ---- */

static void publish(struct gw *g, struct gw_user *u)
{
	if (u->subs == NULL)
		return;
	struct im_buf tips = {0};
	struct pb_w w;
	pb_w_init(&w, &tips);
	tips_add(&w, (struct im_str){u->id, u->id_len}, u->published);
	if (pb_w_done(&w) != 0) {
		im_buf_free(&tips);
		return;
	}
	struct gw_frames f;
	gw__frames_init(&f, GW_REQ_SUB, "", tips.p, tips.len, true);
	for (struct gw_sub *s = u->subs, *next; s; s = next) {
		next = s->tnext;
		if (s->conn->user != NULL)
			gw__conn_send(s->conn, gw__frames_get(&f, s->conn->fmt));
	}
	gw__frames_free(&f);
	im_buf_free(&tips);
}

void gw__flush_dirty(struct gw *g)
{
	while (g->dirty) {
		struct gw_user *u = g->dirty;
		g->dirty = u->dnext;
		u->dnext = NULL;
		u->dirty = false;
		uint32_t mask = user_mask(u);
		if (mask != u->published) {
			u->published = mask;
			publish(g, u);
		}
		if (!u->dirty && u->n_conns == 0 && u->subs == NULL)
			user_free(g, u);
	}
}

/* ---- registration and subscriptions ---- */

static void sub_del(struct gw *g, struct gw_sub *s)
{
	struct gw_conn *c = s->conn;
	struct gw_user *t = s->target;
	if (s->cprev)
		s->cprev->cnext = s->cnext;
	else
		c->subs = s->cnext;
	if (s->cnext)
		s->cnext->cprev = s->cprev;
	if (s->tprev)
		s->tprev->tnext = s->tnext;
	else
		t->subs = s->tnext;
	if (s->tnext)
		s->tnext->tprev = s->tprev;
	c->n_subs--;
	mark_dirty(g, t); /* may now be unused */
	im_free(s);
}

static struct gw_sub *sub_find(struct gw_conn *c, const struct gw_user *t)
{
	for (struct gw_sub *s = c->subs; s; s = s->cnext)
		if (s->target == t)
			return s;
	return NULL;
}

/* Subscribes c to id (idempotent).  0, or -ENOMEM. */
static int sub_add(struct gw_conn *c, struct im_str id)
{
	struct gw *g = c->g;
	if (id.n == 0 || id.n > ENG_ID_MAX)
		return 0;
	struct gw_user *t = user_get(g, id);
	if (t == NULL)
		return -ENOMEM;
	if (sub_find(c, t) != NULL || c->n_subs >= GW_MAX_SUBS)
		return 0;
	struct gw_sub *s = im_calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->conn = c;
	s->target = t;
	s->cnext = c->subs;
	if (c->subs)
		c->subs->cprev = s;
	c->subs = s;
	s->tnext = t->subs;
	if (t->subs)
		t->subs->tprev = s;
	t->subs = s;
	c->n_subs++;
	return 0;
}

int gw__register(struct gw_conn *c)
{
	struct gw *g = c->g;
	struct gw_user *u = user_get(g, im_str_c(c->user_id));
	if (u == NULL)
		return -ENOMEM;
	c->uprev = NULL;
	c->unext = u->conns;
	if (u->conns)
		u->conns->uprev = c;
	u->conns = c;
	u->n_conns++;
	u->per_platform[c->platform_id]++;
	c->user = u;
	mark_dirty(g, u);
	g->stats.conns_open++;
	g->stats.conns_total++;
	return 0;
}

void gw__unregister(struct gw_conn *c)
{
	struct gw *g = c->g;
	while (c->subs)
		sub_del(g, c->subs);
	struct gw_user *u = c->user;
	if (u == NULL)
		return;
	if (c->uprev)
		c->uprev->unext = c->unext;
	else
		u->conns = c->unext;
	if (c->unext)
		c->unext->uprev = c->uprev;
	c->unext = c->uprev = NULL;
	u->n_conns--;
	u->per_platform[c->platform_id]--;
	c->user = NULL;
	g->stats.conns_open--;
	mark_dirty(g, u);
}

int gw__users_init(struct gw *g)
{
	g->n_buckets = 64;
	g->buckets = im_calloc(g->n_buckets, sizeof(*g->buckets));
	return g->buckets ? 0 : -ENOMEM;
}

void gw__users_free(struct gw *g)
{
	gw__flush_dirty(g);
	for (size_t i = 0; i < g->n_buckets; i++)
		while (g->buckets[i])
			user_free(g, g->buckets[i]);
	im_free(g->buckets);
	g->buckets = NULL;
}

/* ---- 2005 ---- */

/*
 * 2005: unsubscribe (except ids also subscribed), subscribe, and answer the
 * current platforms of every id in subscribeUserID, as the Go gateway does.
 */
void gw__subscribe(struct gw_conn *c, const struct env_req *er)
{
	struct gw *g = c->g;
	ProtobufCMessage *m;
	int rc = pb_unpack(&openim__sdkws__sub_user_online_status__descriptor,
			   (const uint8_t *)er->data.p, er->data.n, &m);
	if (rc != 0) {
		gw__reply_req(c, er, rc == -ENOMEM ? OI_SERVER_INTERNAL : OI_ARGS, NULL, 0, false);
		return;
	}
	Openim__Sdkws__SubUserOnlineStatus *req = (Openim__Sdkws__SubUserOnlineStatus *)m;
	if (req->n_subscribeuserid > GW_MAX_SUBS || req->n_unsubscribeuserid > GW_MAX_SUBS) {
		/* Bounds the quadratic matching below; no SDK sends lists this long. */
		gw__reply_req(c, er, OI_ARGS, NULL, 0, false);
		pb_free(m);
		return;
	}
	for (size_t i = 0; i < req->n_unsubscribeuserid; i++) {
		struct im_str id = im_str_c(req->unsubscribeuserid[i]);
		bool also_sub = false;
		for (size_t k = 0; k < req->n_subscribeuserid && !also_sub; k++)
			also_sub = im_str_eq(id, im_str_c(req->subscribeuserid[k]));
		struct gw_user *t = also_sub ? NULL : gw__user_find(g, id);
		struct gw_sub *s = t ? sub_find(c, t) : NULL;
		if (s != NULL)
			sub_del(g, s);
	}
	struct im_buf tips = {0};
	struct pb_w w;
	pb_w_init(&w, &tips);
	for (size_t i = 0; i < req->n_subscribeuserid && rc == 0; i++) {
		struct im_str id = im_str_c(req->subscribeuserid[i]);
		rc = sub_add(c, id);
		struct gw_user *t = gw__user_find(g, id);
		tips_add(&w, id, t ? user_mask(t) : 0);
	}
	if (rc == 0)
		rc = pb_w_done(&w);
	if (rc == 0)
		gw__reply_req(c, er, 0, tips.p ? tips.p : "", tips.len, true);
	else
		gw__reply_req(c, er, OI_SERVER_INTERNAL, NULL, 0, false);
	im_buf_free(&tips);
	pb_free(m);
}

bool gw_online(struct gw *g, struct im_str user_id)
{
	struct gw_user *u = gw__user_find(g, user_id);
	return u != NULL && u->conns != NULL;
}

size_t gw_online_bound(const struct gw *g)
{
	return g->n_users;
}

size_t gw_online_ids(struct gw *g, struct im_buf *out)
{
	size_t n = 0, len0 = out->len;
	for (size_t i = 0; i < g->n_buckets; i++)
		for (struct gw_user *u = g->buckets[i]; u; u = u->hnext) {
			if (u->conns == NULL)
				continue;
			unsigned char l[4];
			im_put_be32(l, u->id_len);
			if (im_buf_add(out, l, sizeof(l)) != 0 ||
			    im_buf_add(out, u->id, u->id_len) != 0) {
				out->len = len0;
				return 0;
			}
			n++;
		}
	return n;
}
