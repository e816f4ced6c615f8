/*
 * actors/error.c - messages and names generated from SKALD_ERRNO_MAP.
 */
#include <uv.h>

#include "skald/error.h"

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
		return uv_strerror(err);
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
		return uv_err_name(err);
	}
}
