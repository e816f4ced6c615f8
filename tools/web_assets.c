/*
 * tools/web_assets.c - the history browser's page, script and style
 * (tools/web/), embedded in the binary so that `skald web` is one file.
 *
 * The assembler's .incbin copies each file as it is; the Makefile rebuilds
 * this object when one of them changes. Each gets a symbol at its start and
 * one at its end (followed by a NUL that the length does not count).
 */

#define TOOL_WEB_ASSET(sym, file)                                                                  \
	".pushsection .rodata\n"                                                                   \
	".global " #sym "\n"                                                                       \
	".global " #sym "_end\n"                                                                   \
	".balign 16\n" #sym ":\n"                                                                  \
	".incbin \"" file "\"\n" #sym "_end:\n"                                                    \
	".byte 0\n"                                                                                \
	".popsection\n"

__asm__(TOOL_WEB_ASSET(tool_web_index_html, "tools/web/index.html")
                TOOL_WEB_ASSET(tool_web_app_js, "tools/web/app.js")
                        TOOL_WEB_ASSET(tool_web_app_css, "tools/web/app.css"));
