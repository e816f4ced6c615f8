# Skald - plain Makefile.
#
#   make                 the libraries (libskald, libskald-postgres, libskald-mongo,
#                        each .a and .so), tools, examples, benchmarks
#   make check           dependencies, build, every test suite
#   make demo            the runnable example
#   make bench           benchmarks side by side with CAF and Erlang/OTP
#   make install PREFIX=/usr/local
#   make SANITIZE=address,undefined | SANITIZE=thread
#   make tsan            the runtime, entity, store and remote suites under TSan
#   make soak [SOAK_MINUTES=30]  nodes killed and restarted under load, then checked
#   make fuzz            libFuzzer targets (tests/fuzz), FUZZ_SECONDS each
#
# Sources are found by wildcard: a new .c file in a layer folder is part of
# the library; a new folder under tests/ is a new test suite.
#
# Three libraries: libskald (runtime, journal, memory store) needs libuv,
# jansson, libssl and libcrypto; each database store is a library of its own that
# registers itself when it is linked in (docs/PACKAGING.md), so a program that
# uses only memory:// links without libpq and libmongoc.

PREFIX  ?= /usr/local
VERSION := 0.1.0
BUILD   ?= build
CC      ?= cc
CORE_PKGS     := libuv jansson libssl libcrypto
postgres_PKGS := libpq
mongo_PKGS    := libmongoc-1.0
STORES        := postgres mongo
PKGS    := $(CORE_PKGS) $(foreach s,$(STORES),$($(s)_PKGS))

WARN    := -Wall -Wextra -Wstrict-prototypes -Wmissing-prototypes -Wshadow \
           -Wno-unused-parameter
ifeq ($(CI),true)
WARN    += -Werror
endif
OPT     ?= -O2 -g
CFLAGS  ?=
CFLAGS  += -std=c11 -D_GNU_SOURCE -fPIC $(OPT) $(WARN) -Iinclude -I. -MMD -MP \
           $(shell pkg-config --cflags $(PKGS))
CORE_LIBS := $(shell pkg-config --libs $(CORE_PKGS)) -lpthread -lm -ldl
LDLIBS  := $(shell pkg-config --libs $(PKGS)) -lpthread -lm -ldl

# Shared libraries must name every library they use (-z defs), so that each
# one is complete on its own. Off with a sanitizer, whose runtime may leave
# symbols for the executable to define (clang's static runtime does).
SHARED_DEFS := -Wl,-z,defs

comma   := ,
ifneq ($(SANITIZE),)
SHARED_DEFS :=
CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
LDFLAGS += -fsanitize=$(SANITIZE)
BUILD   := build-$(subst $(comma),-,$(SANITIZE))
endif

# The core library's folders (with the memory store and the fault-injecting
# faulty:// store); stores/NAME for each of STORES is a library of its own.
LIB_DIRS := base actors journal sharding stores/memory stores/faulty projections
LIB_SRC  := $(shell find $(LIB_DIRS) -name '*.c' 2>/dev/null | sort)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
store_obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(sort $(wildcard stores/$(1)/*.c)))

LIBS := $(foreach l,skald $(STORES:%=skald-%),$(BUILD)/lib$(l).a $(BUILD)/lib$(l).so)

# How programs of this tree link every store statically: -u names each
# store's registration constructor, so that the linker keeps the archive
# member that holds it although nothing calls it (docs/PACKAGING.md).
STORE_LINK := $(foreach s,$(STORES),-Wl,-u,skald__store_$(s)_register) \
              $(STORES:%=$(BUILD)/libskald-%.a)
ALL_LINK   := $(STORE_LINK) $(BUILD)/libskald.a $(LDLIBS)
ALL_ARCHIVES := $(STORES:%=$(BUILD)/libskald-%.a) $(BUILD)/libskald.a

# Folders under tests/ that are not suites: fuzz targets, the packaging
# check, the shared test header, the link check, the soak's programs.
TEST_SUITES := $(sort $(notdir $(shell find tests -mindepth 1 -maxdepth 1 -type d \
                 ! -name fuzz ! -name packaging ! -name include ! -name link ! -name soak)))
TEST_BINS   := $(TEST_SUITES:%=$(BUILD)/tests/%)

BENCH_SRC  := $(wildcard bench/*.c)
BENCH_BINS := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

EXAMPLE_DIRS := $(sort $(dir $(wildcard examples/*/main.c)))
EXAMPLE_BINS := $(foreach d,$(EXAMPLE_DIRS),$(BUILD)/examples/$(notdir $(d:%/=%)))

