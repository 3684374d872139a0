/* cluster_fwd.c - writes on a follower go to the leader; the leader's side of the same channel.
 *
 * Invariants:
 *  1. A forwarded write is answered to its proposer (cb) at most once: with
 *     a result only after this node's engine committed the entry, or with an
 *     error when no answer can come in time (deadline, lost connection,
 *     shutdown).  The result comes from whichever happens first: this node
 *     applies the same bytes (clu_watch_cmd; answered before that commit's
 *     pushes), or the leader's answer names an index this node's engine has
 *     committed (clu_wait_applied; covers an engine copy installed over the
 *     entry).  The other is then cancelled.
 *  2. Requests on the connection are answered by the leader in order (HTTP
 *     pipelining), so answers are matched to the FIFO of sent operations;
 *     an operation already answered by its deadline stays in the FIFO until
 *     its answer arrives or the connection dies, then it is freed.
 *  3. One connection at a time, to the leader raft names now; when the
 *     leader changes the connection is closed and what was in flight fails.
 *
 * An operation's states:
 *   QUEUED --(connection open)--> SENT --(answer, status 0)--> WAIT --> freed
 *     |  \--(this node leads)--> clu_propose (the op is freed)    |
 *     +--(deadline)--> answered IM_ENOTLEADER, freed              +--(deadline)--> answered, freed
 */
#include "cluster_node.h"

#include "gateway.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <llhttp.h>
#include <mbedtls/md.h>

#define PUMP_MS 20

enum { OP_QUEUED, OP_SENT, OP_WAIT };

struct fwd_op {
	struct fwd_op *next; /* in the queue, the sent FIFO or the wait list */
	struct node *n;
	struct clu_req *req; /* NULL once answered */
	clu_done_cb cb;
	struct im_buf cmd;
	int64_t deadline; /* uv_now() ms */
	int state;
	uint64_t index;
	struct clu_wait wait;
	struct clu_watch watch;
	bool watching;	 /* watch registered and not fired */
	bool barrier;	 /* a read barrier (node_read_barrier): no command, nothing to watch */
	bool confirming; /* its wait is a clu_confirm(), not a clu_wait_applied() */
	struct eng_result res;
};

struct fconn {
	struct node *n;
	uv_tcp_t tcp;
	uv_connect_t creq;
	uint64_t leader;
	bool open;
	llhttp_t parser;
	llhttp_settings_t settings;
	struct im_buf body;
	struct fwd_op *sent_head, *sent_tail;
};

struct bcast;

struct node {
	struct srv *s;
	uv_timer_t timer;
	struct bcast *bcasts; /* fire-and-forget requests in flight */
	struct fconn *conn;
	struct fwd_op *queue_head, *queue_tail;
	struct fwd_op *waiting;
	bool pumping;
	bool closing;
};

struct wreq {
	uv_write_t w;
	struct im_buf buf;
};

/* ---------------------------------------------------------------- auth and codec */

