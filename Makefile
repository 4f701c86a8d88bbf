# sepconv -- build, test, demo, install.
#
#   make demo         install missing Debian packages, build, run the demo
#   make test         install missing Debian packages, build, run the tests
#   make check-layers the library's rooms depend one way, without cycles
#   make check-asan   the tests again under AddressSanitizer + UBSan
#   make check-valgrind  the tests under valgrind (no fork, leak check)
#   make check-install   install into a scratch root, use it from elsewhere
#   make bench        sepconv beside XNNPACK and oneDNN (make bench-tune first)
#   make bench-int8   the int8 stages beside XNNPACK's int8 (QC8) convolution
#   make fuzz         libFuzzer on every input surface, FUZZ_SECONDS each
#   make check-faults every allocation on the main paths made to fail in turn
#   make check-threads ThreadSanitizer on eight threads for STRESS_SECONDS
#   make install      PREFIX=/usr/local DESTDIR= : library, header, CLI, .pc
#   make check-arm64  cross-build for aarch64, run the suites under qemu
#   make ARCH=arm64   the aarch64 cross build alone (into build-arm64)

SHELL   := /bin/bash
PREFIX  ?= /usr/local
DESTDIR ?=
# The architecture is the compiler's: its multiarch triplet (x86_64-linux-gnu,
# aarch64-linux-gnu) names the tcc runtime directory.  `make ARCH=arm64` (or
# `make CC=aarch64-linux-gnu-gcc`) is the aarch64 cross build, see "arm64"
# below: into build-arm64, against the arm64 sysroot there, the build's own
# tools built by HOST_CC.
ifeq ($(ARCH),arm64)
  CC = aarch64-linux-gnu-gcc
endif
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
CC_ARCH   := $(firstword $(subst -, ,$(MULTIARCH)))
CROSS     := $(filter-out $(shell uname -m),$(CC_ARCH))
ifneq ($(filter arm64,$(ARCH))$(filter aarch64,$(CROSS)),)
  ifeq ($(MULTIARCH),)
    $(error $(CC) is missing: apt-get install gcc-aarch64-linux-gnu (make check-arm64 does))
  endif
  BUILD   ?= build-arm64
  SYSROOT ?= $(CURDIR)/$(BUILD)/sysroot
endif
HOST_CC ?= $(if $(CROSS),cc,$(CC))
BUILD   ?= build
CC      ?= cc
CFLAGS  ?= -O2 -g
SANITIZE ?=

# Debian packages the build needs; `make deps` installs the missing ones.
DEB_PACKAGES := liblua5.4-dev libtcc-dev tcc libxxhash-dev libpthreadpool-dev \
                libjansson-dev libcpuinfo-dev check pkg-config

# `make V=1` shows the commands.
ifeq ($(V),1)
  Q :=
else
  Q := @
endif

WARNINGS := -std=c11 -Wall -Wextra -Werror
ifeq ($(SANITIZE),1)
  SANITIZER_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all \
                     -fno-omit-frame-pointer
endif

# A sysroot (cross builds): compile and link against it, pkg-config in it.
SYSROOT_FLAGS = $(if $(SYSROOT),--sysroot=$(SYSROOT))
PKG_CONFIG = $(if $(SYSROOT),PKG_CONFIG_SYSROOT_DIR=$(SYSROOT) \
  PKG_CONFIG_LIBDIR=$(SYSROOT)/usr/lib/$(MULTIARCH)/pkgconfig:$(SYSROOT)/usr/share/pkgconfig) \
  pkg-config

# Recursive (=) so pkg-config runs after `deps` has installed it.
LUA_CFLAGS   = $(shell $(PKG_CONFIG) --cflags lua5.4)
LUA_LIBS     = $(shell $(PKG_CONFIG) --libs lua5.4)
CHECK_CFLAGS = $(shell $(PKG_CONFIG) --cflags check)
CHECK_LIBS   = $(shell $(PKG_CONFIG) --libs check)

