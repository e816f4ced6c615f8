/*
 * base/error.c - messages and names generated from SKALD_ERRNO_MAP.
 */
#include <uv.h>

#include "skald/error.h"

static _Thread_local char msgbuf[80], namebuf[48];

const char *skald_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
#define XX(name, value, msg)                                                                       \
	case value:                                                                                \
		return msg;
		SKALD_ERRNO_MAP(XX)
#undef XX
	default:
		/* uv_strerror allocates for codes it does not know: use the
		 * reentrant form into a buffer of this thread. */
		uv_strerror_r(err, msgbuf, sizeof msgbuf);
		return msgbuf;
	}
}

const char *skald_err_name(int err)
{
	switch (err) {
	case 0:
		return "SKALD_OK";
#define XX(name, value, msg)                                                                       \
	case value:                                                                                \
		return "SKALD_" #name;
		SKALD_ERRNO_MAP(XX)
#undef XX
	default:
		uv_err_name_r(err, namebuf, sizeof namebuf);
		return namebuf;
	}
}