TOOL_SRC := $(wildcard tools/*.c)
TOOL_BIN := $(if $(TOOL_SRC),$(BUILD)/skald)

.PHONY: all lib check test demo bench install clean deps format fuzz tsan soak
all: lib $(TOOL_BIN) $(EXAMPLE_BINS) $(BUILD)/examples/tictactoe_game.so $(BENCH_BINS)
lib: $(LIBS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libskald.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libskald.so: $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) $(SHARED_DEFS) -o $@ $^ $(CORE_LIBS)

# A store library: the objects of stores/NAME, needing libskald and the
# store's client library.
define store_lib
$(BUILD)/libskald-$(1).a: $(call store_obj,$(1))
	rm -f $$@ && ar rcs $$@ $$^

$(BUILD)/libskald-$(1).so: $(call store_obj,$(1)) $(BUILD)/libskald.so
	$(CC) -shared $(LDFLAGS) $(SHARED_DEFS) -o $$@ $(call store_obj,$(1)) -L$(BUILD) -lskald \
		$(shell pkg-config --libs $($(1)_PKGS)) $(CORE_LIBS)
endef
$(foreach s,$(STORES),$(eval $(call store_lib,$(s))))

# A test suite is every .c file of its folder, linked into one Criterion
# binary, with the files of another folder it names in TEST_USES_suite.
# The journal front's suite (registry, upcasters: once, on the memory store)
# uses the conformance suite's harness.
TEST_USES_journal := tests/stores/harness.c
# The operations suite scrapes /metrics through libskald-http with the HTTP
# suite's client.
TEST_USES_ops := tests/http/client.c
TEST_LIBS_ops := $(BUILD)/libskald-http.a -lhttp_parser
# (A pattern rule would read the % of a $(filter %.a,...) among its
# prerequisites as its stem: the library is named here instead.)
$(BUILD)/tests/ops: $(BUILD)/libskald-http.a
# The tool suite also runs the tic-tac-toe cluster: it talks HTTP with the
# HTTP suite's client and folds games with the example's own game type.
TEST_USES_tool := tests/http/client.c examples/tictactoe/game.c examples/tictactoe/protocol.c
TEST_LIBS_tool := -lhttp_parser
# The sharding suite reads journals back with the entity suite's helpers
# (and its failing store), and runs members as processes with the cluster
# suite's.
TEST_USES_sharding := tests/entity/helpers.c tests/entity/acc.c tests/entity/probe.c \
                      tests/cluster/proc.c tests/postgres/helpers.c
# Under ThreadSanitizer every suite takes tests/include/tsan_arena.c, which
# keeps Criterion's arena out of the sanitizer's memory (see that file).
TEST_ALL := $(if $(findstring thread,$(SANITIZE)),tests/include/tsan_arena.c)
.SECONDEXPANSION:
$(BUILD)/tests/%: $$(addprefix $(BUILD)/obj/,$$(subst .c,.o,$$(wildcard tests/$$*/*.c) $$(TEST_USES_$$*) $(TEST_ALL))) $(ALL_ARCHIVES)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(TEST_LIBS_$*) $(ALL_LINK) -lcriterion

# An actor-only program links against the static library with libuv alone:
# the runtime reaches the network and the journal only through what their
# layers install. Built and run by `make check` and `make test`.
LINK_CHECK := $(BUILD)/tests/link/actors_only
$(LINK_CHECK): $(BUILD)/obj/tests/link/actors_only.o $(BUILD)/libskald.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libskald.a -luv -lpthread -lm
	$@ || { rm -f $@; exit 1; }

# A benchmark that needs more than Skald names it in BENCH_LIBS_name.
BENCH_LIBS_tictactoe := -lhttp_parser
$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(ALL_ARCHIVES)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(ALL_LINK) $(BENCH_LIBS_$*)