ALL_CFLAGS = $(WARNINGS) $(OBJECT_CFLAGS) $(SANITIZER_FLAGS) $(SYSROOT_FLAGS) -fPIC -Iruntime \
             -DSEPCONV_TCC_VERSION='"$(TCC_VERSION)"'
# CFLAGS of an object; the ISA micro-kernel files take MICROKERNEL_CFLAGS
OBJECT_CFLAGS = $(CFLAGS)
MICROKERNEL_CFLAGS = $(CFLAGS)
LIB_LIBS   = $(LUA_LIBS) -ljansson -lcpuinfo -lxxhash -lpthreadpool -lpthread -ldl -lm
# the libtcc package version, recorded in tuning logs
TCC_VERSION = $(strip $(if $(SYSROOT),\
  $(shell sed -n 's/^libtcc-dev //p' $(SYSROOT)/.versions 2>/dev/null | tail -n1),\
  $(shell dpkg-query -W -f='$${Version}' libtcc-dev 2>/dev/null)))
# libtcc.a is not position-independent: programs link it, the .so does not
PROGRAM_LIBS = -ltcc $(LIB_LIBS)
LDFLAGS_ALL = $(SANITIZER_FLAGS) $(SYSROOT_FLAGS) $(LDFLAGS)

# ------------------------------------------------------- micro-kernels
# runtime/microkernels/: scalar.c and the dispatch (microkernels.c) build
# everywhere; one file per instruction set builds only on the architecture
# that has it (MICROKERNEL_ISAS, from the compiler's target triplet), each
# with its own flags (MICROKERNEL_FLAGS_<isa>).
MICROKERNEL_MACHINE := $(shell $(CC) -dumpmachine)
MICROKERNEL_ISAS := $(if $(filter x86_64-%,$(MICROKERNEL_MACHINE)),avx2 avx512 avx512vnni,\
                    $(if $(filter aarch64-%,$(MICROKERNEL_MACHINE)),neon))
MICROKERNEL_FLAGS_avx2   := -mavx2 -mfma
MICROKERNEL_FLAGS_avx512 := -mavx512f
MICROKERNEL_FLAGS_avx512vnni := -mavx512f -mavx512bw -mavx512vl -mavx512vnni
# gcc's scheduling before register allocation spills the 6x4 tile's
# accumulators in its K loop (clang has no such flag)
MICROKERNEL_FLAGS_neon   := $(if $(findstring clang,$(shell $(CC) --version 2>/dev/null)),,\
                            -fno-schedule-insns)
MICROKERNEL_SOURCES := runtime/microkernels/microkernels.c runtime/microkernels/scalar.c \
                       $(MICROKERNEL_ISAS:%=runtime/microkernels/%.c)

