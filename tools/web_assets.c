/*
 * tools/web_assets.c - the history browser's page, script and style
 * (tools/web/), embedded in the binary so that `skald web` is one file
 * (SKALD_HTTP_EMBED; the Makefile rebuilds this object when one of them
 * changes).
 */
#include "skald/http.h"

__asm__(SKALD_HTTP_EMBED(tool_web_index_html, "tools/web/index.html")
                SKALD_HTTP_EMBED(tool_web_app_js, "tools/web/app.js")
                        SKALD_HTTP_EMBED(tool_web_app_css, "tools/web/app.css"));
