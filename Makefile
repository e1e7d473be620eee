# ferry — one non-recursive Makefile (DESIGN.md "Build, test, benchmark").
#   make            build/ferry and the compatibility symlinks
#   make run        build, then run ferry on examples/ferry.conf
#   make check      unit tests, sanitizer build of the unit tests, integration tests (as root)
#   make fuzz       libFuzzer targets (clang) in build/fuzz/
#   make bench      side-by-side benchmark (bench/run.sh)
#   make install    PREFIX=/usr/local DESTDIR=
VERSION   := 0.1.0
PREFIX    ?= /usr/local
DESTDIR   ?=
CC        ?= cc
B         := build

WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter -Wno-format-truncation
CFLAGS    ?= -O2 -g
CPPFLAGS  += -D_GNU_SOURCE -DFERRY_VERSION=\"$(VERSION)\" -Isrc
ALLCFLAGS := -std=c11 $(WARN) $(CFLAGS) -MMD -MP
LDLIBS    += -lsodium -lcrypto -lsnappy -lsystemd -lpthread -lm

# every module except the program's entry point; tests link against these
LIB_SRC   := $(filter-out src/cmd/main.c,$(wildcard src/*/*.c))
LIB_OBJ   := $(LIB_SRC:src/%.c=$(B)/obj/%.o)
SAN_OBJ   := $(LIB_SRC:src/%.c=$(B)/san/%.o)
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
SAN_BIN   := $(UNIT_SRC:tests/unit/%.c=$(B)/tests-san/%)
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN  := $(FUZZ_SRC:tests/fuzz/%.c=$(B)/fuzz/%)
TOOL_SRC  := $(wildcard tests/tools/*.c)
TOOL_BIN  := $(TOOL_SRC:tests/tools/%.c=$(B)/tools/%)
ALIASES   := tcpfwd udpfwd kcptcp-client kcptcp-server kcptun-client kcptun-server
# example socket + service units (socket activation), ExecStart= pointed at $(PREFIX)/bin/ferry
SYSTEMD_UNITS := $(wildcard contrib/systemd/*.socket contrib/systemd/*.service)
SYSTEMD_DIR   ?= $(PREFIX)/lib/systemd/system
SANFLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

.PHONY: all run check unit unit-san net fuzz bench bench-pkthere bench-kcp install uninstall clean deps deps-test
all: deps $(B)/ferry $(ALIASES:%=$(B)/%)

$(B)/ferry: $(B)/obj/cmd/main.o $(LIB_OBJ)
	$(CC) $(ALLCFLAGS) $(LDFLAGS) -o $@ $(filter %.c %.o,$^) $(LDLIBS)

$(ALIASES:%=$(B)/%): | $(B)/ferry
	ln -sf ferry $@

$(B)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALLCFLAGS) -c -o $@ $<

$(B)/san/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALLCFLAGS) $(SANFLAGS) -c -o $@ $<

# ferry itself with ASan+UBSan, for running the integration tests under sanitizers:
#   make build/ferry-san && FERRY=build/ferry-san tests/run.sh
$(B)/ferry-san: $(B)/san/cmd/main.o $(SAN_OBJ)
	$(CC) $(ALLCFLAGS) $(SANFLAGS) $(LDFLAGS) -o $@ $(filter %.c %.o,$^) $(LDLIBS)

$(B)/tests/%: tests/unit/%.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests/unit $(ALLCFLAGS) -o $@ $(filter %.c %.o,$^) $(LDLIBS)

$(B)/tests-san/%: tests/unit/%.c $(SAN_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests/unit $(ALLCFLAGS) $(SANFLAGS) -o $@ $(filter %.c %.o,$^) $(LDLIBS)

$(B)/tools/%: tests/tools/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALLCFLAGS) -o $@ $< $(LDLIBS)

# libFuzzer needs clang; the fuzz targets link the plain module sources with coverage
$(B)/fuzz/%: tests/fuzz/%.c $(LIB_SRC)
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -o $@ $(filter %.c %.o,$^) $(LDLIBS)

run: all
	$(B)/ferry -c examples/ferry.conf

unit: $(UNIT_BIN)
unit-san: $(SAN_BIN)

check: all deps-test $(UNIT_BIN) $(SAN_BIN) $(TOOL_BIN)
	tests/run.sh

fuzz: deps-fuzz $(FUZZ_BIN)
	tests/fuzz/run.sh

bench: all $(TOOL_BIN) deps-bench
	bench/run.sh
	bench/pkthere.sh
	bench/kcp.sh

# the single-client mode and the ICMP tunnel alone (also part of make bench)
bench-pkthere: all deps-bench
	bench/pkthere.sh

# TCP over KCP: plain TCP, ferry (secure, plain) and kcptun through the same impaired router
bench-kcp: all $(B)/tools/impair deps-bench
	bench/kcp.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 $(B)/ferry $(DESTDIR)$(PREFIX)/bin/ferry
	for a in $(ALIASES); do ln -sf ferry $(DESTDIR)$(PREFIX)/bin/$$a; done
	install -m 0644 docs/ferry.1 $(DESTDIR)$(PREFIX)/share/man/man1/ferry.1
	for a in $(ALIASES); do ln -sf ferry.1 $(DESTDIR)$(PREFIX)/share/man/man1/$$a.1; done
	install -d $(DESTDIR)$(SYSTEMD_DIR)
	for u in $(SYSTEMD_UNITS); do \
		sed 's|/usr/bin/ferry|$(PREFIX)/bin/ferry|g' $$u >$(DESTDIR)$(SYSTEMD_DIR)/$$(basename $$u) && \
		chmod 0644 $(DESTDIR)$(SYSTEMD_DIR)/$$(basename $$u) || exit 1; \
	done

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/ferry $(ALIASES:%=$(DESTDIR)$(PREFIX)/bin/%) $(DESTDIR)$(PREFIX)/share/man/man1/ferry.1 \
		$(ALIASES:%=$(DESTDIR)$(PREFIX)/share/man/man1/%.1) \
		$(SYSTEMD_UNITS:contrib/systemd/%=$(DESTDIR)$(SYSTEMD_DIR)/%)

clean:
	rm -rf $(B)

# Build and test dependencies come from Debian; when run as root, missing ones are installed.
BUILD_PKGS := gcc make pkg-config libsodium-dev libssl-dev libsnappy-dev libsystemd-dev
TEST_PKGS  := iproute2 nftables python3 procps psmisc kcptun python3-cryptography systemd
FUZZ_PKGS  := clang libclang-rt-14-dev
BENCH_PKGS := iperf3 sockperf
define need_pkgs
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then echo "installing:$$missing"; \
			(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing) >/dev/null || exit 1; \
		else echo "missing packages:$$missing (run as root, or: apt-get install$$missing)"; exit 1; fi; \
	fi
endef
deps:
	$(call need_pkgs,$(BUILD_PKGS))
deps-test:
	$(call need_pkgs,$(TEST_PKGS))
deps-fuzz:
	$(call need_pkgs,$(FUZZ_PKGS))
deps-bench:
	$(call need_pkgs,$(BENCH_PKGS))

-include $(shell find $(B) -name '*.d' 2>/dev/null)