LIB_SOURCES  := $(filter-out runtime/microkernels/%,$(wildcard runtime/*/*.c)) \
                $(MICROKERNEL_SOURCES)
CLI_SOURCES  := gen/main.c gen/cli.c $(wildcard gen/cmd_*.c)
TEST_SOURCES := $(wildcard tests/*.c)
FUZZ_TARGETS := spec template npy log jit
TEMPLATES    := $(sort $(wildcard templates/*.in templates/*.lua))

# The templates, compiled into the library as strings by a build tool.
EMBED          := $(BUILD)/embed
EMBEDDED       := $(BUILD)/runtime/generate/templates_embedded.c
LIB_OBJECTS  := $(LIB_SOURCES:%.c=$(BUILD)/%.o) $(EMBEDDED:.c=.o)
# the shared library's tcc backend checks that the program linked libtcc
SHARED_OBJECTS := $(filter-out $(BUILD)/runtime/backend/backend_tcc.o,$(LIB_OBJECTS)) \
                  $(BUILD)/runtime/backend/backend_tcc.shared.o
CLI_OBJECTS  := $(CLI_SOURCES:%.c=$(BUILD)/%.o)
TEST_OBJECTS := $(TEST_SOURCES:%.c=$(BUILD)/%.o)

STATIC_LIB := $(BUILD)/libsepconv.a
# the shared library: the file carries the full version, the SONAME only the
# major one (an ABI break bumps it), libsepconv.so is for the linker's -l
LIB_VERSION   := $(shell sed -n 's/^\#define SEPCONV_VERSION "\(.*\)"/\1/p' runtime/sepconv.h)
SONAME        := libsepconv.so.$(firstword $(subst ., ,$(LIB_VERSION)))
SHARED_FILE   := libsepconv.so.$(LIB_VERSION)
SHARED_REAL   := $(BUILD)/$(SHARED_FILE)
SHARED_LIB := $(BUILD)/libsepconv.so
CLI        := $(BUILD)/sepconv
TEST_RUNNER := $(BUILD)/tests/run_tests

.PHONY: all deps test test-run check-layers check-asan check-valgrind check-install demo \
        demo-run bench bench-run bench-tune bench-int8 fuzz fuzz-run check-faults fault-run check-threads \
        install uninstall clean check-arm64 arm64-run

all: $(STATIC_LIB) $(SHARED_LIB) $(CLI)

# ---------------------------------------------------------------- deps
deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' \
	    || missing="$$missing $$p"; \
	done; \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "make deps: installing$$missing"; \
	  apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing; \
	else \
	  echo "make deps: these Debian packages are missing; as root run:" >&2; \
	  echo "  apt-get update && apt-get install -y$$missing" >&2; \
	  exit 1; \
	fi

# --------------------------------------------------------------- build
$(BUILD)/%.o: %.c $(wildcard runtime/*.h runtime/*/*.h gen/*.h tests/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) $(LUA_CFLAGS) $(CHECK_CFLAGS) -c $< -o $@

$(EMBED): tools/embed.c
	@mkdir -p $(dir $@)
	$(Q)$(HOST_CC) $(WARNINGS) -O1 -o $@ $<

$(EMBEDDED): $(EMBED) $(TEMPLATES)
	@mkdir -p $(dir $@)
	@echo "  EMBED   templates/"
	$(Q)$(EMBED) $@ $(TEMPLATES)

$(EMBEDDED:.c=.o): $(EMBEDDED) runtime/generate/render.h runtime/sepconv.h
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

# the micro-kernels' register tiles need full unrolling; each ISA file its flags
$(MICROKERNEL_SOURCES:%.c=$(BUILD)/%.o): ALL_CFLAGS += -O3
$(foreach isa,$(MICROKERNEL_ISAS),\
  $(eval $(BUILD)/runtime/microkernels/$(isa).o: ALL_CFLAGS += $(MICROKERNEL_FLAGS_$(isa))) \
  $(eval $(BUILD)/runtime/microkernels/$(isa).o: OBJECT_CFLAGS = $(MICROKERNEL_CFLAGS)))

# libtcc's runtime files (libtcc1.a, include/) for this architecture
TCC_LIB_DIR ?= /usr/lib/$(or $(MULTIARCH),$(error $(CC) -print-multiarch says nothing: \
  set TCC_LIB_DIR))/tcc
$(BUILD)/runtime/backend/backend_tcc.o $(BUILD)/runtime/backend/backend_tcc.shared.o: \
  ALL_CFLAGS += -DSEPCONV_TCC_LIB_DIR='"$(TCC_LIB_DIR)"'

$(STATIC_LIB): $(LIB_OBJECTS)
	@rm -f $@
	@echo "  AR      $@"
	$(Q)ar rcs $@ $^

$(BUILD)/runtime/backend/backend_tcc.shared.o: runtime/backend/backend_tcc.c \
    $(wildcard runtime/*.h runtime/*/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC      $< (shared)"
	$(Q)$(CC) $(ALL_CFLAGS) -DSEPCONV_SHARED -c $< -o $@

$(SHARED_REAL): $(SHARED_OBJECTS)
	@echo "  LD      $@"
	$(Q)$(CC) -shared -Wl,-soname,$(SONAME) -o $@ $^ $(LDFLAGS_ALL) $(LIB_LIBS)

# the SONAME link (what the loader looks for) and the linker's -l name
$(BUILD)/$(SONAME): $(SHARED_REAL)
	$(Q)ln -sf $(SHARED_FILE) $@

$(SHARED_LIB): $(BUILD)/$(SONAME)
	$(Q)ln -sf $(SONAME) $@

$(CLI): $(CLI_OBJECTS) $(STATIC_LIB)
	@echo "  LD      $@"
	$(Q)$(CC) -o $@ $(CLI_OBJECTS) $(STATIC_LIB) $(LDFLAGS_ALL) $(PROGRAM_LIBS)

$(TEST_RUNNER): $(TEST_OBJECTS) $(STATIC_LIB)
	@echo "  LD      $@"
	$(Q)$(CC) -o $@ $(TEST_OBJECTS) $(STATIC_LIB) $(LDFLAGS_ALL) $(CHECK_LIBS) \
	  $(PROGRAM_LIBS)

# ---------------------------------------------------------------- test
test: deps
	@$(MAKE) --no-print-directory test-run

# counts the allocations of kernel runs by replacing malloc, which a
# sanitizer replaces too: not built under one
ALLOC_COUNT = $(if $(SANITIZER_FLAGS)$(findstring -fsanitize,$(CFLAGS)),,$(BUILD)/alloc_count)

# the tests record the targets (ISAs) they ran in TEST_TARGETS; the last line
# names them, and the skipped ones with the reason
TEST_TARGETS = $(abspath $(BUILD))/tests/targets.txt

# the suites run TEST_JOBS at a time (tests/run_suites.sh; one per CPU by
# default), each in its own process, its log in BUILD/tests/suite-SUITE-CASE.log
TEST_JOBS ?= $(shell nproc 2>/dev/null || echo 1)

test-run: $(TEST_RUNNER) $(CLI) $(FUZZ_TARGETS:%=$(BUILD)/replay/fuzz_%) $(ALLOC_COUNT)
	@rm -f $(TEST_TARGETS)
	SEPCONV_TEST_TARGETS=$(TEST_TARGETS) SEPCONV_CLI=$(CLI) SEPCONV_ROOT=$(CURDIR) \
	  tests/run_suites.sh $(BUILD)/tests $(TEST_JOBS) $(TEST_RUNNER)
	$(if $(ALLOC_COUNT),$(ALLOC_COUNT),@echo "  SKIP    alloc_count: it replaces malloc, and so does the sanitizer")
	@for t in $(FUZZ_TARGETS); do \
	  printf "  REPLAY  fuzz_$$t: "; \
	  $(BUILD)/replay/fuzz_$$t $$(find tests/fuzz/corpus/$$t tests/fuzz/regressions/$$t \
	    -type f 2>/dev/null) || exit 1; \
	done
	@$(TEST_RUNNER) --print-targets $(TEST_TARGETS)

$(BUILD)/alloc_count: tests/alloc/alloc_count.c $(STATIC_LIB)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_CFLAGS) $< $(STATIC_LIB) $(LDFLAGS_ALL) $(PROGRAM_LIBS) -o $@

# each fuzz target, driven by tests/fuzz/replay.c over its corpus and the
# crashes kept as regressions (no libFuzzer needed)
$(BUILD)/replay/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(STATIC_LIB)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_CFLAGS) $(LUA_CFLAGS) $< tests/fuzz/replay.c $(STATIC_LIB) \
	  $(LDFLAGS_ALL) $(PROGRAM_LIBS) -o $@

