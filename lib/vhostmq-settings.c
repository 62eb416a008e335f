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

#include <config.h>

#include "vhostmq-settings.h"

#include <string.h>

#include "dirs.h"
#include "openvswitch/vlog.h"
#include "ovsdb-idl.h"
#include "smap.h"
#include "util.h"
#include "vswitch-idl.h"

VLOG_DEFINE_THIS_MODULE(vhostmq_settings);

static struct ovsdb_idl *idl;
static char *sock_dir;

/* ovs-vswitchd options whose value may follow as a separate argument. */
static bool
takes_separate_value(const char *arg)
{
    static const char *const options[] = {
        "--unixctl", "--dummy-numa", "--user", "-p", "--private-key",
        "-c", "--certificate", "-C", "--ca-cert", "--peer-ca-cert",
        "--bootstrap-ca-cert", "--ssl-protocols", "--ssl-ciphers",
    };

    for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
        if (!strcmp(arg, options[i])) {
            return true;
        }
    }
    return false;
}

static char *
find_remote(int argc, char *argv[])
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            return i + 1 < argc ? xstrdup(argv[i + 1]) : NULL;
        } else if (argv[i][0] == '-') {
            if (takes_separate_value(argv[i])) {
                i++;
            }
        } else {
            return xstrdup(argv[i]);
        }
    }
    return xasprintf("unix:%s/db.sock", ovs_rundir());
}

void
vhostmq_settings_init(int argc, char *argv[])
{
    char *remote = find_remote(argc, argv);

    if (!remote) {
        return;
    }
    idl = ovsdb_idl_create(remote, &ovsrec_idl_class, false, true);
    ovsdb_idl_add_table(idl, &ovsrec_table_open_vswitch);
    ovsdb_idl_add_column(idl, &ovsrec_open_vswitch_col_other_config);
    free(remote);
}

static char *
compute_sock_dir(void)
{
    const struct ovsrec_open_vswitch *cfg = idl
                                            ? ovsrec_open_vswitch_first(idl)
                                            : NULL;
    const char *dir = cfg ? smap_get(&cfg->other_config, "vhost-sock-dir")
                          : NULL;

    if (!dir || !dir[0]) {
        return xstrdup(ovs_rundir());
    } else if (dir[0] == '/') {
        return xstrdup(dir);
    } else {
        return xasprintf("%s/%s", ovs_rundir(), dir);
    }
}

bool
vhostmq_settings_run(void)
{
    char *dir;

    if (!idl) {
        return false;
    }
    ovsdb_idl_run(idl);
    dir = compute_sock_dir();
    if (!sock_dir || strcmp(dir, sock_dir)) {
        bool changed = sock_dir != NULL || strcmp(dir, ovs_rundir());

        if (changed) {
            VLOG_INFO("vhost-user server sockets go to %s", dir);
        }
        free(sock_dir);
        sock_dir = dir;
        return changed;
    }
    free(dir);
    return false;
}

void
vhostmq_settings_wait(void)
{
    if (idl) {
        ovsdb_idl_wait(idl);
    }
}

const char *
vhostmq_sock_dir(void)
{
    return sock_dir ? sock_dir : ovs_rundir();
}
