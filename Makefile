# Skald - plain Makefile.
#
#   make                 libskald.a, libskald.so, tools, examples, benchmarks
#   make check           dependencies, build, every test suite
#   make demo            the runnable example
#   make bench           benchmarks side by side with CAF and Erlang/OTP
#   make install PREFIX=/usr/local
#   make SANITIZE=address,undefined | SANITIZE=thread
#   make fuzz            libFuzzer targets (tests/fuzz), FUZZ_SECONDS each
#
# Sources are found by wildcard: a new .c file in a layer folder is part of
# the library; a new folder under tests/ is a new test suite.

PREFIX  ?= /usr/local
BUILD   ?= build
CC      ?= cc
PKGS    := libuv jansson libpq libmongoc-1.0 libcrypto

WARN    := -Wall -Wextra -Wstrict-prototypes -Wmissing-prototypes -Wshadow \
           -Wno-unused-parameter
ifeq ($(CI),true)
WARN    += -Werror
endif
OPT     ?= -O2 -g
CFLAGS  ?=
CFLAGS  += -std=c11 -D_GNU_SOURCE -fPIC $(OPT) $(WARN) -Iinclude -I. -MMD -MP \
           $(shell pkg-config --cflags $(PKGS))
LDLIBS  := $(shell pkg-config --libs $(PKGS)) -lpthread -lm -ldl

comma   := ,
ifneq ($(SANITIZE),)
CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
LDFLAGS += -fsanitize=$(SANITIZE)
BUILD   := build-$(subst $(comma),-,$(SANITIZE))
endif

LIB_DIRS := base actors journal stores projections
LIB_SRC  := $(shell find $(LIB_DIRS) -name '*.c' 2>/dev/null | sort)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)

# Folders under tests/ that are not suites: fuzz targets, the shared test
# header, the link check.
TEST_SUITES := $(sort $(notdir $(shell find tests -mindepth 1 -maxdepth 1 -type d \
                 ! -name fuzz ! -name include ! -name link)))
TEST_BINS   := $(TEST_SUITES:%=$(BUILD)/tests/%)

BENCH_SRC  := $(wildcard bench/*.c)
BENCH_BINS := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

EXAMPLE_DIRS := $(sort $(dir $(wildcard examples/*/main.c)))
EXAMPLE_BINS := $(foreach d,$(EXAMPLE_DIRS),$(BUILD)/examples/$(notdir $(d:%/=%)))

TOOL_SRC := $(wildcard tools/*.c)
TOOL_BIN := $(if $(TOOL_SRC),$(BUILD)/skald)

.PHONY: all lib check test demo bench install clean deps format fuzz
all: lib $(TOOL_BIN) $(EXAMPLE_BINS) $(BUILD)/examples/tictactoe_game.so $(BENCH_BINS)
lib: $(BUILD)/libskald.a $(BUILD)/libskald.so

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libskald.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libskald.so: $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(LDLIBS)

# A test suite is every .c file of its folder, linked into one Criterion
# binary.
.SECONDEXPANSION:
$(BUILD)/tests/%: $$(addprefix $(BUILD)/obj/,$$(subst .c,.o,$$(wildcard tests/$$*/*.c))) $(BUILD)/libskald.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(BUILD)/libskald.a $(LDLIBS) -lcriterion

# An actor-only program links against the static library with libuv alone:
# the runtime reaches the network and the journal only through what their
# layers install. Built and run by `make check` and `make test`.
LINK_CHECK := $(BUILD)/tests/link/actors_only
$(LINK_CHECK): $(BUILD)/obj/tests/link/actors_only.o $(BUILD)/libskald.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libskald.a -luv -lpthread -lm
	$@ || { rm -f $@; exit 1; }

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(BUILD)/libskald.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libskald.a $(LDLIBS)

$(BUILD)/examples/%: $$(addprefix $(BUILD)/obj/,$$(subst .c,.o,$$(wildcard examples/$$*/*.c))) $(BUILD)/libskald.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(BUILD)/libskald.a $(LDLIBS)

# The whole library, exported (-rdynamic): `skald replay` dlopen()s entity
# types, which call into libskald from code the tool itself never uses.
$(BUILD)/skald: $(TOOL_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/libskald.a
	$(CC) $(LDFLAGS) -rdynamic -o $@ $(filter %.o,$^) \
		-Wl,--whole-archive $(BUILD)/libskald.a -Wl,--no-whole-archive $(LDLIBS)

# The tic-tac-toe game type as a shared object, for `skald replay --entity
# $(BUILD)/examples/tictactoe_game.so:tictactoe_game`. Its libskald symbols
# are left undefined: the tool that loads it provides them.
$(BUILD)/examples/tictactoe_game.so: $(BUILD)/obj/examples/tictactoe/game.o \
		$(BUILD)/obj/examples/tictactoe/protocol.o
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS) -o $@ $^

deps:
	@bash scripts/deps.sh

# Every suite runs even when an earlier one failed; the target fails if any did.
check: deps
	@$(MAKE) --no-print-directory all $(TEST_BINS) $(LINK_CHECK)
	@bash scripts/check.sh $(BUILD) $(TEST_SUITES)

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

install: lib
	install -d $(DESTDIR)$(PREFIX)/include/skald $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/skald/*.h $(DESTDIR)$(PREFIX)/include/skald/
	install -m 644 $(BUILD)/libskald.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libskald.so $(DESTDIR)$(PREFIX)/lib/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@PKGS@|$(PKGS)|' skald.pc.in \
		> $(DESTDIR)$(PREFIX)/lib/pkgconfig/skald.pc
	if [ -n "$(TOOL_BIN)" ]; then install -d $(DESTDIR)$(PREFIX)/bin && \
		install -m 755 $(TOOL_BIN) $(DESTDIR)$(PREFIX)/bin/; fi

# libFuzzer targets (tests/fuzz/*.c) against an instrumented library, each
# run for FUZZ_SECONDS; corpora are kept in build-fuzz/corpus/.
FUZZ_SECONDS ?= 60
fuzz:
	@bash scripts/deps.sh --fuzz
	@$(MAKE) --no-print-directory CC=clang BUILD=build-fuzz \
		OPT="-O1 -g -fsanitize=fuzzer-no-link,address,undefined" build-fuzz/libskald.a
	@mkdir -p build-fuzz/fuzz
	@for t in tests/fuzz/*.c; do \
		clang -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer,address,undefined -Iinclude -I. \
			$$t build-fuzz/libskald.a $(LDLIBS) -o build-fuzz/fuzz/$$(basename $$t .c) || exit 1; \
	done
	@bash scripts/fuzz.sh build-fuzz $(FUZZ_SECONDS)

format:
	clang-format -i $$(find include base actors journal stores projections tools examples tests bench \
		-name '*.[ch]' 2>/dev/null)

clean:
	rm -rf build build-*

# Objects of tests and examples are intermediate files to make: keep them, so
# that a second build does not redo them.
.SECONDARY:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
