# vhostmq.m4: configure checks of vhostmq.

# VHOSTMQ_CHECK_OVS
# -----------------
# Locates a configured and built Open vSwitch tree given by
# --with-ovs-source=DIR and optionally --with-ovs-build=DIR (default: the
# source directory), checks that every piece vhostmq compiles, links or tests
# against is present, and substitutes OVS_SRCDIR, OVS_BUILDDIR, OVS_VERSION,
# OVS_HAVE_DPDK, OVS_EXTRA_CFLAGS and OVS_EXTRA_LDFLAGS.
AC_DEFUN([VHOSTMQ_CHECK_OVS], [
  AC_ARG_WITH([ovs-source],
    [AS_HELP_STRING([--with-ovs-source=DIR],
                    [Open vSwitch source tree (required); build-aux/prepare-ovs prepares one])],
    [], [with_ovs_source=no])
  AC_ARG_WITH([ovs-build],
    [AS_HELP_STRING([--with-ovs-build=DIR],
                    [configured and built Open vSwitch tree (default: the source tree)])],
    [], [with_ovs_build=no])

  AS_IF([test "x$with_ovs_source" = xno || test "x$with_ovs_source" = xyes],
    [AC_MSG_ERROR([--with-ovs-source=DIR is required: the Open vSwitch 3.1 source tree.
Run build-aux/prepare-ovs to unpack and build one from Debian's openvswitch-source package.])])
  AS_IF([test -d "$with_ovs_source"], [],
    [AC_MSG_ERROR([--with-ovs-source: $with_ovs_source is not a directory])])
  OVS_SRCDIR=`cd "$with_ovs_source" && pwd`
  AS_IF([test "x$with_ovs_build" = xno || test "x$with_ovs_build" = xyes],
    [OVS_BUILDDIR=$OVS_SRCDIR],
    [AS_IF([test -d "$with_ovs_build"], [],
       [AC_MSG_ERROR([--with-ovs-build: $with_ovs_build is not a directory])])
     OVS_BUILDDIR=`cd "$with_ovs_build" && pwd`])

  AC_MSG_CHECKING([for the Open vSwitch source files vhostmq uses])
  for f in vswitchd/ovs-vswitchd.c vswitchd/vswitch.ovsschema \
           lib/netdev-provider.h lib/dp-packet.h include/openvswitch/vlog.h \
           tests/ovs-macros.at tests/ovsdb-macros.at tests/ofproto-macros.at \
           tests/uuidfilt.py python/ovs/__init__.py; do
    AS_IF([test -f "$OVS_SRCDIR/$f"], [],
      [AC_MSG_RESULT([no])
       AC_MSG_ERROR([$OVS_SRCDIR/$f is missing: --with-ovs-source must name an Open vSwitch source tree])])
  done
  AC_MSG_RESULT([yes])

  AC_MSG_CHECKING([for a configured Open vSwitch build])
  AS_IF([test -f "$OVS_BUILDDIR/config.h" && test -f "$OVS_BUILDDIR/Makefile"],
    [AC_MSG_RESULT([yes])],
    [AC_MSG_RESULT([no])
     AC_MSG_ERROR([$OVS_BUILDDIR/config.h or Makefile is missing: Open vSwitch is not configured there (run its configure, or build-aux/prepare-ovs)])])

  AC_MSG_CHECKING([for the built Open vSwitch libraries, objects and programs])
  for f in lib/libopenvswitch.la lib/libsflow.la ofproto/libofproto.la \
           vswitchd/bridge.o vswitchd/system-stats.o vswitchd/ovs-vswitchd \
           utilities/ovs-vsctl utilities/ovs-appctl utilities/ovs-ofctl \
           ovsdb/ovsdb-server ovsdb/ovsdb-tool tests/ovstest; do
    AS_IF([test -e "$OVS_BUILDDIR/$f"], [],
      [AC_MSG_RESULT([no])
       AC_MSG_ERROR([$OVS_BUILDDIR/$f is missing: build Open vSwitch first ("make" in $OVS_BUILDDIR, or build-aux/prepare-ovs)])])
  done
  AC_MSG_RESULT([yes])

  AC_MSG_CHECKING([Open vSwitch version])
  OVS_VERSION=`$SED -n 's/^#define PACKAGE_VERSION "\(.*\)"$/\1/p' "$OVS_BUILDDIR/config.h"`
  AC_MSG_RESULT([$OVS_VERSION])
  AS_CASE([$OVS_VERSION],
    [3.1.*|3.3.*|3.7.*], [],
    [AC_MSG_WARN([vhostmq is tested against Open vSwitch 3.1, 3.3 and 3.7; $OVS_VERSION is not one of them])])

  dnl The flags OVS adds to its own compile and link lines (DPDK's include
  dnl directories and libraries in a DPDK build) are in its Makefile.
  OVS_EXTRA_CFLAGS=`$SED -n 's/^OVS_CFLAGS = //p' "$OVS_BUILDDIR/Makefile"`
  OVS_EXTRA_LDFLAGS=`$SED -n 's/^DPDK_vswitchd_LDFLAGS = //p' "$OVS_BUILDDIR/Makefile"`
  AC_MSG_CHECKING([whether Open vSwitch was built with DPDK])
  AS_IF([$GREP -q '^#define DPDK_NETDEV' "$OVS_BUILDDIR/config.h"],
        [OVS_HAVE_DPDK=yes], [OVS_HAVE_DPDK=no])
  AC_MSG_RESULT([$OVS_HAVE_DPDK])
  AM_CONDITIONAL([OVS_HAVE_DPDK], [test $OVS_HAVE_DPDK = yes])

  VHOSTMQ_CHECK_OVS_API

  AC_SUBST([OVS_SRCDIR])
  AC_SUBST([OVS_BUILDDIR])
  AC_SUBST([OVS_VERSION])
  AC_SUBST([OVS_HAVE_DPDK])
  AC_SUBST([OVS_EXTRA_CFLAGS])
  AC_SUBST([OVS_EXTRA_LDFLAGS])
])

# VHOSTMQ_ENABLE_WERROR
# ---------------------
# -Werror is on unless --disable-werror is given.
AC_DEFUN([VHOSTMQ_ENABLE_WERROR], [
  AC_ARG_ENABLE([werror],
    [AS_HELP_STRING([--disable-werror], [do not treat warnings as errors])],
    [], [enable_werror=yes])
  AS_IF([test "x$enable_werror" = xyes], [WERROR_FLAGS=-Werror], [WERROR_FLAGS=])
  AC_SUBST([WERROR_FLAGS])
])

# VHOSTMQ_CHECK_CC_OPTIONS
# ------------------------
# Warning flags the compiler accepts, in WARNING_FLAGS.  clang also gets
# -Wthread-safety, which checks OVS's lock annotations.
AC_DEFUN([VHOSTMQ_CHECK_CC_OPTIONS], [
  WARNING_FLAGS=
  for flag in -Wall -Wextra -Wno-sign-compare -Wno-unused-parameter \
              -Wno-missing-field-initializers -Wpointer-arith \
              -Wformat-security -Wstrict-prototypes -Wmissing-prototypes \
              -Wthread-safety; do
    AC_MSG_CHECKING([whether $CC accepts $flag])
    save_CFLAGS=$CFLAGS
    CFLAGS="$CFLAGS -Werror $flag"
    AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
      [AC_MSG_RESULT([yes]); WARNING_FLAGS="$WARNING_FLAGS $flag"],
      [AC_MSG_RESULT([no])])
    CFLAGS=$save_CFLAGS
  done
  AC_SUBST([WARNING_FLAGS])
])

# VHOSTMQ_OVS_HAS(NAME, HEADER, EXPRESSION)
# -----------------------------------------
# Whether EXPRESSION compiles against Open vSwitch's HEADER; substitutes
# NAME as 1 or 0 (lib/vhostmq-ovs-api.h.in takes it).
AC_DEFUN([VHOSTMQ_OVS_HAS], [
  AC_MSG_CHECKING([whether Open vSwitch's $2 has $3])
  save_CPPFLAGS=$CPPFLAGS
  CPPFLAGS="$CPPFLAGS -I$OVS_BUILDDIR -I$OVS_SRCDIR/include -I$OVS_BUILDDIR/include -I$OVS_SRCDIR/lib -I$OVS_BUILDDIR/lib -I$OVS_SRCDIR $OVS_EXTRA_CFLAGS"
  AC_COMPILE_IFELSE(
    [AC_LANG_PROGRAM([[#include <config.h>
#include "$2"]], [[(void) ($3);]])],
    [$1=1; AC_MSG_RESULT([yes])],
    [$1=0; AC_MSG_RESULT([no])])
  CPPFLAGS=$save_CPPFLAGS
  AC_SUBST([$1])
])

# VHOSTMQ_CHECK_OVS_API
# ---------------------
# The provider API differences between the Open vSwitch releases vhostmq
# builds against, found in OVS's headers (lib/netdev-vhostmq-ovs.h keeps
# what the code does with them).
AC_DEFUN([VHOSTMQ_CHECK_OVS_API], [
  dnl 3.3: packets carry their TSO segment size.
  VHOSTMQ_OVS_HAS([HAVE_DP_PACKET_SET_TSO_SEGSZ], [dp-packet.h],
                  [dp_packet_set_tso_segsz])
  dnl 3.5: checksum states (good, bad, partial) in place of TX flags.
  VHOSTMQ_OVS_HAS([HAVE_DP_PACKET_L4_CHECKSUM_PARTIAL], [dp-packet.h],
                  [dp_packet_l4_checksum_set_partial])
  AC_CONFIG_FILES([lib/vhostmq-ovs-api.h])

  dnl 3.3 renamed other_config:pmd-maxsleep to pmd-sleep-max (the old name
  dnl still works, with a warning in the log, which the tests check).
  AC_MSG_CHECKING([the name of OVS's PMD sleep setting])
  AS_IF([$GREP -q '"pmd-sleep-max"' "$OVS_SRCDIR/lib/dpif-netdev.c"],
        [OVS_PMD_SLEEP_MAX=pmd-sleep-max], [OVS_PMD_SLEEP_MAX=pmd-maxsleep])
  AC_MSG_RESULT([$OVS_PMD_SLEEP_MAX])
  AC_SUBST([OVS_PMD_SLEEP_MAX])
])
