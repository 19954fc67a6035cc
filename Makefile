# crm — build, test and benchmark.
#   make            build/crm and build/libcrm.a
#   make run        install missing packages, build, init a demo data dir, serve it
#   make test       the whole suite; ends with one line "N passed, N failed"
#   make asan       the whole suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make bench      benchmarks (bench/README.md)
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

.PHONY: all deps run test check asan bench clean format
all: $(BUILD)/crm $(BUILD)/libcrm.a

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

check: all $(UNIT_BIN)
	@BUILD=$(BUILD) bash tests/run.sh

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" check

bench: deps
	@bash bench/run.sh

format:
	clang-format -i kernel/*.c kernel/*.h sdk/*.h tests/unit/*.c tests/unit/*.h

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