void node_auth(struct im_str secret, const char *label, const void *data, size_t len, char out[65])
{
	unsigned char mac[32];
	mbedtls_md_context_t ctx;
	mbedtls_md_init(&ctx);
	mbedtls_md_setup(&ctx, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 1);
	mbedtls_md_hmac_starts(&ctx, (const unsigned char *)secret.p, secret.n);
	mbedtls_md_hmac_update(&ctx, (const unsigned char *)label, strlen(label));
	mbedtls_md_hmac_update(&ctx, (const unsigned char *)"\n", 1);
	mbedtls_md_hmac_update(&ctx, data, len);
	mbedtls_md_hmac_finish(&ctx, mac);
	mbedtls_md_free(&ctx);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

static int put_u(struct im_buf *b, uint64_t v, int bytes)
{
	unsigned char t[8];
	for (int i = 0; i < bytes; i++)
		t[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
	return im_buf_add(b, t, (size_t)bytes);
}

int node_result_encode(struct im_buf *out, int status, uint64_t index, const struct eng_result *res)
{
	static const struct eng_result none;
	if (res == NULL)
		res = &none;
	size_t dl = strnlen(res->detail, sizeof(res->detail) - 1);
	int rv = put_u(out, (uint32_t)status, 4) | put_u(out, index, 8) |
		 put_u(out, (uint32_t)res->code, 4) | put_u(out, res->skipped, 1) |
		 put_u(out, dl, 2) | im_buf_add(out, res->detail, dl) | put_u(out, res->n_msgs, 4);
	for (uint32_t i = 0; i < res->n_msgs && i < ENG_ITEMS_MAX; i++) {
		const struct eng_msg_result *m = &res->msgs[i];
		size_t sl = strnlen(m->server_msg_id, sizeof(m->server_msg_id) - 1);
		rv |= put_u(out, m->seq, 8) | put_u(out, m->dup, 1) | put_u(out, sl, 1) |
		      im_buf_add(out, m->server_msg_id, sl) | put_u(out, (uint64_t)m->send_time, 8);
	}
	return rv ? -ENOMEM : 0;
}

struct rd {
	const unsigned char *p;
	size_t left;
	bool bad;
};

static uint64_t get_u(struct rd *r, int bytes)
{
	if (r->bad || r->left < (size_t)bytes) {
		r->bad = true;
		return 0;
	}
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v = v << 8 | r->p[i];
	r->p += bytes;
	r->left -= (size_t)bytes;
	return v;
}

static void get_s(struct rd *r, char *dst, size_t cap, size_t n)
{
	if (r->bad || r->left < n || n >= cap) {
		r->bad = true;
		return;
	}
	memcpy(dst, r->p, n);
	dst[n] = '\0';
	r->p += n;
	r->left -= n;
}

int node_result_decode(const void *p, size_t len, int *status, uint64_t *index,
		       struct eng_result *res)
{
	struct rd r = {.p = p, .left = len};
	memset(res, 0, sizeof(*res));
	*status = (int)(int32_t)get_u(&r, 4);
	*index = get_u(&r, 8);
	res->code = (int)(int32_t)get_u(&r, 4);
	res->skipped = get_u(&r, 1) != 0;
	get_s(&r, res->detail, sizeof(res->detail), get_u(&r, 2));
	uint64_t n = get_u(&r, 4);
	if (n > ENG_ITEMS_MAX)
		r.bad = true;
	for (uint64_t i = 0; i < n && !r.bad; i++) {
		struct eng_msg_result *m = &res->msgs[i];
		m->seq = get_u(&r, 8);
		m->dup = get_u(&r, 1) != 0;
		get_s(&r, m->server_msg_id, sizeof(m->server_msg_id), get_u(&r, 1));
		m->send_time = (int64_t)get_u(&r, 8);
	}
	res->n_msgs = (uint32_t)n;
	return r.bad || r.left ? IM_ECORRUPT : 0;
}

/* ---------------------------------------------------------------- operations */

static void op_free(struct fwd_op *op)
{
	if (op->watching)
		clu_watch_cancel(op->n->s->clu, &op->watch);
	im_buf_free(&op->cmd);
	im_free(op);
}

/* Answers the proposer once (invariant 1). */
static void op_answer(struct fwd_op *op, int status)
{
	struct clu_req *req = op->req;
	op->req = NULL;
	if (req == NULL)
		return;
	req->index = op->index;
	op->cb(req, status, status == 0 ? &op->res : NULL);
}

static void list_remove(struct fwd_op **head, struct fwd_op *op)
{
	for (struct fwd_op **p = head; *p; p = &(*p)->next)
		if (*p == op) {
			*p = op->next;
			return;
		}
}

static void on_applied(struct clu_wait *w, int status)
{
	struct fwd_op *op = w->data;
	list_remove(&op->n->waiting, op);
	op_answer(op, status);
	op_free(op);
}

/* This node applied and committed the same bytes: answer with its own result. */
static void on_watch(struct clu_watch *w, uint64_t index)
{
	struct fwd_op *op = w->data;
	op->watching = false;
	op->index = index;
	if (op->state == OP_WAIT) {
		/* The leader's answer came first: the wait is no longer needed. */
		clu_wait_cancel(op->n->s->clu, &op->wait);
		list_remove(&op->n->waiting, op);
		op_answer(op, 0);
		op_free(op);
		return;
	}
	/* Still in the sent FIFO: answered now, freed when the leader's answer arrives. */
	op_answer(op, 0);
}

/* ---------------------------------------------------------------- the connection */

static void conn_closed(uv_handle_t *h)
{
	struct fconn *fc = h->data;
	im_buf_free(&fc->body);
	im_free(fc);
}

/*
 * A read barrier whose leader went away is asked again of the next leader
 * (reading twice is harmless), until its deadline; true if it was queued.
 */
static bool barrier_retry(struct node *n, struct fwd_op *op)
{
	if (!op->barrier || op->req == NULL || n->closing)
		return false;
	op->state = OP_QUEUED;
	op->next = NULL;
	if (n->queue_tail)
		n->queue_tail->next = op;
	else
		n->queue_head = op;
	n->queue_tail = op;
	return true;
}

/* Closes the connection; the writes in flight fail (invariant 3), barriers are asked again. */
static void conn_drop(struct node *n, const char *why)
{
	struct fconn *fc = n->conn;
	if (fc == NULL)
		return;
	n->conn = NULL;
	if (fc->sent_head)
		IM_WARN("forward to node %llu: %s; failing the writes in flight",
			(unsigned long long)fc->leader, why);
	while (fc->sent_head) {
		struct fwd_op *op = fc->sent_head;
		fc->sent_head = op->next;
		if (barrier_retry(n, op))
			continue;
		op_answer(op, IM_ENOTLEADER);
		op_free(op);
	}
	fc->sent_tail = NULL;
	uv_close((uv_handle_t *)&fc->tcp, conn_closed);
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
	struct fconn *fc = p->data;
	return im_buf_add(&fc->body, at, len) == 0 ? 0 : -1;
}

static int on_message_complete(llhttp_t *p)
{
	struct fconn *fc = p->data;
	struct node *n = fc->n;
	struct fwd_op *op = fc->sent_head;
	if (op == NULL)
		return -1;
	fc->sent_head = op->next;
	if (fc->sent_head == NULL)
		fc->sent_tail = NULL;
	int status = IM_ERAFT;
	uint64_t index = 0;
	struct eng_result *res = im_malloc(sizeof(*res));
	if (res == NULL || llhttp_get_status_code(p) != 200 ||
	    node_result_decode(fc->body.p, fc->body.len, &status, &index, res) != 0) {
		IM_WARN("forward: the leader answered HTTP %d (%zu bytes)",
			llhttp_get_status_code(p), fc->body.len);
		status = IM_ERAFT;
	}
	fc->body.len = 0;
	if (op->req == NULL || status != 0) {
		im_free(res);
		/* Asked a node that no longer leads: ask the next leader (the pump timer sends it).
		 */
		if (status == IM_ENOTLEADER && barrier_retry(n, op))
			return 0;
		op_answer(op, status);
		op_free(op);
		return 0;
	}
	op->res = *res; /* the watch, if it fires first, writes the same (deterministic apply) */
	im_free(res);
	/* Applied on the leader: answer once this node has it too (invariant 1). */
	op->index = index;
	op->state = OP_WAIT;
	op->next = n->waiting;
	n->waiting = op;
	op->wait.data = op;
	clu_wait_applied(n->s->clu, &op->wait, index, on_applied);
	return 0;
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	IM_UNUSED(h);
	IM_UNUSED(hint);
	static char slab[65536];
	buf->base = slab;
	buf->len = sizeof(slab);
}

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct fconn *fc = st->data;
	struct node *n = fc->n;
	if (nread == 0)
		return;
	if (nread < 0) {
		if (n->conn == fc)
			conn_drop(n, uv_strerror((int)nread));
		return;
	}
	if (llhttp_execute(&fc->parser, buf->base, (size_t)nread) != HPE_OK && n->conn == fc)
		conn_drop(n, "bad answer");
}

static void write_cb(uv_write_t *w, int status)
{
	IM_UNUSED(status); /* a failed write shows up as a read error */
	struct wreq *wr = (struct wreq *)w;
	im_buf_free(&wr->buf);
	im_free(wr);
}

static void send_op(struct node *n, struct fwd_op *op)
{
	struct fconn *fc = n->conn;
	struct wreq *wr = im_calloc(1, sizeof(*wr));
	const char *label = op->barrier ? "readindex" : "forward";
	char mac[65];
	node_auth(n->s->secret, label, op->cmd.p, op->cmd.len, mac);
	if (wr == NULL ||
	    im_buf_printf(&wr->buf,
			  "POST /cluster/node/%s HTTP/1.1\r\nHost: imlog\r\n"
			  "Content-Type: application/octet-stream\r\nX-Imlog-Node: %lld\r\n"
			  "X-Imlog-Auth: %s\r\nContent-Length: %zu\r\n\r\n",
			  label, (long long)n->s->cfg->node_id, mac, op->cmd.len) != 0 ||
	    im_buf_add(&wr->buf, op->cmd.p, op->cmd.len) != 0) {
		if (wr)
			im_buf_free(&wr->buf);
		im_free(wr);
		op_answer(op, -ENOMEM);
		op_free(op);
		return;
	}
	uv_buf_t b = uv_buf_init(wr->buf.p, (unsigned)wr->buf.len);
	if (uv_write(&wr->w, (uv_stream_t *)&fc->tcp, &b, 1, write_cb) != 0) {
		im_buf_free(&wr->buf);
		im_free(wr);
		op_answer(op, IM_ENOTLEADER);
		op_free(op);
		return;
	}
	op->state = OP_SENT;
	op->next = NULL;
	if (!op->barrier) {
		op->watch.data = op;
		op->watching = true;
		clu_watch_cmd(n->s->clu, &op->watch, op->cmd.p, op->cmd.len, &op->res, on_watch);
	}
	if (fc->sent_tail)
		fc->sent_tail->next = op;
	else
		fc->sent_head = op;
	fc->sent_tail = op;
}

static void pump(struct node *n);

static void connect_cb(uv_connect_t *cr, int status)
{
	struct fconn *fc = cr->data;
	struct node *n = fc->n;
	if (n->conn != fc)
		return; /* dropped meanwhile; closing */
	if (status != 0) {
		IM_DEBUG("forward: connect to node %llu: %s", (unsigned long long)fc->leader,
			 uv_strerror(status));
		conn_drop(n, uv_strerror(status));
		return;
	}
	fc->open = true;
	uv_tcp_nodelay(&fc->tcp, 1);
	uv_read_start((uv_stream_t *)&fc->tcp, alloc_cb, read_cb);
	pump(n);
}

bool node_member_api(struct srv *s, uint64_t id, char out[CLU_ADDR_MAX])
{
	if (s->clu && clu_member_api(s->clu, id, out))
		return true;
	const char *a = cfg_member_api(s->cfg, (int64_t)id);
	if (a == NULL)
		return false;
	snprintf(out, CLU_ADDR_MAX, "%s", a);
	return true;
}

static void conn_open(struct node *n, uint64_t leader)
{
	char buf[CLU_ADDR_MAX];
	struct sockaddr_in sa;
	if (!node_member_api(n->s, leader, buf) || im_ipv4_parse(buf, strlen(buf), &sa) != 0)
		return;
	struct fconn *fc = im_calloc(1, sizeof(*fc));
	if (fc == NULL)
		return;
	fc->n = n;
	fc->leader = leader;
	uv_tcp_init(n->s->loop, &fc->tcp);
	fc->tcp.data = fc;
	fc->creq.data = fc;
	llhttp_settings_init(&fc->settings);
	fc->settings.on_body = on_body;
	fc->settings.on_message_complete = on_message_complete;
	llhttp_init(&fc->parser, HTTP_RESPONSE, &fc->settings);
	fc->parser.data = fc;
	n->conn = fc;
	if (uv_tcp_connect(&fc->creq, &fc->tcp, (const struct sockaddr *)&sa, connect_cb) != 0)
		conn_drop(n, "connect");
}

/* ---------------------------------------------------------------- the pump */

static void expire(struct node *n, int64_t now)
{
	for (struct fwd_op **p = &n->queue_head; *p;) {
		struct fwd_op *op = *p;
		if (op->deadline > now && !n->closing) {
			p = &op->next;
			continue;
		}
		*p = op->next;
		op_answer(op, n->closing ? IM_ESHUTDOWN : IM_ENOTLEADER);
		op_free(op);
	}
	n->queue_tail = NULL;
	for (struct fwd_op *op = n->queue_head; op; op = op->next)
		n->queue_tail = op;
	if (n->conn)
		for (struct fwd_op *op = n->conn->sent_head; op; op = op->next)
			if (op->deadline <= now)
				op_answer(op, IM_ENOTLEADER);
	for (struct fwd_op **p = &n->waiting; *p;) {
		struct fwd_op *op = *p;
		if (op->deadline > now && !n->closing) {
			p = &op->next;
			continue;
		}
		*p = op->next;
		if (op->confirming)
			clu_confirm_cancel(n->s->clu, &op->wait);
		else
			clu_wait_cancel(n->s->clu, &op->wait);
		op_answer(op, n->closing ? IM_ESHUTDOWN : IM_ENOTLEADER);
		op_free(op);
	}
}

static void barrier_here(struct node *n, struct fwd_op *op);

static void barrier_confirmed(struct clu_wait *w, int status)
{
	struct fwd_op *op = w->data;
	struct node *n = op->n;
	list_remove(&n->waiting, op);
	if (status == 0) {
		barrier_here(n, op);
		return;
	}
	op_answer(op, status);
	op_free(op);
}

/*
 * A read barrier on the leader: with a valid lease, answered now if its
 * engine has the read index, else once it has; without one, the lease is
 * renewed first (clu_confirm).
 */
static void barrier_here(struct node *n, struct fwd_op *op)
{
	struct clu *c = n->s->clu;
	if (!clu_lease_valid(c)) {
		op->state = OP_WAIT;
		op->confirming = true;
		op->next = n->waiting;
		n->waiting = op;
		op->wait.data = op;
		clu_confirm(c, &op->wait, barrier_confirmed);
		return;
	}
	op->confirming = false;
	uint64_t idx = clu_read_index(c);
	if (clu_applied(c) >= idx) {
		op_answer(op, 0);
		op_free(op);
		return;
	}
	op->index = idx;
	op->state = OP_WAIT;
	op->next = n->waiting;
	n->waiting = op;
	op->wait.data = op;
	clu_wait_applied(c, &op->wait, idx, on_applied);
}

/* Moves queued writes on: proposes them here if this node leads, else sends them to the leader. */
static void pump(struct node *n)
{
	if (n->pumping)
		return;
	n->pumping = true;
	struct clu *c = n->s->clu;
	expire(n, (int64_t)uv_now(n->s->loop));
	uint64_t leader = n->closing ? 0 : clu_leader_id(c);
	if (n->conn && n->conn->leader != leader)
		conn_drop(n, "the leader changed");
	if (leader != 0 && clu_is_leader(c)) {
		while (n->queue_head) {
			struct fwd_op *op = n->queue_head;
			n->queue_head = op->next;
			if (op->barrier) {
				barrier_here(n, op);
				continue;
			}
			int rv = clu_propose(c, op->req, op->cmd.p, op->cmd.len, op->cb);
			if (rv != 0)
				op_answer(op, rv);
			op->req = NULL;
			op_free(op);
		}
		n->queue_tail = NULL;
	} else if (leader != 0 && n->queue_head) {
		if (n->conn == NULL)
			conn_open(n, leader);
		if (n->conn && n->conn->open) {
			while (n->queue_head && n->conn) {
				struct fwd_op *op = n->queue_head;
				n->queue_head = op->next;
				send_op(n, op);
			}
			n->queue_tail = NULL;
		}
	}
	n->pumping = false;
}

static void timer_cb(uv_timer_t *t)
{
	pump(t->data);
}

/*
 * Queues an operation for the leader: a command to forward, or a barrier
 * (cmd NULL; on the leader itself it waits for its own engine).
 */
static int enqueue(struct node *n, struct clu_req *req, const void *cmd, size_t len, clu_done_cb cb)
{
	struct srv *s = n->s;
	if (n->closing)
		return IM_ESHUTDOWN;
	struct fwd_op *op = im_calloc(1, sizeof(*op));
	if (op == NULL || (cmd && im_buf_add(&op->cmd, cmd, len) != 0)) {
		im_free(op);
		return -ENOMEM;
	}
	op->n = n;
	op->req = req;
	op->cb = cb;
	op->barrier = cmd == NULL;
	op->state = OP_QUEUED;
	op->deadline = (int64_t)uv_now(s->loop) + s->cfg->forward_timeout_ms;
	if (n->queue_tail)
		n->queue_tail->next = op;
	else
		n->queue_head = op;
	n->queue_tail = op;
	pump(n);
	return 0;
}

int node_propose(struct srv *s, struct clu_req *req, const void *cmd, size_t len, clu_done_cb cb)
{
	struct node *n = s->node;
	if (n == NULL || clu_is_leader(s->clu))
		return clu_propose(s->clu, req, cmd, len, cb);
	return enqueue(n, req, cmd, len, cb);
}

int node_read_barrier(struct srv *s, struct clu_req *req, clu_done_cb cb)
{
	struct node *n = s->node;
	if (n == NULL)
		return 1;
	if (clu_lease_valid(s->clu) && clu_applied(s->clu) >= clu_read_index(s->clu))
		return 1; /* the usual case on a leader: nothing to wait for */
	return enqueue(n, req, NULL, 0, cb);
}

int node_start(struct srv *s, struct node **out)
{
	struct node *n = im_calloc(1, sizeof(*n));
	if (n == NULL)
		return -ENOMEM;
	n->s = s;
	uv_timer_init(s->loop, &n->timer);
	n->timer.data = n;
	uv_timer_start(&n->timer, timer_cb, PUMP_MS, PUMP_MS);
	*out = n;
	return 0;
}

/* ---------------------------------------------------------------- broadcasts */

/* One fire-and-forget request to one peer; the answer is read and dropped. */
struct bcast {
	struct bcast *next;
	struct node *n;
	uv_tcp_t tcp;
	uv_connect_t creq;
	uv_write_t w;
	struct im_buf req;
	bool closing;
};

static void bcast_closed(uv_handle_t *h)
{
	struct bcast *b = h->data;
	im_buf_free(&b->req);
	im_free(b);
}

static void bcast_close(struct bcast *b)
{
	if (b->closing)
		return;
	b->closing = true;
	for (struct bcast **p = &b->n->bcasts; *p; p = &(*p)->next)
		if (*p == b) {
			*p = b->next;
			break;
		}
	uv_close((uv_handle_t *)&b->tcp, bcast_closed);
}

static void bcast_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	IM_UNUSED(buf);
	if (nread < 0)
		bcast_close(st->data); /* the peer answered and closed (Connection: close) */
}

