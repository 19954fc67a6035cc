# crm — build, test and benchmark.
#   make            build/crm and build/libcrm.a
#   make run        install missing packages, build, init a demo data dir, serve it
#   make test       the whole suite; ends with one line "N passed, N failed"
#   make asan       the whole suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make bench      benchmarks (bench/README.md)
#   make test-crash  SIGKILL the server 200 times under a write load (CRASH_KILLS=N), disk full
#   make test-hostile  slowloris, floods, oversized requests, minutes of mixed load
#   make fuzz       libFuzzer targets under ASan + UBSan, FUZZ_SECONDS each (needs clang)
#   make deps       install the Debian packages the build needs (as root)

BUILD   ?= build
CC      ?= cc
PKGS    := lua5.4 sqlite3 jansson libsodium libmicrohttpd libgit2 libcurl
OPT     ?= -O2
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-unused-parameter
CFLAGS  += -std=c11 -D_GNU_SOURCE -g $(OPT) $(WARN) -pthread -fPIC \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(SAN)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -ldl -lm -pthread
LDFLAGS += -rdynamic $(SAN)

KERNEL_SRC := $(filter-out kernel/main.c,$(wildcard kernel/*.c))
KERNEL_OBJ := $(KERNEL_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# Plugins: every plugins/<name>/ with a Makefile (sdk/plugin.mk) builds to
# $(BUILD)/plugins/<name>.so, where `crm` looks by default; the loader tests'
# plugins (tests/plugins/<name>/, some broken on purpose) to $(BUILD)/test-plugins.
# They get the same OPT and SAN as the kernel: an ASan crm loads ASan plugins.
SDK_DIR          := $(CURDIR)/sdk
PLUGIN_DIRS      := $(patsubst %/Makefile,%,$(wildcard plugins/*/Makefile))
PLUGIN_SO        := $(PLUGIN_DIRS:plugins/%=$(BUILD)/plugins/%.so)
TEST_PLUGIN_DIRS := $(patsubst %/Makefile,%,$(wildcard tests/plugins/*/Makefile))
TEST_PLUGIN_SO   := $(TEST_PLUGIN_DIRS:tests/plugins/%=$(BUILD)/test-plugins/%.so)
PLUGIN_MAKE       = $(MAKE) --no-print-directory -s CRM_SDK=$(SDK_DIR) OPT="$(OPT) -g" SAN="$(SAN)"
# Fuzz targets (tests/fuzz); the conf and rules ones once their subsystems exist.
FUZZ_TARGETS := fuzz_json_record fuzz_query fuzz_csv $(if $(wildcard kernel/conf.c),fuzz_conf) \
                $(if $(wildcard kernel/rules.c),fuzz_rules)
FUZZ_REPLAY  := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/%)

.PHONY: all deps run test check asan bench clean format test-crash test-hostile fuzz fuzz-build
all: $(BUILD)/crm $(BUILD)/libcrm.a plugins

.PHONY: plugins test-plugins FORCE
plugins: $(PLUGIN_SO)
test-plugins: $(TEST_PLUGIN_SO)

# The plugin's own make decides whether it is up to date (sources, crm.h).
$(BUILD)/plugins/%.so: FORCE
	+@$(PLUGIN_MAKE) -C plugins/$* OUT=$(abspath $(BUILD)/plugins)

# `build`: without plugin.mk's lint, which some of these fail on purpose.
$(BUILD)/test-plugins/%.so: FORCE
	+@$(PLUGIN_MAKE) -C tests/plugins/$* OUT=$(abspath $(BUILD)/test-plugins) build

# The loader tests build the SDK template out of the tree with the same flags.
$(BUILD)/tests/unit/test_plugin.o: CFLAGS += -DCRM_TEST_ROOT='"$(CURDIR)"' \
    -DCRM_TEST_BUILD='"$(abspath $(BUILD))"' -DCRM_TEST_OPT='"$(OPT)"' -DCRM_TEST_SAN='"$(SAN)"'

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libcrm.a: $(KERNEL_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/crm: $(BUILD)/kernel/main.o $(BUILD)/libcrm.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/libcrm.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

deps:
	@bash .ci/deps

run: deps
	$(MAKE) all
	@bash .ci/demo

# `test` installs what is missing first (pkg-config flags are read when make
# starts, so the build itself runs in a second make).
test: deps
	@$(MAKE) --no-print-directory check

check: all $(UNIT_BIN) $(FUZZ_REPLAY) test-plugins
	@BUILD=$(BUILD) bash tests/run.sh

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" check

bench: deps
	@bash bench/run.sh

# ---- Reliability (tests/crash, tests/hostile, tests/fuzz) ----
# `make test` runs short versions of each; these are the long ones.
CRASH_KILLS ?= 200
test-crash: all
	@BUILD=$(BUILD) python3 tests/crash/crash.py --kills $(CRASH_KILLS)

HOSTILE_SECONDS ?= 180
test-hostile: all
	@BUILD=$(BUILD) python3 tests/hostile/hostile.py --long --seconds $(HOSTILE_SECONDS)

# Fuzz targets: each is linked twice. $(BUILD)/fuzz/<target> with the build's
# own compiler and tests/fuzz/replay.c replays the seed corpora and the
# regression inputs in `make test` (no clang needed); build-fuzz/libfuzzer/
# <target> is the libFuzzer binary `make fuzz` runs.
FUZZ_SECONDS ?= 60
FUZZ_BUILD   ?= build-fuzz

$(BUILD)/fuzz/%: $(BUILD)/tests/fuzz/%.o $(BUILD)/tests/fuzz/replay.o $(BUILD)/libcrm.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libfuzzer/%: $(BUILD)/tests/fuzz/%.o $(BUILD)/libcrm.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz-build: $(FUZZ_TARGETS:%=$(BUILD)/libfuzzer/%)
.SECONDARY: $(FUZZ_TARGETS:%=$(BUILD)/tests/fuzz/%.o) $(BUILD)/tests/fuzz/replay.o
# Unit test objects are kept too: make's removal of intermediates printed an "rm" line
# after the suite's summary, which must be the last line of `make test`.
.SECONDARY: $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%.o)

fuzz:
	@command -v clang >/dev/null || { echo "make fuzz needs clang and libFuzzer:" \
	  "apt-get install clang libclang-rt-14-dev"; exit 1; }
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=clang OPT=-O1 \
	  SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  fuzz-build
	@FUZZ_BUILD=$(FUZZ_BUILD) bash tests/fuzz/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

format:
	clang-format -i kernel/*.c kernel/*.h sdk/*.h tests/unit/*.c tests/unit/*.h

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
