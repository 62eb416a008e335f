/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors. */

/* Unit tests of vhostmq's core (everything that builds without OVS).
 *
 * Usage: test-vhostmq-core [SUITE [TEST]]
 *        test-vhostmq-core --list
 * Runs every test, or those of one suite, or one test, and prints one line
 * per test and a closing "N passed, N failed" line.  Exits 1 if any test
 * failed or none matched.  --list prints "SUITE TEST" per test (tests/
 * unit.at runs each as a test of its own, and checks its list against
 * this one). */

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

bool unit_failed;

extern const struct unit_suite wire_suite;
extern const struct unit_suite virtq_suite;
extern const struct unit_suite virtq_packed_suite;
extern const struct unit_suite device_suite;
extern const struct unit_suite mem_suite;
extern const struct unit_suite log_suite;
extern const struct unit_suite offload_suite;
extern const struct unit_suite meter_suite;

static const struct unit_suite *const suites[] = {
    &wire_suite,
    &virtq_suite,
    &virtq_packed_suite,
    &device_suite,
    &mem_suite,
    &log_suite,
    &offload_suite,
    &meter_suite,
};

int
main(int argc, char *argv[])
{
    const char *suite_name = argc > 1 ? argv[1] : NULL;
    const char *test_name = argc > 2 ? argv[2] : NULL;
    bool list = suite_name && !strcmp(suite_name, "--list");
    int passed = 0, failed = 0;

    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++) {
        const struct unit_suite *s = suites[i];
        /* Suites are named "<x>_suite"; the command line says "<x>". */
        size_t len = strlen(s->name) - strlen("_suite");

        if (list) {
            for (size_t j = 0; j < s->n_tests; j++) {
                printf("%.*s %s\n", (int) len, s->name, s->tests[j].name);
            }
            continue;
        }
        if (suite_name && (strlen(suite_name) != len
                           || strncmp(suite_name, s->name, len))) {
            continue;
        }
        for (size_t j = 0; j < s->n_tests; j++) {
            const struct unit_test *t = &s->tests[j];

            if (test_name && strcmp(test_name, t->name)) {
                continue;
            }
            unit_failed = false;
            t->run();
            printf("%.*s/%s: %s\n", (int) len, s->name, t->name,
                   unit_failed ? "FAILED" : "ok");
            if (unit_failed) {
                failed++;
            } else {
                passed++;
            }
        }
    }
    if (list) {
        return EXIT_SUCCESS;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed || !passed ? EXIT_FAILURE : EXIT_SUCCESS;
}
