# plugin.mk — build a crm plugin in any directory (PostgreSQL's PGXS).
#
# A plugin's Makefile:
#
#     PLUGIN  := hotel                      # the plugin's name: builds hotel.so
#     SOURCES := hotel.c rooms.c            # its C files
#     include $(CRM_SDK)/plugin.mk
#
# and `make CRM_SDK=/path/to/crm/sdk` builds $(OUT)/hotel.so (OUT defaults to
# the plugin's directory). CRM_SDK may be left out when the include names the
# file directly: plugin.mk finds crm.h next to itself.
#
# What it enforces, so a plugin cannot get it wrong:
#   - C11, -Wall -Wextra -Werror, position-independent, hidden visibility: the
#     one symbol exported is the descriptor function marked CRM_PLUGIN_EXPORT;
#   - -Wl,-z,defs: every symbol must resolve at link time against libc and
#     Jansson (and PLUGIN_LIBS). A plugin calling kernel functions directly
#     instead of through the host API fails to build, not at run time;
#   - after linking, `lint`: exactly one exported symbol (crm_plugin_v1), and
#     no constructors or destructors in the sources — dlopen() runs those
#     before crm can check the descriptor (SECURITY P7).
#
# Variables a plugin may set:
#   PLUGIN_CFLAGS   extra compiler flags (-DFOO, -Iinclude)
#   PLUGIN_LIBS     extra libraries (-lm); each must be installed on the server
#   OUT             where the .so goes (default .)
#   OPT             optimisation (default -O2 -g)
#   PLUGIN_LDFLAGS  extra linker flags
#   SAN             sanitizer flags; must match the crm binary (crm's ASan build passes them)
#
# Targets: all (build + lint, the default), lint, clean, and build (the .so
# without the lint: crm's own tests use it for deliberately broken plugins).

ifndef PLUGIN
$(error plugin.mk: set PLUGIN := <name> before including plugin.mk)
endif
ifndef SOURCES
$(error plugin.mk: set SOURCES := <files.c> before including plugin.mk)
endif

CRM_SDK ?= $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
OUT     ?= .
OPT     ?= -O2 -g
CC      ?= cc
SO      := $(OUT)/$(PLUGIN).so

CRM_PLUGIN_CFLAGS := -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden \
    -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
    -I$(CRM_SDK) $(shell pkg-config --cflags jansson) $(OPT) $(SAN) $(PLUGIN_CFLAGS)
CRM_PLUGIN_LDFLAGS := -shared -Wl,-z,defs -Wl,-z,now $(SAN) $(PLUGIN_LDFLAGS)
CRM_PLUGIN_LIBS    := $(PLUGIN_LIBS) $(shell pkg-config --libs jansson)

.PHONY: all build lint clean
all: $(SO) lint
build: $(SO)

$(SO): $(SOURCES) $(wildcard *.h) $(CRM_SDK)/crm.h $(CRM_SDK)/crm_util.h
	@mkdir -p $(OUT)
	$(CC) $(CRM_PLUGIN_CFLAGS) $(CRM_PLUGIN_LDFLAGS) -o $@ $(SOURCES) $(CRM_PLUGIN_LIBS)

# Exactly one exported symbol, and no code that dlopen() would run by itself.
lint: $(SO)
	@exported="$$(nm -D --defined-only $(SO) | awk '{print $$3}' | grep -v '^_\(_bss_start\|edata\|end\|init\|fini\)$$' | tr '\n' ' ')"; \
	if [ "$$exported" != "crm_plugin_v1 " ]; then \
	  echo "plugin.mk: $(SO) must export exactly one symbol, crm_plugin_v1; it exports: $$exported" >&2; \
	  echo "  (build with plugin.mk's flags, keep other functions static, mark the descriptor function CRM_PLUGIN_EXPORT)" >&2; \
	  rm -f $(SO); exit 1; fi
	@if grep -nE '__attribute__[[:space:]]*\(\([^)]*(constructor|destructor)|section[[:space:]]*\([[:space:]]*"\.(init|fini|preinit)_array' $(SOURCES); then \
	  echo "plugin.mk: constructors and destructors are not allowed in a plugin: dlopen runs them before crm checks the descriptor; do the work in init" >&2; \
	  rm -f $(SO); exit 1; fi

clean:
	rm -f $(SO)