static void bcast_written(uv_write_t *w, int status)
{
	struct bcast *b = w->data;
	if (status != 0)
		bcast_close(b);
}

static void bcast_connected(uv_connect_t *cr, int status)
{
	struct bcast *b = cr->data;
	if (b->closing)
		return;
	uv_buf_t ub = uv_buf_init(b->req.p, (unsigned)b->req.len);
	b->w.data = b;
	if (status != 0 || uv_write(&b->w, (uv_stream_t *)&b->tcp, &ub, 1, bcast_written) != 0 ||
	    uv_read_start((uv_stream_t *)&b->tcp, alloc_cb, bcast_read) != 0)
		bcast_close(b);
}

static void bcast_one(struct node *n, const char *addr, const char *label,
		      const struct im_buf *body)
{
	struct sockaddr_in sa;
	if (addr == NULL || im_ipv4_parse(addr, strlen(addr), &sa) != 0)
		return;
	struct bcast *b = im_calloc(1, sizeof(*b));
	if (b == NULL)
		return;
	char mac[65];
	node_auth(n->s->secret, label, body->p, body->len, mac);
	if (im_buf_printf(&b->req,
			  "POST /cluster/node/%s HTTP/1.1\r\nHost: imlog\r\nConnection: close\r\n"
			  "Content-Type: application/octet-stream\r\nX-Imlog-Node: %lld\r\n"
			  "X-Imlog-Auth: %s\r\nContent-Length: %zu\r\n\r\n",
			  label, (long long)n->s->cfg->node_id, mac, body->len) != 0 ||
	    im_buf_add(&b->req, body->p, body->len) != 0) {
		im_buf_free(&b->req);
		im_free(b);
		return;
	}
	b->n = n;
	uv_tcp_init(n->s->loop, &b->tcp);
	b->tcp.data = b;
	b->creq.data = b;
	b->next = n->bcasts;
	n->bcasts = b;
	if (uv_tcp_connect(&b->creq, &b->tcp, (const struct sockaddr *)&sa, bcast_connected) != 0)
		bcast_close(b);
}

