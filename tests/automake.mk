# Tests: a unit-test program for the OVS-independent core, and an autotest
# suite that reuses Open vSwitch's test macros in place.

# The scripted guest, one library for every tool that plays a guest:
# vguest-ring.[ch], its memory and split rings, without a socket (the unit
# tests, vhost-frontend, bench/core-bench); vguest-conn.[ch], its vhost-user
# connection (vhost-frontend, and through vguest.[ch]); and vguest.[ch], a
# guest with a fixed layout that writes its rings byte by byte, with a
# shadow of its memory (vhost-hostile, vhost-swarm).
noinst_LTLIBRARIES += tests/libvguest.la
tests_libvguest_la_SOURCES = \
	tests/vguest-conn.c \
	tests/vguest-conn.h \
	tests/vguest-ring.c \
	tests/vguest-ring.h \
	tests/vguest-packed.c \
	tests/vguest-packed.h \
	tests/vguest.c \
	tests/vguest.h
tests_libvguest_la_CPPFLAGS = $(CORE_CPPFLAGS)
tests_libvguest_la_CFLAGS = $(CORE_CFLAGS)

# Unit tests of the core.
check_PROGRAMS += tests/test-vhostmq-core
tests_test_vhostmq_core_SOURCES = \
	tests/unit.h \
	tests/group-frames.h \
	tests/inet-csum.h \
	tests/test-vhostmq-core.c \
	tests/test-device.c \
	tests/test-log.c \
	tests/test-meter.c \
	tests/test-mem.c \
	tests/test-offload.c \
	tests/test-virtq.c \
	tests/test-virtq-packed.c \
	tests/test-wire.c
tests_test_vhostmq_core_CPPFLAGS = $(CORE_CPPFLAGS) -I$(srcdir)/tests
tests_test_vhostmq_core_CFLAGS = $(CORE_CFLAGS)
tests_test_vhostmq_core_LDADD = tests/libvguest.la lib/libvhostmq-core.la

# The scripted vhost-user front-end.
check_PROGRAMS += tests/vhost-frontend
tests_vhost_frontend_SOURCES = tests/vhost-frontend.c
tests_vhost_frontend_CPPFLAGS = $(CORE_CPPFLAGS) -I$(srcdir)/tests
tests_vhost_frontend_CFLAGS = $(CORE_CFLAGS)
tests_vhost_frontend_LDADD = tests/libvguest.la lib/libvhostmq-core.la

# The autotest suite.
TESTSUITE_AT = \
	tests/testsuite.at \
	tests/vhostmq-macros.at \
	tests/unit.at \
	tests/provider.at \
	tests/datapath.at \
	tests/offload.at \
	tests/testpmd.at \
	tests/qos.at \
	tests/reconnect.at \
	tests/operability.at \
	tests/qemu.at \
	tests/migration.at \
	tests/ovn.at \
	tests/hostile.at \
	tests/soak.at
TESTSUITE = $(srcdir)/tests/testsuite
EXTRA_DIST += $(TESTSUITE_AT) $(TESTSUITE) tests/atlocal.in \
	tests/guest/build-guest tests/guest/init tests/vhostmq-qemu-ctl \
	tests/vhostmq-ovn
DISTCLEANFILES += tests/atconfig tests/atlocal

# The project's ovs-vswitchd comes first, then OVS's own programs.
AUTOTEST_PATH = $(abs_builddir)/vswitchd:$(abs_builddir)/tests:$(OVS_BUILDDIR)/utilities:$(OVS_BUILDDIR)/ovsdb:$(OVS_BUILDDIR)/tests

check-local: tests/atconfig tests/atlocal $(TESTSUITE) $(check_PROGRAMS) $(sbin_PROGRAMS)
	$(SHELL) '$(TESTSUITE)' -C tests AUTOTEST_PATH='$(AUTOTEST_PATH)' $(TESTSUITEFLAGS)

clean-local:
	test ! -f '$(TESTSUITE)' || $(SHELL) '$(TESTSUITE)' -C tests --clean
	test ! -f tests/upstream-dpdk || $(SHELL) tests/upstream-dpdk -C tests --clean

