# libFuzzer targets for the code that parses guest-controlled bytes (see
# the comment at the top of each).  They build with clang (FUZZ_CC) from the
# core's sources, with ASAN and UBSAN, apart from the normal build.
#
#   make fuzz                         each target FUZZ_SECONDS (default 60)
#   make fuzz FUZZ_SECONDS=3600       longer
#   make fuzz-build                   build only
#
# Each target starts from its committed seeds (tests/fuzz/seeds/NAME) and
# keeps what it finds in tests/fuzz/corpus-NAME in the build tree; a crash
# leaves crash-* there (rerun: tests/fuzz/fuzz-NAME FILE).

FUZZ_CC = clang
FUZZ_CFLAGS = -g -O1 -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_SECONDS = 60
FUZZ_CORE = \
	$(srcdir)/lib/vhost-conn.c \
	$(srcdir)/lib/vhost-device.c \
	$(srcdir)/lib/vhost-log.c \
	$(srcdir)/lib/vhost-mem.c \
	$(srcdir)/lib/vhost-notify.c \
	$(srcdir)/lib/vhost-user-wire.c \
	$(srcdir)/lib/virtq.c \
	$(srcdir)/lib/virtq-packed.c \
	$(srcdir)/lib/vnet-offload.c
FUZZ_HDRS = \
	$(srcdir)/lib/vhost-conn.h \
	$(srcdir)/lib/vhost-device.h \
	$(srcdir)/lib/vhost-log.h \
	$(srcdir)/lib/vhost-mem.h \
	$(srcdir)/lib/vhost-notify.h \
	$(srcdir)/lib/vhost-user-wire.h \
	$(srcdir)/lib/virtio.h \
	$(srcdir)/lib/virtq.h \
	$(srcdir)/lib/virtq-private.h \
	$(srcdir)/lib/vnet-offload.h
FUZZ_TARGETS = tests/fuzz/fuzz-device tests/fuzz/fuzz-virtq \
	tests/fuzz/fuzz-offload

EXTRA_DIST += \
	tests/fuzz/fuzz-device.c \
	tests/fuzz/fuzz-virtq.c \
	tests/fuzz/fuzz-offload.c \
	tests/fuzz/make-seeds \
	tests/fuzz/seeds
CLEANFILES += $(FUZZ_TARGETS)

tests/fuzz/fuzz-device: $(srcdir)/tests/fuzz/fuzz-device.c $(FUZZ_CORE) $(FUZZ_HDRS)
	@$(MKDIR_P) tests/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I$(builddir) -I$(srcdir)/lib -o $@ \
	  $(srcdir)/tests/fuzz/fuzz-device.c $(FUZZ_CORE)

tests/fuzz/fuzz-virtq: $(srcdir)/tests/fuzz/fuzz-virtq.c $(FUZZ_CORE) $(FUZZ_HDRS)
	@$(MKDIR_P) tests/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I$(builddir) -I$(srcdir)/lib -o $@ \
	  $(srcdir)/tests/fuzz/fuzz-virtq.c $(FUZZ_CORE)

tests/fuzz/fuzz-offload: $(srcdir)/tests/fuzz/fuzz-offload.c $(FUZZ_CORE) $(FUZZ_HDRS)
	@$(MKDIR_P) tests/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I$(builddir) -I$(srcdir)/lib -o $@ \
	  $(srcdir)/tests/fuzz/fuzz-offload.c $(FUZZ_CORE)

fuzz-build: $(FUZZ_TARGETS)

fuzz: fuzz-build
	@for t in device virtq offload; do \
	  mkdir -p tests/fuzz/corpus-$$t && \
	  echo "fuzz-$$t: $(FUZZ_SECONDS) s" && \
	  (cd tests/fuzz && ./fuzz-$$t -max_total_time=$(FUZZ_SECONDS) \
	     -print_final_stats=1 -print_coverage=0 \
	     corpus-$$t $(abs_srcdir)/tests/fuzz/seeds/$$t \
	     > fuzz-$$t.log 2>&1); status=$$?; \
	  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)|cov: ' tests/fuzz/fuzz-$$t.log | tail -n 5; \
	  if [ $$status != 0 ]; then \
	    tail -n 40 tests/fuzz/fuzz-$$t.log; \
	    echo "fuzz-$$t FAILED: see tests/fuzz/fuzz-$$t.log"; exit 1; \
	  fi; \
	done
.PHONY: fuzz fuzz-build