void node_kick_remote(struct srv *s, struct im_str user_id, int32_t platform_id,
		      struct im_str keep_token)
{
	struct node *n = s->node;
	if (n == NULL || n->closing)
		return;
	struct im_buf body = {0};
	if (im_buf_printf(&body, "%d\n%.*s\n%.*s", (int)platform_id, (int)user_id.n, user_id.p,
			  (int)keep_token.n, keep_token.p ? keep_token.p : "") != 0) {
		im_buf_free(&body);
		return;
	}
	/* Every other member of the current configuration. */
	struct clu_status st;
	clu_get_status(s->clu, &st);
	for (unsigned i = 0; i < st.n_members; i++) {
		char addr[CLU_ADDR_MAX];
		if (st.members[i].id != (uint64_t)s->cfg->node_id &&
		    node_member_api(s, st.members[i].id, addr))
			bcast_one(n, addr, "kick", &body);
	}
	im_buf_free(&body);
}

void node_tell_removed(struct srv *s, uint64_t id, const char *addr)
{
	struct node *n = s->node;
	struct im_buf body = {0};
	if (n == NULL || n->closing ||
	    im_buf_printf(&body, "%llu\n%lld", (unsigned long long)id, (long long)time(NULL)) !=
		0) {
		im_buf_free(&body);
		return;
	}
	bcast_one(n, addr, "removed", &body);
	im_buf_free(&body);
}