# OVS's own tests of OVS-DPDK's vhost-user ports (OVS_SRCDIR's
# tests/system-dpdk.at), run against vhostmq: `make check-upstream-dpdk`.
# Built here (tests/upstream-dpdk), not in the source tree: they are the
# OVS tree's.  They use
# fixed names (namespaces, a tap device), so they run one at a time.
UPSTREAM_AT = tests/upstream/testsuite.at tests/upstream/macros.at
EXTRA_DIST += $(UPSTREAM_AT) tests/upstream/dpdk-vhost-tests
tests/upstream/system-dpdk-vhost.at: $(srcdir)/tests/upstream/dpdk-vhost-tests $(OVS_SRCDIR)/tests/system-dpdk.at
	$(AM_V_GEN)mkdir -p tests/upstream && $(PYTHON3) $(srcdir)/tests/upstream/dpdk-vhost-tests '$(OVS_SRCDIR)' $@.tmp && mv $@.tmp $@
tests/upstream-dpdk: package.m4 $(UPSTREAM_AT) tests/upstream/system-dpdk-vhost.at $(OVS_SRCDIR)/tests/ovs-macros.at
	$(AM_V_GEN)$(AUTOTEST) -I '$(builddir)' -I '$(srcdir)' -I '$(OVS_SRCDIR)' -o $@.tmp $(srcdir)/tests/upstream/testsuite.at && mv $@.tmp $@
CLEANFILES += tests/upstream/system-dpdk-vhost.at tests/upstream-dpdk
check-upstream-dpdk: tests/atconfig tests/atlocal tests/upstream-dpdk $(sbin_PROGRAMS)
	$(SHELL) tests/upstream-dpdk -C tests AUTOTEST_PATH='$(AUTOTEST_PATH)' $(TESTSUITEFLAGS)
.PHONY: check-upstream-dpdk

AUTOTEST = $(AUTOM4TE) -l autotest
$(TESTSUITE): package.m4 $(TESTSUITE_AT) $(OVS_SRCDIR)/tests/ovs-macros.at
	$(AM_V_GEN)$(AUTOTEST) -I '$(builddir)' -I '$(srcdir)' -I '$(OVS_SRCDIR)' -o $@.tmp $@.at && mv $@.tmp $@

package.m4: $(top_srcdir)/configure.ac
	$(AM_V_GEN):;{ \
	  echo '# Signature of the current package.' && \
	  echo 'm4_define([AT_PACKAGE_NAME],      [$(PACKAGE_NAME)])' && \
	  echo 'm4_define([AT_PACKAGE_TARNAME],   [$(PACKAGE_TARNAME)])' && \
	  echo 'm4_define([AT_PACKAGE_VERSION],   [$(PACKAGE_VERSION)])' && \
	  echo 'm4_define([AT_PACKAGE_STRING],    [$(PACKAGE_STRING)])' && \
	  echo 'm4_define([AT_PACKAGE_BUGREPORT], [$(PACKAGE_BUGREPORT)])'; \
	} >'$@'
CLEANFILES += package.m4

check_PROGRAMS += tests/vhost-hostile
tests_vhost_hostile_SOURCES = tests/vhost-hostile.c
tests_vhost_hostile_CPPFLAGS = $(CORE_CPPFLAGS) -I$(srcdir)/tests
tests_vhost_hostile_CFLAGS = $(CORE_CFLAGS)
tests_vhost_hostile_LDADD = tests/libvguest.la lib/libvhostmq-core.la

# Many scripted guests in one process, for soak and scale tests.
check_PROGRAMS += tests/vhost-swarm
tests_vhost_swarm_SOURCES = tests/vhost-swarm.c
tests_vhost_swarm_CPPFLAGS = $(CORE_CPPFLAGS) -I$(srcdir)/tests
tests_vhost_swarm_CFLAGS = $(CORE_CFLAGS)
tests_vhost_swarm_LDADD = tests/libvguest.la lib/libvhostmq-core.la