# the rooms of the library use each other in one direction only, without
# cycles: includes from the sources, uses from the built objects
check-layers: $(STATIC_LIB)
	tools/check_layers.sh . $(BUILD)

check-asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan SANITIZE=1 CFLAGS="-O1 -g" \
	  test-run

check-valgrind:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(DEB_PACKAGES) valgrind"
	@$(MAKE) --no-print-directory $(TEST_RUNNER) $(CLI)
	@mkdir -p $(BUILD)/valgrind && rm -f $(BUILD)/valgrind/targets.txt
	CK_FORK=no SEPCONV_TEST_VALGRIND=1 SEPCONV_NO_AVX512=1 SEPCONV_CLI=$(CLI) \
	  SEPCONV_ROOT=$(CURDIR) SEPCONV_TEST_TARGETS=$(abspath $(BUILD))/valgrind/targets.txt \
	  tests/run_suites.sh $(BUILD)/valgrind $(TEST_JOBS) \
	  valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
	  --trace-children=no --quiet $(TEST_RUNNER)
	@$(TEST_RUNNER) --print-targets $(BUILD)/valgrind/targets.txt

check-install: deps
	@$(MAKE) --no-print-directory all
	BUILD=$(BUILD) tests/install_check.sh

# ThreadSanitizer over eight threads compiling, running and freeing kernels
# for STRESS_SECONDS (60 by default).
STRESS_SECONDS ?= 60
check-threads: deps
	@$(MAKE) --no-print-directory BUILD=build-tsan CFLAGS="-O1 -g -fsanitize=thread" \
	  LDFLAGS="-fsanitize=thread" build-tsan/tests/run_tests build-tsan/sepconv
	for suite in kernel reliability; do \
	  CK_RUN_SUITE=$$suite CK_FORK=no SEPCONV_STRESS_SECONDS=$(STRESS_SECONDS) \
	    SEPCONV_ROOT=$(CURDIR) SEPCONV_CLI=build-tsan/sepconv \
	    TSAN_OPTIONS="halt_on_error=1 exitcode=66" \
	    build-tsan/tests/run_tests || exit 1; \
	done