/*
 * POST /cluster/node/removed: "id\nunix_time".  This node was taken out of
 * the configuration by the leader (which never replicates the entry that
 * removes it to it): it stops (srv->on_removed) rather than campaign and
 * serve stale reads.  The time bounds a replay to NODE_AUTH_SKEW_S.
 */
static void removed_serve(struct srv *s, struct http_req *h)
{
	if (!node__auth_ok(s, h, "removed", h->body, h->body_len))
		return;
	char tmp[64];
	unsigned long long id = 0;
	long long t = 0;
	snprintf(tmp, sizeof(tmp), "%.*s", (int)IM_MIN(h->body_len, sizeof(tmp) - 1), h->body);
	if (sscanf(tmp, "%llu\n%lld", &id, &t) != 2 || id != (unsigned long long)s->cfg->node_id ||
	    llabs(t - (long long)time(NULL)) > NODE_AUTH_SKEW_S) {
		IM_WARN("node channel: a removal notice not for this node now: %s", tmp);
		http_respond(h, 400, "text/plain", NULL, "not for this node\n", 18);
		return;
	}
	http_respond(h, 200, "text/plain", NULL, "ok\n", 3);
	IM_WARN("this node (%llu) was removed from the cluster: stopping", id);
	if (s->on_removed)
		s->on_removed(s);
}