# An example that serves HTTP names the HTTP module in EXAMPLE_LIBS_name
# (and depends on it).
EXAMPLE_LIBS_tictactoe := $(BUILD)/libskald-http.a -lhttp_parser
$(BUILD)/examples/tictactoe: $(BUILD)/libskald-http.a
$(BUILD)/examples/%: $$(addprefix $(BUILD)/obj/,$$(subst .c,.o,$$(wildcard examples/$$*/*.c))) $(ALL_ARCHIVES)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(EXAMPLE_LIBS_$*) $(ALL_LINK)

# The tic-tac-toe page is embedded with .incbin, which -MMD cannot see.
$(BUILD)/obj/examples/tictactoe/web_assets.o: $(wildcard examples/tictactoe/web/*)

# The whole core library, exported (-rdynamic): `skald replay` dlopen()s
# entity types, which call into libskald from code the tool itself never uses.
# `skald web` serves with the HTTP module (defined further down).
$(BUILD)/skald: $(TOOL_SRC:%.c=$(BUILD)/obj/%.o) $(ALL_ARCHIVES) $(BUILD)/libskald-http.a
	$(CC) $(LDFLAGS) -rdynamic -o $@ $(filter %.o,$^) $(STORE_LINK) \
		-Wl,--whole-archive $(BUILD)/libskald.a -Wl,--no-whole-archive \
		$(BUILD)/libskald-http.a $(LDLIBS) -lhttp_parser

# The history browser's page is embedded with .incbin, which -MMD cannot see.
$(BUILD)/obj/tools/web_assets.o: $(wildcard tools/web/*)

# The tic-tac-toe game type as a shared object, for `skald replay --entity
# $(BUILD)/examples/tictactoe_game.so:tictactoe_game`. Its libskald symbols
# are left undefined: the tool that loads it provides them.
$(BUILD)/examples/tictactoe_game.so: $(BUILD)/obj/examples/tictactoe/game.o \
		$(BUILD)/obj/examples/tictactoe/protocol.o
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS) -o $@ $^

# ---------------------------------------------------------------------------
# The HTTP module: a library of its own (libskald-http.a/.so from http/*.c),
# linked only into what serves HTTP, so that no other program links
# libhttp-parser. It does not use libskald. Its test suite and benchmark are
# linked against it instead of libskald.
HTTP_SRC    := $(wildcard http/*.c)
HTTP_OBJ    := $(HTTP_SRC:%.c=$(BUILD)/obj/%.o)
HTTP_LDLIBS := $(shell pkg-config --libs libuv jansson) -lhttp_parser -lpthread

.PHONY: http-lib
all: http-lib
http-lib: $(BUILD)/libskald-http.a $(BUILD)/libskald-http.so

$(BUILD)/libskald-http.a: $(HTTP_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libskald-http.so: $(HTTP_OBJ)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(HTTP_LDLIBS)

$(BUILD)/tests/http: $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tests/http/*.c)) \
		$(BUILD)/libskald-http.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(BUILD)/libskald-http.a $(HTTP_LDLIBS) -lcriterion

$(BUILD)/bench/http: $(BUILD)/obj/bench/http.o $(BUILD)/libskald-http.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libskald-http.a $(HTTP_LDLIBS)
# ---------------------------------------------------------------------------

deps:
	@bash scripts/deps.sh

# Every suite runs even when an earlier one failed; the target fails if any did.
# check also installs into a temporary prefix and builds programs against it
# with pkg-config, as a user would (scripts/packaging.sh).
check: deps
	@$(MAKE) --no-print-directory all $(TEST_BINS)
	@SANITIZE=$(SANITIZE) bash scripts/check.sh $(BUILD) $(TEST_SUITES) packaging

# The suites run the tool and the examples as a user would: build them too.
test: all $(TEST_BINS) $(LINK_CHECK)
	@bash scripts/check.sh $(BUILD) $(TEST_SUITES)

demo: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/demo.sh $(BUILD)

bench:
	@bash scripts/deps.sh --bench
	@$(MAKE) --no-print-directory OPT="-O2 -g -DNDEBUG" all
	@bash scripts/bench.sh $(BUILD)

# Headers, the libraries (static and shared), a .pc file for each, and
# the tool. The store libraries' .pc files come from one template: only the
# store's name and its client library differ.
install: lib http-lib $(TOOL_BIN)
	install -d $(DESTDIR)$(PREFIX)/include/skald $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/skald/*.h $(DESTDIR)$(PREFIX)/include/skald/
	install -m 644 $(filter %.a,$(LIBS)) $(BUILD)/libskald-http.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(filter %.so,$(LIBS)) $(BUILD)/libskald-http.so $(DESTDIR)$(PREFIX)/lib/
	$(foreach p,skald skald-http,sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' \
		$(p).pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/$(p).pc &&) true
	$(foreach s,$(STORES),sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' \
		-e 's|@STORE@|$(s)|g' -e 's|@PKGS@|$($(s)_PKGS)|' skald-store.pc.in \
		> $(DESTDIR)$(PREFIX)/lib/pkgconfig/skald-$(s).pc &&) true
	if [ -n "$(TOOL_BIN)" ]; then install -d $(DESTDIR)$(PREFIX)/bin && \
		install -m 755 $(TOOL_BIN) $(DESTDIR)$(PREFIX)/bin/; fi

# The soak (scripts/soak.sh): 3 node processes on a throwaway PostgreSQL
# under steady load, nodes SIGKILLed and restarted, the database restarted
# once, then every acknowledged event checked in the journal with `skald`.
SOAK_MINUTES ?= 30
SOAK_BINS := $(BUILD)/soak/node $(BUILD)/soak/check
$(BUILD)/soak/%: $(BUILD)/obj/tests/soak/%.o $(ALL_ARCHIVES)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(ALL_LINK)
soak: deps
	@$(MAKE) --no-print-directory all $(SOAK_BINS)
	@bash scripts/soak.sh $(BUILD) $(SOAK_MINUTES)

# The runtime, entity, store and remote suites under ThreadSanitizer, on the
# memory store (scripts/tsan.sh collects the reports of every process and
# fails on any).
TSAN_SUITES := unit entity stores remote
tsan:
	@$(MAKE) --no-print-directory SANITIZE=thread $(TSAN_SUITES:%=build-thread/tests/%)
	@bash scripts/tsan.sh build-thread

# libFuzzer targets (tests/fuzz/*.c) against instrumented libraries, each
# run for FUZZ_SECONDS from the seeds in tests/fuzz/corpus/TARGET; what they
# find is kept in build-fuzz/corpus/. FUZZ_TARGETS picks some of them.
# fuzz_lines also takes the tool's input code (tools/common.c), fuzz_http
# the HTTP module.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= $(basename $(notdir $(wildcard tests/fuzz/*.c)))
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer,address,undefined -Iinclude -I. \
               $(shell pkg-config --cflags $(PKGS))
FUZZ_EXTRA_fuzz_lines := tools/common.c
FUZZ_EXTRA_fuzz_http  := build-fuzz/libskald-http.a -lhttp_parser
fuzz:
	@bash scripts/deps.sh --fuzz
	@$(MAKE) --no-print-directory CC=clang BUILD=build-fuzz \
		OPT="-O1 -g -fsanitize=fuzzer-no-link,address,undefined" \
		$(ALL_ARCHIVES:$(BUILD)/%=build-fuzz/%) build-fuzz/libskald-http.a
	@mkdir -p build-fuzz/fuzz
	@for t in $(FUZZ_TARGETS); do \
		clang $(FUZZ_CFLAGS) tests/fuzz/$$t.c $$(case $$t in \
			fuzz_lines) echo "$(FUZZ_EXTRA_fuzz_lines)";; \
			fuzz_http) echo "$(FUZZ_EXTRA_fuzz_http)";; esac) \
			$(STORE_LINK:$(BUILD)/%=build-fuzz/%) build-fuzz/libskald.a $(LDLIBS) \
			-o build-fuzz/fuzz/$$t || exit 1; \
	done
	@bash scripts/fuzz.sh build-fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

format:
	clang-format -i $$(find include base actors journal stores projections http tools examples tests bench \
		-name '*.[ch]' 2>/dev/null)

clean:
	rm -rf build build-*

# Objects of tests and examples are intermediate files to make: keep them, so
# that a second build does not redo them.
.SECONDARY:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