# ------------------------------------------------------ fault injection
# The library built so that its n-th allocation can be made to fail, under
# ASan (whose LeakSanitizer checks every error path frees what it took).
check-faults: deps
	@$(MAKE) --no-print-directory BUILD=build-fault SANITIZE=1 \
	  CFLAGS="-O1 -g -DSEPCONV_FAULT_INJECTION" fault-run

fault-run: $(BUILD)/fault_sweep
	$(BUILD)/fault_sweep

$(BUILD)/fault_sweep: tests/fault/fault_sweep.c $(STATIC_LIB)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_CFLAGS) $< $(STATIC_LIB) $(LDFLAGS_ALL) $(PROGRAM_LIBS) -o $@

# ---------------------------------------------------------------- fuzz
# libFuzzer targets for every input surface (clang, ASan + UBSan), each run
# FUZZ_SECONDS; new corpus entries go to build-fuzz/corpus, crashes to
# build-fuzz/crashes (keep them in tests/fuzz/regressions/<target>/).
FUZZ_SECONDS ?= 180
FUZZ_BUILD   := build-fuzz
FUZZ_FLAGS   := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
# the ISA micro-kernels without ASan+UBSan: clang at their -O3 takes over ten
# minutes on avx512.c's unrolled blocks with them (check-asan covers these
# files, with gcc, and tests/test_microkernels.c checks their bounds)
FUZZ_MICROKERNEL_FLAGS := -O1 -g -fsanitize=fuzzer-no-link -fno-omit-frame-pointer

fuzz: deps
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="clang libclang-rt-14-dev"
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=clang CFLAGS="$(FUZZ_FLAGS)" \
	  MICROKERNEL_CFLAGS="$(FUZZ_MICROKERNEL_FLAGS)" fuzz-run

fuzz-run: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)
	@mkdir -p $(BUILD)/crashes
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(BUILD)/corpus/$$t; \
	  echo "== fuzz_$$t for $(FUZZ_SECONDS) s"; \
	  $(BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=60 \
	    -rss_limit_mb=4096 -artifact_prefix=$(BUILD)/crashes/$$t- -print_final_stats=1 \
	    $(BUILD)/corpus/$$t tests/fuzz/corpus/$$t 2>&1 | \
	    grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)|ERROR|SUMMARY|Done" ; \
	  [ $${PIPESTATUS[0]} -eq 0 ] || exit 1; \
	done

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(STATIC_LIB)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)clang $(WARNINGS) -O1 -g -fsanitize=fuzzer,address,undefined -Iruntime \
	  $(LUA_CFLAGS) $< $(STATIC_LIB) $(PROGRAM_LIBS) -o $@

