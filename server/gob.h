/* gob.h - Go's encoding/gob for the two WebSocket envelope structs (openim-protocol.md §4.9). */
#ifndef IM_GOB_H
#define IM_GOB_H

#include "common.h"
#include "envelope.h"

/*
 * A gob frame is the complete output of a fresh Go encoder for one value:
 * type-definition messages, then one value message.  Each message is an
 * unsigned byte count, a signed type id (negative: the definition of that
 * id) and the payload.
 *
 * Decoding reads the definitions (wireType: ArrayT, SliceT, StructT, MapT and
 * the marshaler kinds), then the value, which must be a struct; its fields
 * are matched BY NAME to GeneralWsReq's (ReqIdentifier int, Token, SendID,
 * OperationID, MsgIncr string, Data []byte).  Type ids are never assumed,
 * unknown fields of any defined type are skipped, a known name with another
 * wire type is an error (as Go's "gob: wrong type"), trailing bytes after the
 * value are ignored.  Every length is bounds-checked; nesting and the number
 * of types and fields are limited (GOB_MAX_*), so any input is safe.
 */
#define GOB_MAX_TYPES  32  /* type definitions in one frame */
#define GOB_MAX_FIELDS 256 /* struct fields over all definitions of one frame */
#define GOB_MAX_DEPTH  16  /* nesting of values being skipped */

/* Built-in type ids (encoding/gob/type.go). */
enum {
	GOB_BOOL = 1,
	GOB_INT = 2,
	GOB_UINT = 3,
	GOB_FLOAT = 4,
	GOB_BYTES = 5,
	GOB_STRING = 6,
	GOB_COMPLEX = 7,
	GOB_INTERFACE = 8,
	GOB_FIRST_USER_ID = 65, /* the id this server gives its own Resp type */
	/* Lowest id a peer may define (encoding/gob firstUserId).  Go >= 1.2x
	 * hands out 64 to the first user type, e.g. the SDK's GeneralWsReq. */
	GOB_MIN_USER_ID = 64,
};

/*
 * Decodes one client frame into *out; the views point into buf, which must
 * outlive them (out->own stays NULL).  Returns 0, or IM_EINVAL with a reason
 * in err (may be NULL).  Allocates nothing.
 */
int gob_decode_req(const uint8_t *buf, size_t len, struct env_req *out, char *err, size_t errlen);

/*
 * Appends a complete server frame for r: the definition of Resp as type 65
 * (the constant 97 bytes of §4.9, built by gob_put_resp_type()) followed by the
 * value message.  Zero fields are omitted, as Go does.  0 or -ENOMEM (out then
 * keeps its old length).
 */
int gob_encode_resp(const struct env_resp *r, struct im_buf *out);

/* Appends the definition message of Resp (type id 65).  0 or -ENOMEM. */
int gob_put_resp_type(struct im_buf *out);

/* Primitive encoders (exposed for tests).  Each returns 0 or -ENOMEM. */
int gob_put_uint(struct im_buf *out, uint64_t v);
int gob_put_int(struct im_buf *out, int64_t v);
int gob_put_bytes(struct im_buf *out, const void *p, size_t n);

#endif