/* POST /cluster/node/kick: "platform\nuser\nkeep_token". */
static void kick_serve(struct srv *s, struct http_req *h)
{
	if (!node__auth_ok(s, h, "kick", h->body, h->body_len))
		return;
	const char *p = h->body, *end = h->body + h->body_len;
	const char *nl1 = memchr(p, '\n', h->body_len);
	const char *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(end - nl1 - 1)) : NULL;
	if (nl2 == NULL) {
		http_respond(h, 400, "text/plain", NULL, "bad kick\n", 9);
		return;
	}
	struct im_str user = {nl1 + 1, (uint32_t)(nl2 - nl1 - 1)};
	struct im_str keep = {nl2 + 1, (uint32_t)(end - nl2 - 1)};
	if (s->gw)
		gw_kick_except(s->gw, user, (int32_t)atoi(p), keep);
	http_respond(h, 200, "text/plain", NULL, "ok\n", 3);
}

static void timer_closed(uv_handle_t *h)
{
	im_free(h->data);
}

void node_close(struct node *n)
{
	n->closing = true;
	n->pumping = false;
	pump(n); /* fails everything queued or waiting */
	conn_drop(n, "shutting down");
	while (n->bcasts)
		bcast_close(n->bcasts);
	uv_close((uv_handle_t *)&n->timer, timer_closed);
}

