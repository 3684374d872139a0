/* api.c - the REST front: CORS, routing, operationID and token checks, the envelope, proposals.
 *
 * A request's life: api_handle() parses and checks it, then calls the
 * route's handler, which answers at once (reads) or proposes a command
 * (writes) and answers from the apply callback.  Exactly one of api_reply()
 * and api_fail() ends every api_req; if the client went away meanwhile
 * (http on_abort) the answer is dropped and the request only freed.
 */
#include "api.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "cluster_node.h"
#include "jwt.h"

/* CORS headers on every answer (openim-protocol.md §2.1). */
static const char cors_headers[] = "Access-Control-Allow-Origin: *\r\n"
				   "Access-Control-Allow-Methods: *\r\n"
				   "Access-Control-Allow-Headers: *\r\n"
				   "Access-Control-Allow-Credentials: false\r\n"
				   "Access-Control-Max-Age: 172800\r\n";

static const char json_ctype[] = "application/json; charset=utf-8";

const char *api_code_name(int code)
{
	switch (code) {
	case OI_OK:
		return "";
	case OI_SERVER_INTERNAL:
		return "ServerInternalError";
	case OI_ARGS:
		return "ArgsError";
	case OI_NO_PERMISSION:
		return "NoPermissionError";
	case OI_DUPLICATE_KEY:
		return "DuplicateKeyError";
	case OI_RECORD_NOT_FOUND:
		return "RecordNotFoundError";
	case OI_USER_NOT_FOUND:
		return "UserIDNotFoundError";
	case OI_REGISTERED_ALREADY:
		return "RegisteredAlreadyError";
	case OI_GROUP_NOT_FOUND:
		return "GroupIDNotFoundError";
	case OI_GROUP_EXISTED:
		return "GroupIDExisted";
	case OI_NOT_IN_GROUP:
		return "NotInGroupYetError";
	case OI_DISMISSED:
		return "DismissedAlreadyError";
	case OI_CANNOT_ADD_YOURSELF:
		return "CanNotAddYourselfError";
	case OI_BLOCKED_BY_PEER:
		return "BlockedByPeer";
	case OI_NOT_PEERS_FRIEND:
		return "NotPeersFriend";
	case OI_RELATIONSHIP_ALREADY:
		return "RelationshipAlreadyError";
	case OI_FRIEND_REQUEST_HANDLED:
		return "FriendRequestHandled";
	case OI_MUTED_IN_GROUP:
		return "MutedInGroup";
	case OI_MUTED_GROUP:
		return "MutedGroup";
	case OI_MSG_ALREADY_REVOKE:
		return "MsgAlreadyRevoke";
	case OI_TOKEN_EXPIRED:
		return "TokenExpiredError";
	case OI_TOKEN_INVALID:
		return "TokenInvalidError";
	case OI_TOKEN_MALFORMED:
		return "TokenMalformedError";
	case OI_TOKEN_NOT_VALID_YET:
		return "TokenNotValidYetError";
	case OI_TOKEN_UNKNOWN:
		return "TokenUnknownError";
	case OI_TOKEN_KICKED:
		return "TokenKickedError";
	case OI_TOKEN_NOT_EXIST:
		return "TokenNotExistError";
	case OI_DATABASE:
		return "DatabaseError";
	default:
		return "UnknownCode";
	}
}

static void free_req(struct api_req *r)
{
	if (r->rt)
		eng_read_end(r->rt);
	if (r->body)
		json_decref(r->body);
	im_buf_free(&r->cmd);
	im_free(r->state);
	im_free(r);
}

static void respond_raw(struct http_req *h, int status, const char *type, const char *body,
			size_t len)
{
	http_respond(h, status, type, cors_headers, body, len);
}

