/* auth.c - token verification as OpenIM's parseToken does it (openim-protocol.md §2.3). */
#include <stdio.h>

#include "api.h"
#include "jwt.h"

int auth_verify(struct srv *s, struct eng_rtxn *rt, const char *tok, size_t len,
		struct api_who *out, int64_t *exp_out)
{
	struct jwt_claims c;
	int code = jwt_parse(tok, len, s->secret, s->now_ms() / 1000, &c);
	if (code != JWT_OK)
		return code;
	memset(out, 0, sizeof(*out));
	snprintf(out->user_id, sizeof(out->user_id), "%s", c.user_id);
	out->platform_id = c.platform_id;
	if (exp_out)
		*exp_out = c.exp;
	struct im_str uid = im_str_c(out->user_id);
	/* Admin tokens are not stored: valid until exp (§2.3). */
	if (cfg_is_admin(s->cfg, uid)) {
		out->admin = true;
		return OI_OK;
	}
	int status = 0;
	int rv = eng_token_status(rt, uid, c.platform_id, (struct im_str){tok, (uint32_t)len},
				  &status, NULL);
	if (rv == IM_ENOTFOUND)
		return OI_TOKEN_NOT_EXIST;
	if (rv != 0)
		return OI_SERVER_INTERNAL;
	switch (status) {
	case ENG_TOKEN_NORMAL:
		return OI_OK;
	case ENG_TOKEN_KICKED:
		return OI_TOKEN_KICKED;
	default:
		return OI_TOKEN_UNKNOWN;
	}
}

/* A proposal nobody waits for: the token kicks of a multi-login (§2.3). */
struct kick_op {
	struct clu_req creq;
	struct im_buf cmd;
};

static void kick_done(struct clu_req *creq, int status, const struct eng_result *res)
{
	struct kick_op *op = creq->data;
	if (status != 0 || (res && res->code != 0))
		IM_WARN("multi-login token kick not applied: %s",
			status ? im_strerror(status) : res->detail);
	im_buf_free(&op->cmd);
	im_free(op);
}

void auth_kick_tokens(struct srv *s, struct im_str user_id, int32_t platform_id,
		      struct im_str keep_token)
{
	struct kick_op *op = im_calloc(1, sizeof(*op));
	if (op == NULL)
		return;
	struct eng_cmd cmd = {.type = ENG_CMD_TOKEN_KICK, .now_ms = s->now_ms()};
	cmd.u.token_kick.user_id = user_id;
	cmd.u.token_kick.platform_id = platform_id;
	cmd.u.token_kick.except_token = keep_token;
	op->creq.data = op;
	int rv = eng_cmd_encode(&cmd, &op->cmd);
	if (rv == 0)
		rv = s->propose(s, &op->creq, op->cmd.p, op->cmd.len, kick_done);
	if (rv != 0) {
		IM_WARN("multi-login token kick: %s", im_strerror(rv));
		im_buf_free(&op->cmd);
		im_free(op);
	}
}