/* ---------------------------------------------------------------- the leader's side */

/* A node request the leader answers later: a forward (creq) or a read index (w). */
struct fwd_in {
	struct clu_req creq;
	struct clu_wait w;
	struct http_req *h; /* NULL once the peer went away */
	struct srv *s;
};

static void in_abort(struct http_req *h)
{
	struct fwd_in *in = h->data;
	in->h = NULL;
}

/* Holds h for a later answer (in_abort forgets it if the peer goes), or NULL. */
static struct fwd_in *in_hold(struct srv *s, struct http_req *h)
{
	struct fwd_in *in = im_calloc(1, sizeof(*in));
	if (in == NULL)
		return NULL;
	in->h = h;
	in->s = s;
	in->creq.data = in;
	in->w.data = in;
	h->data = in;
	h->on_abort = in_abort;
	return in;
}

static void in_answer(struct http_req *h, int status, uint64_t index, const struct eng_result *res)
{
	struct im_buf out = {0};
	if (node_result_encode(&out, status, index, res) != 0)
		http_respond(h, 503, "text/plain", NULL, "out of memory\n", 14);
	else
		http_respond(h, 200, "application/octet-stream", NULL, out.p, out.len);
	im_buf_free(&out);
}

static void in_done(struct clu_req *creq, int status, const struct eng_result *res)
{
	struct fwd_in *in = creq->data;
	struct srv *s = in->s;
	if (in->h)
		in_answer(in->h, status, creq->index, res);
	im_free(in);
	/* The follower answers once it applied the entry: tell it the commit now. */
	if (status == 0)
		clu_nudge(s->clu);
}

/*
 * POST /cluster/node/readindex: the read index (clu_read_index), from the
 * leader only and under a valid lease: a leader cut off from the majority
 * that does not know it yet could answer an old index.  Without a lease the
 * answer waits for its renewal (clu_confirm).
 */
