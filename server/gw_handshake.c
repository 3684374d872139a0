/* gw_handshake.c - the gateway's HTTP side: connection parameters, the checks of
 * openim-protocol.md §4.2 in order, error delivery, and the RFC 6455 upgrade. */
#include "gateway_int.h"

#include <errno.h>
#include <stdio.h>
#include <strings.h>

#include <mbedtls/sha1.h>

#include "api.h"
#include "envelope.h"
#include "http.h"
#include "json.h"

/* RFC 6455 §1.3: the GUID appended to Sec-WebSocket-Key. */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

const char *gw__code_name(int code)
{
	switch (code) {
	case GW_CONN_OVER_MAX:
		return "ConnOverMaxNumLimit";
	case GW_CONN_ARGS:
		return "ConnArgsErr";
	default:
		return api_code_name(code);
	}
}

int gw__result_json(int code, const char *dlt, struct im_buf *out)
{
	json_t *o = json_object();
	int rc = -ENOMEM;
	if (o && json_object_set_new(o, "errCode", json_integer(code)) == 0 &&
	    json_object_set_new(o, "errMsg", json_string(gw__code_name(code))) == 0 &&
	    json_object_set_new(o, "errDlt", json_str(im_str_c(dlt ? dlt : ""))) == 0)
		rc = json_go_dump(o, out);
	json_decref(o);
	return rc;
}

/* ---- parameters (§4.1) ---- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Go's url.QueryUnescape into dst (room for n bytes); false on a bad escape. */
static bool unescape(const char *s, size_t n, char *dst, size_t *out)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') {
			dst[k++] = ' ';
		} else if (s[i] == '%') {
			if (i + 2 >= n)
				return false;
			int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return false;
			dst[k++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			dst[k++] = s[i];
		}
	}
	*out = k;
	return true;
}

/* The query keys of §4.1, in the order of the slots below. */
static const char *const keys[] = {"token",	   "sendID",	"platformID",
				   "operationID",  "sdkType",	"compression",
				   "isBackground", "isMsgResp", "v"};
enum { K_TOKEN, K_SEND_ID, K_PLATFORM, K_OP_ID, K_SDK, K_COMPRESSION, K_BG, K_RESP, K_V, K_N };

/*
 * First value of each key, as url.ParseQuery + Values.Get: pairs split on
 * '&', a pair holding ';' or a bad escape is skipped, the key and value are
 * unescaped.  Values are written to *st (room for the whole query).
 */
static void split_query(struct im_str q, char **st, struct im_str vals[K_N])
{
	for (int k = 0; k < K_N; k++)
		vals[k] = (struct im_str){"", 0};
	bool seen[K_N] = {false};
	size_t i = 0;
	while (i <= q.n) {
		size_t j = i;
		while (j < q.n && q.p[j] != '&')
			j++;
		const char *pair = q.p + i;
		size_t plen = j - i, eq = 0;
		i = j + 1;
		if (plen == 0 || memchr(pair, ';', plen) != NULL)
			continue;
		while (eq < plen && pair[eq] != '=')
			eq++;
		char key[16];
		size_t klen;
		if (eq >= sizeof(key) || !unescape(pair, eq, key, &klen))
			continue;
		const char *val = eq < plen ? pair + eq + 1 : pair + plen;
		size_t vraw = eq < plen ? plen - eq - 1 : 0, vlen;
		for (int k = 0; k < K_N; k++) {
			if (seen[k] || klen != strlen(keys[k]) || memcmp(key, keys[k], klen) != 0)
				continue;
			if (unescape(val, vraw, *st, &vlen)) {
				seen[k] = true;
				vals[k] = (struct im_str){*st, (uint32_t)vlen};
				*st += vlen;
			}
			break;
		}
	}
}

/* strconv.ParseBool. */
static bool parse_bool(struct im_str s, bool *out)
{
	static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
	static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
	for (size_t i = 0; i < IM_ARRAY_LEN(t); i++) {
		if (im_str_eq(s, im_str_c(t[i]))) {
			*out = true;
			return true;
		}
		if (im_str_eq(s, im_str_c(f[i]))) {
			*out = false;
			return true;
		}
	}
	return false;
}