# --------------------------------------------------------------- bench
# The peers are optional: installed when we can, reported when missing.
BENCH_PACKAGES := libxnnpack-dev libpthreadpool-dev libdnnl-dev
BENCH_DIR      := $(BUILD)/bench
BENCH          := $(BENCH_DIR)/bench
BENCH_LOG      := $(BENCH_DIR)/tuning.jsonl
BENCH_ARGS     ?=
BUDGET         ?= 300
HAVE_XNNPACK    = $(wildcard /usr/include/xnnpack.h)
HAVE_ONEDNN     = $(wildcard /usr/include/dnnl.h)
BENCH_SOURCES   = bench/bench.c $(if $(HAVE_XNNPACK),bench/peer_xnnpack.c) \
                  $(if $(HAVE_ONEDNN),bench/peer_onednn.c)
BENCH_FLAGS     = $(if $(HAVE_XNNPACK),-DHAVE_XNNPACK) $(if $(HAVE_ONEDNN),-DHAVE_ONEDNN)
BENCH_LIBS      = $(if $(HAVE_XNNPACK),-lXNNPACK) $(if $(HAVE_ONEDNN),-ldnnl)

bench: deps
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(BENCH_PACKAGES)" || \
	  echo "make bench: a peer is missing; the benchmark runs without it"
	@$(MAKE) --no-print-directory bench-run

bench-run: $(BENCH)
	$(BENCH) --log $(BENCH_LOG) $(BENCH_ARGS)

# tunes every benchmarked stage (dw, pw, sep of each layer) into the log the
# benchmark's "cc tuned" column reads; BUDGET seconds in all
bench-tune: $(BENCH) $(CLI)
	$(BENCH) --list-stages > $(BENCH_DIR)/stages.layers
	$(CLI) tune $(BENCH_DIR)/stages.layers --backend cc --strategy guided --seed 1 \
	  --target $$($(BENCH) --print-target) --budget $(BUDGET) --log $(BENCH_LOG) \
	  --quiet --top 1

