/*
 * examples/tictactoe/web_assets.c - the web page (examples/tictactoe/web/),
 * embedded in the binary so that every node serves it (SKALD_HTTP_EMBED;
 * the Makefile rebuilds this object when one of them changes).
 */
#include <skald/http.h>

__asm__(SKALD_HTTP_EMBED(ttt_web_index_html, "examples/tictactoe/web/index.html")
                SKALD_HTTP_EMBED(ttt_web_app_js, "examples/tictactoe/web/app.js")
                        SKALD_HTTP_EMBED(ttt_web_style_css, "examples/tictactoe/web/style.css"));