/* strconv.Atoi on 64 bits: an optional sign and decimal digits. */
static bool parse_int(struct im_str s, int64_t *out)
{
	size_t i = 0;
	bool neg = false;
	if (s.n && (s.p[0] == '+' || s.p[0] == '-'))
		neg = s.p[i++] == '-';
	if (i == s.n)
		return false;
	uint64_t v = 0;
	for (; i < s.n; i++) {
		if (s.p[i] < '0' || s.p[i] > '9' || v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(s.p[i] - '0');
	}
	if (v > (uint64_t)INT64_MAX + neg)
		return false;
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return true;
}

static int fail(char *dlt, size_t dltlen, const char *msg)
{
	snprintf(dlt, dltlen, "%s", msg);
	return GW_CONN_ARGS;
}

/* The `v` form: base64url (no padding) of a JSON object (3.8.3-patch parseByJson). */
static int parse_v(struct im_str v, struct gw_params *p, char **st, char *dlt, size_t dltlen)
{
	struct im_buf raw = {0};
	int rc = env_b64_decode(v.p, v.n, true, &raw);
	if (rc == -ENOMEM)
		return rc;
	if (rc != 0)
		return fail(dlt, dltlen, "data is not base64");
	struct json_err je;
	json_t *o = json_parse_body(raw.p, raw.len, &je);
	im_buf_free(&raw);
	struct im_str *strs[] = {&p->token, &p->user_id, &p->op_id, &p->compression, &p->sdk_type};
	static const char *const names[] = {"token", "userID", "operationID", "compression",
					    "sdkType"};
	rc = o ? 0 : GW_CONN_ARGS;
	for (size_t i = 0; i < IM_ARRAY_LEN(names) && rc == 0; i++) {
		struct im_str s;
		if (json_get_str(o, names[i], &s, NULL, &je) != 0) {
			rc = GW_CONN_ARGS;
			break;
		}
		/* Copy out of the JSON (it is freed below); `store` has room. */
		if (s.n)
			memcpy(*st, s.p, s.n);
		*strs[i] = (struct im_str){*st, s.n};
		*st += s.n;
	}
	if (rc == 0 && (json_get_i64(o, "platformID", &p->platform_id, NULL, &je) != 0 ||
			json_get_bool(o, "sendResponse", &p->msg_resp, NULL, &je) != 0 ||
			json_get_bool(o, "background", &p->background, NULL, &je) != 0))
		rc = GW_CONN_ARGS;
	json_decref(o);
	return rc == 0 ? 0 : fail(dlt, dltlen, "data is not json");
}

void gw__params_free(struct gw_params *p)
{
	im_free(p->store);
	p->store = NULL;
}

int gw__parse_params(struct im_str query, struct im_str hdr_compression, struct gw_params *p,
		     char *dlt, size_t dltlen)
{
	memset(p, 0, sizeof(*p));
	dlt[0] = '\0';
	/*
	 * Unescaped values never grow; the strings of the `v` JSON take at most
	 * three times v (invalid UTF-8 becomes U+FFFD), beside the values.
	 */
	p->store = im_malloc((size_t)query.n * 4 + hdr_compression.n + 16);
	if (p->store == NULL)
		return -ENOMEM;
	char *st = p->store;
	struct im_str vals[K_N];
	split_query(query, &st, vals);
	int rc;
	parse_bool(vals[K_RESP], &p->msg_resp); /* early, to deliver errors as asked */
	if (vals[K_V].n) {
		p->msg_resp = false;
		if ((rc = parse_v(vals[K_V], p, &st, dlt, dltlen)) != 0)
			return rc;
	} else {
		p->token = vals[K_TOKEN];
		p->user_id = vals[K_SEND_ID];
		p->op_id = vals[K_OP_ID];
		p->sdk_type = vals[K_SDK];
		p->compression = vals[K_COMPRESSION];
		if (!parse_int(vals[K_PLATFORM], &p->platform_id))
			return fail(dlt, dltlen, "platformID is not int");
		if (vals[K_RESP].n && !parse_bool(vals[K_RESP], &p->msg_resp))
			return fail(dlt, dltlen, "isMsgResp is not bool");
		if (p->compression.n == 0 && hdr_compression.n) {
			memcpy(st, hdr_compression.p, hdr_compression.n);
			p->compression = (struct im_str){st, hdr_compression.n};
		}
		/* Required by 3.8.3-patch; absent means false here (§4.1). */
		if (vals[K_BG].n && !parse_bool(vals[K_BG], &p->background))
			return fail(dlt, dltlen, "isBackground is not bool");
	}
	if (p->op_id.n == 0)
		return fail(dlt, dltlen, "operationID is empty");
	if (p->token.n == 0)
		return fail(dlt, dltlen, "token is empty");
	if (p->user_id.n == 0)
		return fail(dlt, dltlen, "sendID is empty");
	if (p->platform_id < 1 || p->platform_id > 11)
		return fail(dlt, dltlen, "platformID is invalid");
	if (p->sdk_type.n == 0 || im_str_eq(p->sdk_type, IM_STR_LIT("go")))
		p->gob = true;
	else if (!im_str_eq(p->sdk_type, IM_STR_LIT("js")))
		return fail(dlt, dltlen, "sdkType is invalid");
	p->gzip = im_str_eq(p->compression, IM_STR_LIT("gzip"));
	return 0;
}

/* ---- the upgrade (RFC 6455 §4.2) ---- */

/* True if the comma-separated header value holds token (case-insensitive). */
static bool has_token(struct im_str v, const char *token)
{
	size_t tl = strlen(token), i = 0;
	while (i < v.n) {
		while (i < v.n && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
			i++;
		size_t j = i;
		while (j < v.n && v.p[j] != ',')
			j++;
		size_t e = j;
		while (e > i && (v.p[e - 1] == ' ' || v.p[e - 1] == '\t'))
			e--;
		if (e - i == tl && strncasecmp(v.p + i, token, tl) == 0)
			return true;
		i = j;
	}
	return false;
}

/* Checks a WebSocket upgrade request and computes Sec-WebSocket-Accept (29 bytes with NUL). */
static bool upgrade_ok(const struct http_req *req, char accept[32])
{
	if (!req->upgrade || !im_str_eq(req->method, IM_STR_LIT("GET")) ||
	    !has_token(http_req_header(req, "Upgrade"), "websocket") ||
	    !has_token(http_req_header(req, "Connection"), "upgrade") ||
	    !im_str_eq(http_req_header(req, "Sec-WebSocket-Version"), IM_STR_LIT("13")))
		return false;
	struct im_str key = http_req_header(req, "Sec-WebSocket-Key");
	struct im_buf raw = {0};
	bool ok = key.n > 0 && key.n < 64 && env_b64_decode(key.p, key.n, false, &raw) == 0 &&
		  raw.len == 16;
	im_buf_free(&raw);
	if (!ok)
		return false;
	char cat[64 + sizeof(ws_guid)];
	memcpy(cat, key.p, key.n);
	memcpy(cat + key.n, ws_guid, sizeof(ws_guid) - 1);
	unsigned char sha[20];
	if (mbedtls_sha1_ret((const unsigned char *)cat, key.n + sizeof(ws_guid) - 1, sha) != 0)
		return false;
	struct im_buf b64 = {0};
	ok = env_b64_encode(sha, sizeof(sha), &b64) == 0 && b64.len == 28;
	if (ok)
		memcpy(accept, b64.p, 29);
	im_buf_free(&b64);
	return ok;
}

static void http_error(struct http_req *req, int code, const char *dlt)
{
	struct im_buf body = {0};
	if (gw__result_json(code, dlt, &body) != 0) {
		http_respond(req, 500, "text/plain", NULL, "out of memory", 13);
		return;
	}
	http_respond(req, 200, "application/json; charset=utf-8", NULL, body.p, body.len);
	im_buf_free(&body);
}

static void upgrade(struct gw *g, struct http_req *req, const char *accept,
		    const struct gw_params *p, int code, const char *dlt)
{
	char resp[256];
	int n = snprintf(resp, sizeof(resp),
			 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
			 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
			 accept);
	char *rest = NULL;
	size_t rest_len = 0;
	uv_tcp_t *tcp = http_detach(req, resp, (size_t)n, &rest, &rest_len);
	if (tcp == NULL) {
		if (code != 0)
			http_error(req, code, dlt);
		else
			http_respond(req, 503, "text/plain", NULL, "Service Unavailable", 19);
		return;
	}
	gw__accept(g, tcp, rest, rest_len, p, code, dlt);
	im_free(rest);
}

/* The checks of §4.2 in order: 1601, 1602, the token (§2.3), 1502; then the upgrade. */
static void handshake(struct gw *g, struct http_req *req)
{
	struct srv *s = gw__srv(g);
	gw__enter(g);
	struct gw_params p;
	char dlt[160];
	int code =
	    gw__parse_params(req->query, http_req_header(req, "compression"), &p, dlt, sizeof(dlt));
	if (code == -ENOMEM) {
		code = OI_SERVER_INTERNAL;
		snprintf(dlt, sizeof(dlt), "out of memory");
	}
	if (gw__at_capacity(g)) {
		code = GW_CONN_OVER_MAX;
		snprintf(dlt, sizeof(dlt), "over max conn num limit");
	}
	if (code == 0) {
		struct eng_rtxn *rt;
		struct api_who who;
		if (eng_read_begin(s->eng, &rt) != 0) {
			code = OI_SERVER_INTERNAL;
			snprintf(dlt, sizeof(dlt), "storage unavailable");
		} else {
			code = auth_verify(s, rt, p.token.p, p.token.n, &who, NULL);
			eng_read_end(rt);
			if (code != 0) {
				snprintf(dlt, sizeof(dlt), "token verification failed");
			} else if (!im_str_eq(im_str_c(who.user_id), p.user_id)) {
				code = OI_TOKEN_INVALID;
				snprintf(dlt, sizeof(dlt), "token uid %s != userID %.*s",
					 who.user_id, (int)IM_MIN(p.user_id.n, 64u), p.user_id.p);
			} else if (who.platform_id != p.platform_id) {
				code = OI_TOKEN_INVALID;
				snprintf(dlt, sizeof(dlt), "token platform %d != platformID %lld",
					 who.platform_id, (long long)p.platform_id);
			}
		}
	}
	char accept[32];
	bool can_upgrade = upgrade_ok(req, accept);
	if (code != 0 && !(p.msg_resp && can_upgrade))
		http_error(req, code, dlt); /* §4.2: an HTTP 200 JSON body, no upgrade */
	else if (!can_upgrade)
		http_respond(req, 400, "text/plain", NULL, "Bad Request", 11);
	else
		upgrade(g, req, accept, &p, code, dlt);
	gw__params_free(&p);
	gw__leave(g);
}

/* A handshake waiting for this node to catch up with the cluster (srv->read_barrier). */
struct hs_wait {
	struct clu_req creq;
	struct http_req *req; /* NULL once the client went away */
	struct gw *g;
};

static void hs_abort(struct http_req *req)
{
	struct hs_wait *w = req->data;
	w->req = NULL;
}

static void hs_caught_up(struct clu_req *creq, int status, const struct eng_result *res)
{
	IM_UNUSED(res);
	struct hs_wait *w = creq->data;
	struct http_req *req = w->req;
	struct gw *g = w->g;
	im_free(w);
	if (req == NULL)
		return;
	req->data = NULL;
	req->on_abort = NULL;
	if (status != 0)
		http_error(req, OI_SERVER_INTERNAL, "this node cannot reach the cluster's leader");
	else
		handshake(g, req);
}

/*
 * On a cluster follower the token is checked, and the client then syncs,
 * only once this node has applied every write acknowledged anywhere: a
 * token issued through another node, or messages sent there before the
 * client moved here, are visible.
 */
void gw__http_handler(struct http_req *req, void *arg)
{
	struct gw *g = arg;
	struct srv *s = gw__srv(g);
	if (req->error) {
		http_respond(req, 400, "text/plain", NULL, "Bad Request", 11);
		return;
	}
	if (s->read_barrier == NULL) {
		handshake(g, req);
		return;
	}
	struct hs_wait *w = im_calloc(1, sizeof(*w));
	if (w == NULL) {
		http_error(req, OI_SERVER_INTERNAL, "out of memory");
		return;
	}
	w->req = req;
	w->g = g;
	w->creq.data = w;
	req->data = w;
	req->on_abort = hs_abort;
	int rv = s->read_barrier(s, &w->creq, hs_caught_up);
	if (rv == 0)
		return;
	req->data = NULL;
	req->on_abort = NULL;
	im_free(w);
	if (rv == 1)
		handshake(g, req);
	else
		http_error(req, OI_SERVER_INTERNAL, "this node cannot reach the cluster's leader");
}
