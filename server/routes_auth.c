/* routes_auth.c - /auth/ routes: admin and user tokens, parse_token, force_logout
 * (openim-protocol.md §3.1). */
#include <errno.h>
#include <stdio.h>

#include "api.h"
#include "gateway.h"
#include "jwt.h"

#define ADMIN_PLATFORM_ID 10

/* Constant-time comparison of the presented secret with the configured one. */
static bool secret_equal(struct im_str a, struct im_str b)
{
	unsigned char diff = (unsigned char)(a.n != b.n);
	for (uint32_t i = 0; i < a.n; i++)
		diff |= (unsigned char)(a.p[i] ^ (i < b.n ? b.p[i] : 0));
	return diff == 0;
}

static void token_reply(struct api_req *r, const char *token, int64_t expire_s)
{
	json_t *d = json_object();
	json_object_set_new(d, "token", json_string(token));
	json_object_set_new(d, "expireTimeSeconds", json_integer(expire_s));
	api_reply(r, d);
}

static void get_admin_token(struct api_req *r)
{
	struct im_str secret, user_id;
	if (!api_str(r, r->body, "secret", &secret) || !api_str(r, r->body, "userID", &user_id))
		return;
	if (!secret_equal(secret, r->s->secret)) {
		api_fail(r, OI_NO_PERMISSION, "secret invalid");
		return;
	}
	if (!cfg_is_admin(r->s->cfg, user_id)) {
		api_fail(r, OI_ARGS, "userID is error. userID=%.*s", (int)user_id.n, user_id.p);
		return;
	}
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	struct eng_user u;
	if (eng_user_get(rt, user_id, &u) != 0) {
		api_fail(r, OI_USER_NOT_FOUND, "userID %.*s not found", (int)user_id.n, user_id.p);
		return;
	}
	char *tok = NULL;
	int rv = jwt_issue(user_id, ADMIN_PLATFORM_ID, r->s->secret, r->s->now_ms() / 1000,
			   r->s->token_expire_s, &tok, NULL);
	if (rv != 0) {
		api_fail_im(r, rv, "issue token");
		return;
	}
	token_reply(r, tok, r->s->token_expire_s);
	im_free(tok);
}

struct issue_state {
	char token[ENG_TOKEN_MAX + 1];
};

static void get_user_token_done(struct api_req *r, int status, const struct eng_result *res)
{
	struct issue_state *st = r->state;
	if (res->code == IM_ENOTFOUND) {
		api_fail(r, OI_USER_NOT_FOUND, "%s", res->detail);
		return;
	}
	if (res->code != 0) {
		api_fail_im(r, res->code, res->detail);
		return;
	}
	token_reply(r, st->token, r->s->token_expire_s);
}

static void get_user_token(struct api_req *r)
{
	if (!api_require_admin(r))
		return;
	struct im_str user_id;
	int32_t platform = 0;
	if (!api_i32(r, r->body, "platformID", &platform, NULL) ||
	    !api_str(r, r->body, "userID", &user_id))
		return;
	if (platform == ADMIN_PLATFORM_ID) {
		api_fail(r, OI_NO_PERMISSION,
			 "platformID invalid. platformID must not be adminPlatformID");
		return;
	}
	if (platform < 1 || platform > 11) {
		api_fail(r, OI_ARGS, "platformID %d invalid", platform);
		return;
	}
	if (cfg_is_admin(r->s->cfg, user_id)) {
		api_fail(r, OI_NO_PERMISSION, "don't get Admin token");
		return;
	}
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	struct eng_user u;
	if (user_id.n == 0 || eng_user_get(rt, user_id, &u) != 0) {
		api_fail(r, OI_USER_NOT_FOUND, "userID %.*s not found", (int)user_id.n, user_id.p);
		return;
	}
	if (u.app_manger_level >= 3) {
		api_fail(r, OI_ARGS, "app account can`t get token");
		return;
	}
	struct issue_state *st = im_calloc(1, sizeof(*st));
	if (st == NULL) {
		api_fail_im(r, -ENOMEM, "alloc");
		return;
	}
	r->state = st;
	int64_t now_ms = r->s->now_ms(), exp = 0;
	char *tok = NULL;
	int rv = jwt_issue(user_id, platform, r->s->secret, now_ms / 1000, r->s->token_expire_s,
			   &tok, &exp);
	if (rv == 0 && strlen(tok) > ENG_TOKEN_MAX)
		rv = IM_ETOOBIG;
	if (rv != 0) {
		im_free(tok);
		api_fail_im(r, rv, "issue token");
		return;
	}
	snprintf(st->token, sizeof(st->token), "%s", tok);
	im_free(tok);
	struct eng_cmd cmd = {.type = ENG_CMD_TOKEN_ISSUE, .now_ms = now_ms};
	cmd.u.token_issue.user_id = user_id;
	cmd.u.token_issue.platform_id = platform;
	cmd.u.token_issue.token = im_str_c(st->token);
	cmd.u.token_issue.expire_at = exp;
	cmd.u.token_issue.policy = (int32_t)r->s->cfg->multi_login_policy;
	cmd.u.token_issue.max_per_platform = (int32_t)r->s->cfg->max_num_one_end;
	api_propose(r, &cmd, get_user_token_done);
}