/* Writes the envelope; `data` (may be NULL) is stolen. */
static void send_envelope(struct api_req *r, int code, const char *dlt, json_t *data)
{
	if (r->http == NULL) {
		if (data)
			json_decref(data);
		free_req(r);
		return;
	}
	/* The http_req is invalid once answered: detach it from r first. */
	struct http_req *h = r->http;
	h->data = NULL;
	r->http = NULL;
	json_t *env = json_object();
	json_object_set_new(env, "errCode", json_integer(code));
	json_object_set_new(env, "errMsg", json_string(api_code_name(code)));
	json_object_set_new(env, "errDlt", json_str(im_str_c(dlt ? dlt : "")));
	if (data)
		json_object_set_new(env, "data", data);
	struct im_buf out = {0};
	if (env == NULL || json_go_dump(env, &out) != 0) {
		static const char oom[] = "{\"errCode\":500,\"errMsg\":\"ServerInternalError\","
					  "\"errDlt\":\"out of memory\"}";
		respond_raw(h, 200, json_ctype, oom, sizeof(oom) - 1);
	} else {
		respond_raw(h, 200, json_ctype, out.p, out.len);
	}
	im_buf_free(&out);
	json_decref(env);
	free_req(r);
}

void api_reply(struct api_req *r, json_t *data)
{
	send_envelope(r, OI_OK, "", data);
}

