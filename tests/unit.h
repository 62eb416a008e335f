/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * The harness of the core's unit tests (test-vhostmq-core). */

#ifndef VHOSTMQ_TESTS_UNIT_H
#define VHOSTMQ_TESTS_UNIT_H 1

/* A minimal unit-test harness for the core: each test is a function; a
 * failed CHECK prints where and why and marks the running test failed, and
 * the program ends with "N passed, N failed". */

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>

struct unit_test {
    const char *name;
    void (*run)(void);
};

struct unit_suite {
    const char *name;
    const struct unit_test *tests;
    size_t n_tests;
};

#define UNIT_SUITE(NAME, TESTS) \
    const struct unit_suite NAME = { #NAME, TESTS, \
                                     sizeof TESTS / sizeof TESTS[0] }

extern bool unit_failed;

#define CHECK(COND)                                                     \
    do {                                                                \
        if (!(COND)) {                                                  \
            fprintf(stderr, "%s:%d: check failed: %s\n",                \
                    __FILE__, __LINE__, #COND);                         \
            unit_failed = true;                                         \
        }                                                               \
    } while (0)

#define CHECK_EQ(A, B)                                                  \
    do {                                                                \
        long long int a_ = (long long int) (A);                         \
        long long int b_ = (long long int) (B);                         \
        if (a_ != b_) {                                                 \
            fprintf(stderr, "%s:%d: check failed: %s == %s "            \
                    "(%lld != %lld)\n", __FILE__, __LINE__, #A, #B,     \
                    a_, b_);                                            \
            unit_failed = true;                                         \
        }                                                               \
    } while (0)

#endif /* tests/unit.h */