static void parse_token(struct api_req *r)
{
	struct im_str tok;
	if (!api_str(r, r->body, "token", &tok))
		return;
	struct eng_rtxn *rt = api_read(r);
	if (rt == NULL)
		return;
	struct api_who who;
	int64_t exp = 0;
	int code = auth_verify(r->s, rt, tok.p, tok.n, &who, &exp);
	if (code != 0) {
		api_fail(r, code, "token verification failed");
		return;
	}
	json_t *d = json_object();
	json_object_set_new(d, "userID", json_string(who.user_id));
	json_object_set_new(d, "platformID", json_integer(who.platform_id));
	json_object_set_new(d, "expireTimeSeconds", json_integer(exp));
	api_reply(r, d);
}

static void no_data_done(struct api_req *r, int status, const struct eng_result *res)
{
	if (res->code != 0)
		api_fail_im(r, res->code, res->detail);
	else
		api_reply(r, NULL);
}

struct logout_state {
	char user_id[ENG_ID_MAX + 1];
	int32_t platform_id;
};

/* The tokens are kicked: now close the live connections with a 2002 (§2.3). */
static void force_logout_done(struct api_req *r, int status, const struct eng_result *res)
{
	struct logout_state *st = r->state;
	if (res->code == 0 && r->s->gw)
		gw_kick(r->s->gw, im_str_c(st->user_id), st->platform_id);
	if (res->code == 0 && r->s->kick_remote)
		r->s->kick_remote(r->s, im_str_c(st->user_id), st->platform_id,
				  (struct im_str){NULL, 0});
	no_data_done(r, status, res);
}

static void force_logout(struct api_req *r)
{
	if (!api_require_admin(r))
		return;
	struct im_str user_id;
	int32_t platform = 0;
	if (!api_i32(r, r->body, "platformID", &platform, NULL) ||
	    !api_str(r, r->body, "userID", &user_id))
		return;
	if (user_id.n == 0 || user_id.n > ENG_ID_MAX) {
		api_fail(r, OI_ARGS, "userID is empty or too long");
		return;
	}
	struct logout_state *st = im_calloc(1, sizeof(*st));
	if (st == NULL) {
		api_fail_im(r, -ENOMEM, "alloc");
		return;
	}
	r->state = st;
	snprintf(st->user_id, sizeof(st->user_id), "%.*s", (int)user_id.n, user_id.p);
	st->platform_id = platform;
	struct eng_cmd cmd = {.type = ENG_CMD_TOKEN_KICK, .now_ms = r->s->now_ms()};
	cmd.u.token_kick.user_id = user_id;
	cmd.u.token_kick.platform_id = platform;
	api_propose(r, &cmd, force_logout_done);
}

const struct api_route api_routes_auth[] = {
    {"/auth/get_admin_token", get_admin_token, API_NO_TOKEN},
    {"/auth/get_user_token", get_user_token, 0},
    {"/auth/parse_token", parse_token, API_NO_TOKEN},
    {"/auth/force_logout", force_logout, 0},
    {NULL, NULL, 0},
};