static void ri_confirmed(struct clu_wait *w, int status)
{
	struct fwd_in *in = w->data;
	if (in->h)
		in_answer(in->h, status, status == 0 ? clu_read_index_remote(in->s->clu) : 0, NULL);
	im_free(in);
}

static void readindex_serve(struct srv *s, struct http_req *h)
{
	if (clu_lease_valid(s->clu)) {
		in_answer(h, 0, clu_read_index_remote(s->clu), NULL);
		return;
	}
	if (!clu_is_leader(s->clu)) {
		in_answer(h, IM_ENOTLEADER, 0, NULL);
		return;
	}
	struct fwd_in *in = in_hold(s, h);
	if (in == NULL)
		in_answer(h, -ENOMEM, 0, NULL);
	else
		clu_confirm(s->clu, &in->w, ri_confirmed);
}

static bool same(struct im_str a, const char *b);

bool node_timed_auth_ok(struct srv *s, struct http_req *h, const char *label)
{
	struct im_str ts = http_req_header(h, "X-Imlog-Time");
	char tsz[32], mac[65];
	snprintf(tsz, sizeof(tsz), "%.*s", (int)IM_MIN(ts.n, 31u), ts.p);
	node_auth(s->secret, label, tsz, strlen(tsz), mac);
	if (!same(http_req_header(h, "X-Imlog-Auth"), mac)) {
		IM_WARN("node channel: %s from %s refused (bad HMAC: not the cluster's secret?)",
			label, h->peer);
		return false;
	}
	char *end;
	long long t = strtoll(tsz, &end, 10);
	return end != tsz && *end == '\0' && llabs(t - (long long)time(NULL)) <= NODE_AUTH_SKEW_S;
}

void node_timed_auth_headers(struct im_str secret, const char *label, char *out, size_t outlen)
{
	char ts[32], mac[65];
	snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
	node_auth(secret, label, ts, strlen(ts), mac);
	snprintf(out, outlen, "X-Imlog-Time: %s\r\nX-Imlog-Auth: %s\r\n", ts, mac);
}

/* Compares in time independent of where the strings differ. */
static bool same(struct im_str a, const char *b)
{
	size_t n = strlen(b);
	if (a.n != n)
		return false;
	unsigned char d = 0;
	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)(a.p[i] ^ b[i]);
	return d == 0;
}

bool node__auth_ok(struct srv *s, struct http_req *h, const char *label, const void *data,
		   size_t len)
{
	char mac[65];
	node_auth(s->secret, label, data, len, mac);
	if (same(http_req_header(h, "X-Imlog-Auth"), mac))
		return true;
	IM_WARN("node channel: %s from %s refused (bad HMAC: not the cluster's secret?)", label,
		h->peer);
	http_respond(h, 401, "text/plain", NULL, "unauthorized\n", 13);
	return false;
}

void node_handle(struct srv *s, struct http_req *h)
{
	if (im_str_eq(h->path, IM_STR_LIT("/cluster/node/snapshot"))) {
		node__snapshot_serve(s, h);
		return;
	}
	if (im_str_eq(h->path, IM_STR_LIT("/cluster/node/kick")) && h->error == 0) {
		kick_serve(s, h);
		return;
	}
	if (im_str_eq(h->path, IM_STR_LIT("/cluster/node/removed")) && h->error == 0) {
		removed_serve(s, h);
		return;
	}
	if (im_str_eq(h->path, IM_STR_LIT("/cluster/node/readindex")) && h->error == 0) {
		if (node__auth_ok(s, h, "readindex", h->body, h->body_len))
			readindex_serve(s, h);
		return;
	}
	if (!im_str_eq(h->path, IM_STR_LIT("/cluster/node/forward")) || h->error != 0) {
		http_respond(h, 404, "text/plain", NULL, "404 page not found", 18);
		return;
	}
	if (!node__auth_ok(s, h, "forward", h->body, h->body_len))
		return;
	if (!clu_is_leader(s->clu)) {
		in_answer(h, IM_ENOTLEADER, 0, NULL);
		return;
	}
	struct fwd_in *in = in_hold(s, h);
	int rv = in ? clu_propose(s->clu, &in->creq, h->body, h->body_len, in_done) : -ENOMEM;
	if (rv != 0) {
		h->data = NULL;
		h->on_abort = NULL;
		im_free(in);
		in_answer(h, rv, 0, NULL);
	}
}
