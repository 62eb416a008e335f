/*
 * Copyright (c) 2026 The vhostmq authors.
 *
 * Licensed under the Apache License, Version 2.0 (the "License");
 * you may not use this file except in compliance with the License.
 * You may obtain a copy of the License at:
 *
 *     http://www.apache.org/licenses/LICENSE-2.0
 *
 * Unless required by applicable law or agreed to in writing, software
 * distributed under the License is distributed on an "AS IS" BASIS,
 * WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
 * See the License for the specific language governing permissions and
 * limitations under the License.
 */

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
