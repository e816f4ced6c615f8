/*
 * skald/error.h - error codes shared by every layer.
 *
 * Every Skald function that can fail returns an int: 0 on success, a negative
 * code on failure. libuv's codes (UV_E*) pass through unchanged; Skald's own
 * codes live in SKALD_ERRNO_MAP below, the one table that generates the enum,
 * skald_strerror() and skald_err_name(), so names and messages cannot drift.
 */
#ifndef SKALD_ERROR_H
#define SKALD_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* XX(name, value, message). Values sit below -4096, clear of libuv's range. */
#define SKALD_ERRNO_MAP(XX)                                                                        \
	XX(EINVAL, -5001, "invalid argument")                                                      \
	XX(ENOMEM, -5002, "out of memory")                                                         \
	XX(ENOTYPE, -5003, "message type is not registered")                                       \
	XX(ETYPEEXISTS, -5004, "a different message type is already registered under that name")   \
	XX(ENOACTOR, -5005, "no such actor (stopped, or a stale reference)")                       \
	XX(ETIMEDOUT, -5006, "timed out")                                                          \
	XX(ESTOPPING, -5007, "the system is stopping")                                             \
	XX(ECANCELED, -5008, "canceled")                                                           \
	XX(ERESTARTLIMIT, -5009, "restart limit reached")                                          \
	XX(ECHILDFAILED, -5010, "a child failed and its failure was escalated")                    \
	XX(ETOOMANY, -5011, "a fixed capacity is exhausted")                                       \
	XX(ENOTOWNER, -5012, "called from a thread that does not own the actor")                   \
	XX(ESCHEME, -5013, "unknown journal URI scheme")                                           \
	XX(EURI, -5014, "malformed journal URI")                                                   \
	XX(ECONFLICT, -5015, "sequence number conflict: another writer appended first")            \
	XX(EREJECTED, -5016, "write rejected: nothing was stored")                                 \
	XX(EBACKEND, -5017, "journal backend error")                                               \
	XX(ENOTFOUND, -5018, "not found")                                                          \
	XX(EENCODE, -5019, "message or event could not be encoded")                                \
	XX(EDECODE, -5020, "message or event could not be decoded")                                \
	XX(ECLOSED, -5021, "the handle is closed")                                                 \
	XX(ESCHEMA, -5022,                                                                         \
	   "the store has no schema, or one older than this build: run `skald migrate`")           \
	XX(EEXISTS, -5023, "already exists")                                                       \
	XX(EBUSY, -5024, "busy: an operation of that kind is already in flight")                   \
	XX(EUNSUPPORTED, -5025, "not supported by this store")                                     \
	XX(EQUEUEFULL, -5026, "the outbound queue to that node is full")                           \
	XX(ENODEDOWN, -5027, "the node is down or unreachable")                                    \
	XX(EAUTH, -5028, "handshake refused: wrong cluster secret")                                \
	XX(ECLUSTER, -5029, "handshake refused: another cluster name")                             \
	XX(EVERSION, -5030, "handshake refused: unsupported protocol version")                     \
	XX(EPROTO, -5031, "protocol error: malformed, oversized or unexpected frame")              \
	XX(ENOCODEC, -5032, "the message type has no codec and cannot cross nodes")                \
	XX(EBUFFERFULL, -5033, "too many messages wait for entities that are moving or starting")  \
	XX(EADDR, -5040, "malformed node address: expected tcp://HOST:PORT")                       \
	XX(ENONET, -5041, "the network is not started: call skald_remote_start first")             \
	XX(ENAMETOOLONG, -5042,                                                                    \
	   "name too long: names, group keys and behaviour names are at most "                     \
	   "SKALD_NAME_MAX (255) bytes")                                                           \
	XX(EFULL, -5043,                                                                           \
	   "the cluster registry is full: raise skald_cluster_config_t.max_names or "              \
	   "max_group_entries")

typedef enum {
#define XX(name, value, msg) SKALD_##name = value,
	SKALD_ERRNO_MAP(XX)
#undef XX
	        SKALD_OK = 0
} skald_errno_t;

/* A static, human-readable message for err: Skald's codes, libuv's codes
 * (through uv_strerror) and 0. Never NULL; the string is borrowed. */
const char *skald_strerror(int err);

/* The symbolic name of err, e.g. "SKALD_ENOACTOR" or "ECONNREFUSED". Never
 * NULL; the string is borrowed. */
const char *skald_err_name(int err);

#ifdef __cplusplus
}
#endif
#endif /* SKALD_ERROR_H */