$(BENCH): $(wildcard bench/*.c bench/*.h) $(STATIC_LIB)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(WARNINGS) -O2 -g $(BENCH_FLAGS) -Iruntime -Ibench $(BENCH_SOURCES) \
	  $(STATIC_LIB) $(PROGRAM_LIBS) $(BENCH_LIBS) -o $@

# int8 stages beside XNNPACK's QC8 convolution and oneDNN's s8 one
# (bench/int8.c, bench/int8_onednn.c; needs XNNPACK, oneDNN where installed);
# exits 1 if a peer's output differs from sepconv's by more than 1
BENCH_INT8     := $(BENCH_DIR)/bench-int8
BENCH_INT8_SOURCES = bench/int8.c $(if $(HAVE_ONEDNN),bench/int8_onednn.c)

bench-int8: deps
	@$(MAKE) --no-print-directory deps \
	  DEB_PACKAGES="libxnnpack-dev libpthreadpool-dev libdnnl-dev"
	@$(MAKE) --no-print-directory $(BENCH_INT8)
	$(BENCH_INT8) $(BENCH_ARGS)

$(BENCH_INT8): bench/int8.c bench/int8_onednn.c bench/int8_onednn.h $(STATIC_LIB)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(WARNINGS) -O2 -g $(if $(HAVE_ONEDNN),-DHAVE_ONEDNN) -Iruntime -Ibench \
	  $(BENCH_INT8_SOURCES) $(STATIC_LIB) $(PROGRAM_LIBS) -lXNNPACK \
	  $(if $(HAVE_ONEDNN),-ldnnl) -o $@

# ---------------------------------------------------------------- demo
demo: deps
	@$(MAKE) --no-print-directory demo-run

demo-run: $(CLI)
	$(CLI) cost examples/mobilenet_v1.layers
	@echo
	$(CLI) jit examples/mobilenet_v1.layers --only sep
	@echo
	$(CLI) jit examples/mobilenet_v1.layers --only sep --backend cc

# --------------------------------------------------------------- arm64
# The aarch64 build, checked under emulation.  `make ARCH=arm64` builds the
# library, CLI and tests with aarch64-linux-gnu-gcc into build-arm64,
# against a sysroot of arm64 Debian packages that tools/arm64_sysroot.sh
# unpacks there (apt-get download + dpkg-deb -x: never installed on the
# host, where tcc:arm64 and libpthreadpool-dev:arm64 would remove host
# packages).  check-arm64 installs the cross compiler and qemu like `deps`,
# makes the sysroot (cached), builds, and runs the suites under
# qemu-aarch64-static (tests/arm64_check.sh); ARM64_SUITES="kernel ..."
# runs only those.  bench/ is not built there.
ARM64_BUILD    := build-arm64
ARM64_SYSROOT  := $(CURDIR)/$(ARM64_BUILD)/sysroot
ARM64_PACKAGES := pkg-config gcc-aarch64-linux-gnu qemu-user-static
ARM64_SUITES   ?=
# one test case at a time under qemu: two at once starved the emulated
# processes' time-bounded work (one of twelve concurrent compiles of
# cc_flags_are_split_into_words_per_compile failed, stop 21)
ARM64_JOBS     ?= 1

check-arm64:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(ARM64_PACKAGES)"
	tools/arm64_sysroot.sh $(ARM64_SYSROOT)
	@$(MAKE) --no-print-directory ARCH=arm64 CC=aarch64-linux-gnu-gcc \
	  BUILD=$(ARM64_BUILD) SYSROOT=$(ARM64_SYSROOT) arm64-run

arm64-run: $(TEST_RUNNER) $(CLI) $(BUILD)/neon_activations $(BUILD)/alloc_count \
    $(FUZZ_TARGETS:%=$(BUILD)/replay/fuzz_%)
	JOBS=$(ARM64_JOBS) tests/arm64_check.sh $(BUILD) $(SYSROOT) $(ARM64_SUITES)

# relu and relu6 of NEON code keep NaN and -0.0 as the reference does
$(BUILD)/neon_activations: tests/arm64/neon_activations.c $(STATIC_LIB)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_CFLAGS) $< $(STATIC_LIB) $(LDFLAGS_ALL) $(PROGRAM_LIBS) -o $@

# a cross build's `all` builds its tests too (they run under check-arm64)
ifneq ($(CROSS),)
all: $(TEST_RUNNER)
endif

# a cross build needs its sysroot before anything compiles
ifneq ($(SYSROOT),)
$(LIB_OBJECTS) $(CLI_OBJECTS) $(TEST_OBJECTS) $(EMBEDDED:.c=.o): | $(SYSROOT)/.complete
$(SYSROOT)/.complete:
	tools/arm64_sysroot.sh $(SYSROOT)
endif

# ------------------------------------------------------------- install
install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
	  $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 $(STATIC_LIB) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SHARED_REAL) $(DESTDIR)$(PREFIX)/lib/
	ln -sf $(SHARED_FILE) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libsepconv.so
	install -m 644 runtime/sepconv.h $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(CLI) $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(LIB_VERSION)|' \
	  runtime/sepconv.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/sepconv.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/lib/libsepconv.a $(DESTDIR)$(PREFIX)/lib/libsepconv.so \
	  $(DESTDIR)$(PREFIX)/lib/$(SONAME) $(DESTDIR)$(PREFIX)/lib/$(SHARED_FILE) \
	  $(DESTDIR)$(PREFIX)/include/sepconv.h $(DESTDIR)$(PREFIX)/bin/sepconv \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig/sepconv.pc

clean:
	rm -rf build build-asan build-fuzz build-fault build-tsan build-arm64
