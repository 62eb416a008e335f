# Microbenchmark of the core's data path, without Open vSwitch: see the
# comment at the top of bench/core-bench.c.  "make bench-core" builds and
# runs it, and counts its instructions under callgrind if valgrind is
# installed.

noinst_PROGRAMS = bench/core-bench
bench_core_bench_SOURCES = bench/core-bench.c
bench_core_bench_CPPFLAGS = $(CORE_CPPFLAGS) -I$(srcdir)/tests
bench_core_bench_CFLAGS = $(CORE_CFLAGS)
bench_core_bench_LDADD = tests/libvguest.la lib/libvhostmq-core.la

EXTRA_DIST += bench/core-bench-callgrind bench/pmd-callgrind

# Frame sizes "make bench-core" measures, and extra options for core-bench
# (e.g. BENCH_CORE_FLAGS='--packets 500000 --burst 64').
BENCH_CORE_SIZES = 64 512 1518
BENCH_CORE_FLAGS =

bench-core: bench/core-bench
	@for ring in '' --packed; do \
	  for size in $(BENCH_CORE_SIZES); do \
	    bench/core-bench --size $$size $$ring $(BENCH_CORE_FLAGS) || exit 1; \
	  done; \
	done
	@if command -v valgrind >/dev/null 2>&1; then \
	  $(SHELL) $(srcdir)/bench/core-bench-callgrind --rings 'split packed' \
	    --sizes '$(BENCH_CORE_SIZES)' bench/core-bench || exit 1; \
	else \
	  echo 'bench-core: valgrind is not installed: no instruction counts'; \
	fi
.PHONY: bench-core

# The benchmark against OVS-DPDK (bench/run --help); BENCH_FLAGS passes
# options, e.g. BENCH_FLAGS=--quick.
BENCH_FLAGS =
bench: all
	$(srcdir)/bench/run --builddir $(abs_builddir) $(BENCH_FLAGS)
.PHONY: bench

# Instructions per packet of the whole PMD iteration, OVS's datapath
# included (bench/pmd-callgrind --help), for each frame size.
bench-pmd: all
	@for size in $(BENCH_CORE_SIZES); do \
	  $(srcdir)/bench/pmd-callgrind --builddir $(abs_builddir) \
	    --size $$size || exit 1; \
	done
.PHONY: bench-pmd

# The same figure for both switches, OVS-DPDK (A) and vhostmq (B), each
# counting its whole PMD thread (Debian's OVS-DPDK binary is stripped: see
# bench/pmd-callgrind), on split and packed rings, BENCH_PMD_RUNS runs of
# each, alternating A and B.
BENCH_PMD_RUNS = 3
bench-pmd-ab: all
	@for size in $(BENCH_CORE_SIZES); do \
	  for rings in split packed; do \
	    for run in `seq $(BENCH_PMD_RUNS)`; do \
	      for sw in A B; do \
	        $(srcdir)/bench/pmd-callgrind --builddir $(abs_builddir) \
	          --switch $$sw --whole-thread --rings $$rings \
	          --size $$size || exit 1; \
	      done; \
	    done; \
	  done; \
	done
.PHONY: bench-pmd-ab
