/* fuzz_jwt.c - tokens: parse with a fixed secret and time, then with a secret taken from the input,
 * and issue/parse round trips. */
#include <stdint.h>
#include <stdlib.h>

#include "jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW INT64_C(1700000000)

static void parse_checked(const char *tok, size_t n, struct im_str secret)
{
	struct jwt_claims c;
	int rv = jwt_parse(tok, n, secret, NOW, &c);

	switch (rv) {
	case JWT_OK:
		if (memchr(c.user_id, '\0', sizeof(c.user_id)) == NULL)
			abort();
		break;
	case JWT_MALFORMED:
	case JWT_EXPIRED:
	case JWT_NOT_VALID_YET:
	case JWT_UNKNOWN:
		if (c.user_id[0] != '\0' || c.platform_id != 0)
			abort();
		break;
	default:
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;

	parse_checked(p, size, IM_STR_LIT("openIM123"));
	if (size == 0)
		return 0;

	/* The first byte gives the secret's length; the token follows the secret. */
	size_t klen = IM_MIN((size_t)data[0], size - 1);
	struct im_str secret = {p + 1, (uint32_t)klen};
	const char *rest = p + 1 + klen;
	size_t rest_len = size - 1 - klen;
	parse_checked(rest, rest_len, secret);

	/* Whatever jwt_issue accepts, jwt_parse must accept back unchanged. */
	char *tok = NULL;
	int64_t exp;
	struct im_str uid = {rest, (uint32_t)IM_MIN(rest_len, 128)};
	int32_t platform = (int32_t)(klen * 7919) - 1000;
	if (jwt_issue(uid, platform, secret, NOW, 3600, &tok, &exp) == 0) {
		struct jwt_claims c;
		if (jwt_parse(tok, strlen(tok), secret, NOW, &c) != JWT_OK ||
		    strlen(c.user_id) != uid.n || memcmp(c.user_id, uid.p, uid.n) != 0 ||
		    c.platform_id != platform || c.exp != exp || c.iat != NOW - 5)
			abort();
		im_free(tok);
	}
	return 0;
}