void api_fail(struct api_req *r, int code, const char *fmt, ...)
{
	char dlt[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(dlt, sizeof(dlt), fmt, ap);
	va_end(ap);
	/* Bad input is logged (design.md promise 8); successes are not. */
	if (r->http)
		IM_INFO("op=%s user=%s %.*s -> %d %s", r->op_id, r->who.user_id,
			(int)r->http->path.n, r->http->path.p, code, dlt);
	send_envelope(r, code, dlt, NULL);
}

void api_fail_im(struct api_req *r, int im_code, const char *detail)
{
	switch (im_code) {
	case IM_EINVAL:
		api_fail(r, OI_ARGS, "%s", detail);
		break;
	case IM_ENOTFOUND:
		api_fail(r, OI_RECORD_NOT_FOUND, "%s", detail);
		break;
	case IM_EEXIST:
		api_fail(r, OI_DUPLICATE_KEY, "%s", detail);
		break;
	case IM_EREADONLY:
	case IM_EFULL:
		api_fail(r, OI_DATABASE, "storage full: writes are refused (%s)", detail);
		break;
	default:
		api_fail(r, OI_SERVER_INTERNAL, "%s: %s", im_strerror(im_code), detail);
		break;
	}
}

struct eng_rtxn *api_read(struct api_req *r)
{
	if (r->rt)
		return r->rt;
	int rv = eng_read_begin(r->s->eng, &r->rt);
	if (rv != 0) {
		r->rt = NULL;
		api_fail(r, OI_SERVER_INTERNAL, "read: %s", im_strerror(rv));
		return NULL;
	}
	return r->rt;
}

/* ---------------------------------------------------------------- proposals */

static void propose_cb(struct clu_req *creq, int status, const struct eng_result *res)
{
	struct api_req *r = creq->data;
	if (status != 0) {
		api_fail_im(r, status, "the write was not applied");
		return;
	}
	r->done(r, status, res);
}

void api_propose(struct api_req *r, const struct eng_cmd *cmd, api_done done)
{
	if (r->rt) {
		eng_read_end(r->rt);
		r->rt = NULL;
	}
	r->cmd.len = 0;
	int rv = eng_cmd_encode(cmd, &r->cmd);
	if (rv != 0) {
		api_fail_im(r, rv, "encode command");
		return;
	}
	r->done = done;
	r->creq.data = r;
	rv = r->s->propose(r->s, &r->creq, r->cmd.p, r->cmd.len, propose_cb);
	if (rv != 0)
		api_fail_im(r, rv, "propose");
}

/* ---------------------------------------------------------------- checks */

bool api_require_admin(struct api_req *r)
{
	if (r->who.admin)
		return true;
	api_fail(r, OI_NO_PERMISSION, "only app manager: opUserID %s", r->who.user_id);
	return false;
}

bool api_require_self_or_admin(struct api_req *r, struct im_str user_id)
{
	if (r->who.admin || im_str_eq(user_id, im_str_c(r->who.user_id)))
		return true;
	api_fail(r, OI_NO_PERMISSION, "no permission: opUserID %s ownerUserID %.*s", r->who.user_id,
		 (int)user_id.n, user_id.p);
	return false;
}

bool api_str(struct api_req *r, const json_t *obj, const char *key, struct im_str *out)
{
	struct json_err e;
	if (json_get_str(obj, key, out, NULL, &e) == 0)
		return true;
	api_fail(r, OI_ARGS, "%s", e.msg);
	return false;
}

bool api_i32(struct api_req *r, const json_t *obj, const char *key, int32_t *out, bool *present)
{
	struct json_err e;
	if (json_get_i32(obj, key, out, present, &e) == 0)
		return true;
	api_fail(r, OI_ARGS, "%s", e.msg);
	return false;
}

bool api_i64(struct api_req *r, const json_t *obj, const char *key, int64_t *out, bool *present)
{
	struct json_err e;
	if (json_get_i64(obj, key, out, present, &e) == 0)
		return true;
	api_fail(r, OI_ARGS, "%s", e.msg);
	return false;
}

bool api_bool(struct api_req *r, const json_t *obj, const char *key, bool *out, bool *present)
{
	struct json_err e;
	if (json_get_bool(obj, key, out, present, &e) == 0)
		return true;
	api_fail(r, OI_ARGS, "%s", e.msg);
	return false;
}

bool api_strs(struct api_req *r, const json_t *obj, const char *key, struct im_str **out, size_t *n)
{
	struct json_err e;
	if (json_get_str_array(obj, key, out, n, &e) == 0)
		return true;
	api_fail(r, OI_ARGS, "%s", e.msg);
	return false;
}

bool api_pagination(struct api_req *r, const json_t *obj, uint64_t *offset, uint64_t *limit)
{
	json_t *p = NULL;
	struct json_err e;
	if (json_get_obj(obj, "pagination", &p, &e) != 0) {
		api_fail(r, OI_ARGS, "%s", e.msg);
		return false;
	}
	int32_t page = 0, show = 0;
	if (p && (!api_i32(r, p, "pageNumber", &page, NULL) ||
		  !api_i32(r, p, "showNumber", &show, NULL)))
		return false;
	/* OpenIM: a missing pagination or a non-positive page/show means "everything". */
	if (page <= 0 || show <= 0) {
		*offset = 0;
		*limit = 0;
		return true;
	}
	*offset = (uint64_t)(page - 1) * (uint64_t)show;
	*limit = (uint64_t)show;
	return true;
}

json_t *api_null_if_empty(json_t *arr)
{
	if (json_array_size(arr) > 0)
		return arr;
	json_decref(arr);
	return json_null();
}

json_t *api_user_json(const struct eng_user *u)
{
	json_t *o = json_object();
	json_object_set_new(o, "userID", json_str(u->user_id));
	json_object_set_new(o, "nickname", json_str(u->nickname));
	json_object_set_new(o, "faceURL", json_str(u->face_url));
	json_object_set_new(o, "ex", json_str(u->ex));
	json_object_set_new(o, "createTime", json_integer(u->create_time));
	json_object_set_new(o, "appMangerLevel", json_integer(u->app_manger_level));
	json_object_set_new(o, "globalRecvMsgOpt", json_integer(u->global_recv_msg_opt));
	return o;
}

/* ---------------------------------------------------------------- routing */

static const struct api_route *route_tables[] = {
    api_routes_auth,	  api_routes_user,	api_routes_group,
    api_routes_group_set, api_routes_group_req, api_routes_friend,
    api_routes_conv,	  api_routes_msg,	api_routes_cluster};

static const struct api_route *find_route(struct im_str path)
{
	for (size_t t = 0; t < IM_ARRAY_LEN(route_tables); t++)
		for (const struct api_route *rt = route_tables[t]; rt->path; rt++)
			if (im_str_eq(path, im_str_c(rt->path)))
				return rt;
	return NULL;
}

static void on_abort(struct http_req *h)
{
	struct api_req *r = h->data;
	if (r)
		r->http = NULL; /* a proposal in flight finishes and frees r */
}

static void plain(struct http_req *h, int status, const char *text)
{
	respond_raw(h, status, "text/plain; charset=utf-8", text, strlen(text));
}

static void health(struct srv *s, struct http_req *h, bool ready_check)
{
	struct clu_status st = {.ready = true}; /* no cluster: the fuzz harness */
	if (s->clu)
		clu_get_status(s->clu, &st);
	if (ready_check && !st.ready)
		plain(h, 503, "not ready\n");
	else
		plain(h, 200, "ok\n");
}

static void api_dispatch(struct api_req *r);

static void barrier_done(struct clu_req *creq, int status, const struct eng_result *res)
{
	IM_UNUSED(res);
	struct api_req *r = creq->data;
	if (r->http == NULL) {
		api_fail(r, OI_SERVER_INTERNAL, "the client went away"); /* only frees r */
		return;
	}
	if (status != 0) {
		api_fail_im(r, status, "read barrier");
		return;
	}
	api_dispatch(r);
}

void api_handle(struct http_req *h, void *arg)
{
	struct srv *s = arg;
	if (h->error == HTTP_REQ_BAD) {
		plain(h, 400, "400 Bad Request");
		return;
	}
	if (h->error == HTTP_REQ_HEADER_TOO_LARGE) {
		plain(h, 431, "431 Request Header Fields Too Large");
		return;
	}
	if (im_str_eq(h->method, IM_STR_LIT("OPTIONS"))) {
		plain(h, 200, "Options Request!");
		return;
	}
	if (im_str_eq(h->method, IM_STR_LIT("GET"))) {
		if (im_str_eq(h->path, IM_STR_LIT("/healthz")))
			health(s, h, false);
		else if (im_str_eq(h->path, IM_STR_LIT("/readyz")))
			health(s, h, true);
		else
			plain(h, 404, "404 page not found");
		return;
	}
	if (s->node && h->path.n > 14 && memcmp(h->path.p, "/cluster/node/", 14) == 0) {
		node_handle(s, h); /* node-to-node traffic, authenticated by its own HMAC */
		return;
	}
	const struct api_route *route = find_route(h->path);
	if (route == NULL || !im_str_eq(h->method, IM_STR_LIT("POST"))) {
		plain(h, 404, "404 page not found");
		return;
	}
	struct api_req *r = im_calloc(1, sizeof(*r));
	if (r == NULL) {
		plain(h, 503, "out of memory");
		return;
	}
	r->s = s;
	r->http = h;
	r->creq.data = r;
	h->data = r;
	h->on_abort = on_abort;
	if (h->error == HTTP_REQ_BODY_TOO_LARGE) {
		api_fail(r, OI_ARGS, "request body too large (limit %lld bytes)",
			 (long long)s->cfg->max_body_bytes);
		return;
	}
	struct im_str op = http_req_header(h, "operationID");
	if (op.n == 0) {
		api_fail(r, OI_ARGS, "header must have operationID");
		return;
	}
	snprintf(r->op_id, sizeof(r->op_id), "%.*s", (int)IM_MIN(op.n, 128u), op.p);
	r->route = route;
	/* A cluster follower first catches up with what the cluster acknowledged. */
	int rv = s->read_barrier && !(route->flags & API_NO_BARRIER)
		     ? s->read_barrier(s, &r->creq, barrier_done)
		     : 1;
	if (rv == 1)
		api_dispatch(r);
	else if (rv != 0)
		api_fail_im(r, rv, "read barrier");
}

/* The rest of api_handle, once this node is caught up. */
static void api_dispatch(struct api_req *r)
{
	struct srv *s = r->s;
	struct http_req *h = r->http;
	const struct api_route *route = r->route;
	bool signed_by_node = false;
	if ((route->flags & API_NODE_AUTH) && s->node && http_req_header(h, "X-Imlog-Auth").n > 0) {
		/* Signed with the cluster's secret instead of a token (no write needed to ask). */
		if (!node_timed_auth_ok(s, h, route->path)) {
			api_fail(r, OI_TOKEN_INVALID, "node signature invalid or stale");
			return;
		}
		r->who.admin = true;
		snprintf(r->who.user_id, sizeof(r->who.user_id), "%s", "imlog-node");
		signed_by_node = true;
	}
	if (!(route->flags & API_NO_TOKEN) && !signed_by_node) {
		struct im_str tok = http_req_header(h, "token");
		if (tok.n == 0) {
			api_fail(r, OI_ARGS, "header must have token");
			return;
		}
		struct eng_rtxn *rt = api_read(r);
		if (rt == NULL)
			return;
		int code = auth_verify(s, rt, tok.p, tok.n, &r->who, NULL);
		if (code != 0) {
			api_fail(r, code, "token verification failed");
			return;
		}
	}
	struct json_err e;
	if (route->flags & API_RAW_BODY) {
		r->body = json_object();
		route->fn(r);
		return;
	}
	r->body = json_parse_body(h->body, h->body_len, &e);
	if (r->body == NULL) {
		api_fail(r, OI_ARGS, "%s", e.msg);
		return;
	}
	route->fn(r);
}
