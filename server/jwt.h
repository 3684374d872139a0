/* jwt.h - OpenIM's tokens: HS256 JWTs with claims UserID, PlatformID, exp, iat (openim-protocol.md
 * §2.3). */
#ifndef IM_JWT_H
#define IM_JWT_H

#include "common.h"

/* Outcome of parsing a token, in OpenIM's order of checks. */
enum jwt_status {
	JWT_OK = 0,
	JWT_MALFORMED = 1503,	  /* not three base64url parts of JSON */
	JWT_EXPIRED = 1501,	  /* now >= exp */
	JWT_NOT_VALID_YET = 1504, /* now < nbf */
	JWT_UNKNOWN = 1505,	  /* bad signature, alg other than HS256, iat in the future, ... */
};

struct jwt_claims {
	char user_id[129];
	int32_t platform_id;
	int64_t exp; /* seconds; 0 if absent */
	int64_t iat; /* seconds; 0 if absent */
};

/*
 * Verifies `token` with `secret` at time now_s and fills claims (zeroed
 * unless JWT_OK).  Returns an enum jwt_status (0 = valid).  The checks follow
 * golang-jwt v4.5.1, the version open-im-server 3.8.3 pins, as OpenIM maps
 * it: malformed (1503) first; then an unknown alg or a bad signature (1505,
 * checked before the dates since v4.5.1); then expiry (1501) wins over
 * not-valid-yet (1504), which wins over an iat in the future (1505).  Only
 * HS256 is accepted.  Uses libjwt for the signature; libjwt does not check
 * exp/nbf, this function does.  jwt.c lists the deliberate differences.
 */
int jwt_parse(const char *token, size_t token_len, struct im_str secret, int64_t now_s,
	      struct jwt_claims *claims);

/*
 * Issues a token for (user_id, platform_id): iat = now_s - 5, exp = now_s +
 * expire_s.  *out is a NUL-terminated string from im_malloc (caller frees).
 * Returns 0, -ENOMEM or IM_EINVAL.
 */
int jwt_issue(struct im_str user_id, int32_t platform_id, struct im_str secret, int64_t now_s,
	      int64_t expire_s, char **out, int64_t *exp_out);

#endif
