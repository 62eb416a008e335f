/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 The vhostmq authors.
 *
 * Switch-wide settings from the Open_vSwitch table: where server sockets
 * go, and their owner and mode. */

#include <config.h>

#include "vhostmq-settings.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dirs.h"
#include "openvswitch/vlog.h"
#include "ovsdb-idl.h"
#include "smap.h"
#include "util.h"
#include "vswitch-idl.h"

VLOG_DEFINE_THIS_MODULE(vhostmq_settings);

static struct ovsdb_idl *idl;
static char *sock_dir;
static char *sock_owner;        /* other_config:vhost-sock-owner. */
static char *sock_mode;         /* other_config:vhost-sock-mode. */
static uint64_t sock_perms_seq; /* Changes when either of them changes. */

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(5, 20);

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

/* Replaces '*value' by a copy of 'new_value' (may be null); returns true if
 * it changed. */
static bool
update_string(char **value, const char *new_value)
{
    if ((!*value && !new_value)
        || (*value && new_value && !strcmp(*value, new_value))) {
        return false;
    }
    free(*value);
    *value = nullable_xstrdup(new_value);
    return true;
}

bool
vhostmq_settings_run(void)
{
    const struct ovsrec_open_vswitch *cfg;
    bool perms_changed;
    char *dir;

    if (!idl) {
        return false;
    }
    ovsdb_idl_run(idl);
    cfg = ovsrec_open_vswitch_first(idl);
    perms_changed = update_string(&sock_owner,
                                  cfg ? smap_get(&cfg->other_config,
                                                 "vhost-sock-owner") : NULL);
    perms_changed |= update_string(&sock_mode,
                                   cfg ? smap_get(&cfg->other_config,
                                                  "vhost-sock-mode") : NULL);
    if (perms_changed) {
        sock_perms_seq++;
    }
    dir = compute_sock_dir();
    if (!sock_dir || strcmp(dir, sock_dir)) {
        bool changed = sock_dir != NULL || strcmp(dir, ovs_rundir());

        if (changed) {
            VLOG_INFO("vhost-user server sockets go to %s", dir);
        }
        free(sock_dir);
        sock_dir = dir;
        return changed || perms_changed;
    }
    free(dir);
    return perms_changed;
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

static bool
parse_id(const char *s, bool group, long *id)
{
    char *end;

    errno = 0;
    *id = strtol(s, &end, 10);
    if (!errno && *s && !*end && *id >= 0) {
        return true;
    }
    if (group) {
        struct group *gr = getgrnam(s);

        if (gr) {
            *id = gr->gr_gid;
            return true;
        }
    } else {
        struct passwd *pw = getpwnam(s);

        if (pw) {
            *id = pw->pw_uid;
            return true;
        }
    }
    return false;
}

uint64_t
vhostmq_sock_perms_seq(void)
{
    return sock_perms_seq;
}

bool
vhostmq_sock_perms_wanted(void)
{
    return (sock_owner && sock_owner[0]) || (sock_mode && sock_mode[0]);
}

int
vhostmq_apply_sock_perms(int fd, const char *path)
{
    if (sock_owner && sock_owner[0]) {
        char *owner = xstrdup(sock_owner);
        char *colon = strchr(owner, ':');
        long uid = -1, gid = -1;

        if (colon) {
            *colon = '\0';
        }
        if ((owner[0] && !parse_id(owner, false, &uid))
            || (colon && colon[1] && !parse_id(colon + 1, true, &gid))) {
            VLOG_WARN_RL(&rl, "other_config:vhost-sock-owner=\"%s\": no such "
                         "user or group", sock_owner);
            free(owner);
            return EINVAL;
        }
        free(owner);
        /* The file 'fd' refers to itself, not a name. */
        if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH)) {
            int error = errno;

            VLOG_WARN_RL(&rl, "%s: chown: %s", path, ovs_strerror(error));
            return error;
        }
    }
    if (sock_mode && sock_mode[0]) {
        char proc_path[64];
        char *end;
        long mode = strtol(sock_mode, &end, 8);

        if (*end || mode < 0 || mode > 07777) {
            VLOG_WARN_RL(&rl, "other_config:vhost-sock-mode=\"%s\" is not an "
                         "octal mode", sock_mode);
            return EINVAL;
        }
        /* An O_PATH fd allows no fchmod(), and fchmodat() takes no
         * AT_EMPTY_PATH before Linux 6.6.  /proc/self/fd/N leads to the
         * open file itself, not to a name looked up again: chmod() through
         * it changes the very file that 'fd' refers to (as glibc's
         * fchmodat(AT_SYMLINK_NOFOLLOW) does).  Without /proc, the mode is
         * not set (and a warning says why). */
        snprintf(proc_path, sizeof proc_path, "/proc/self/fd/%d", fd);
        if (chmod(proc_path, mode)) {
            int error = errno;

            VLOG_WARN_RL(&rl, "%s: chmod (through %s): %s", path, proc_path,
                         ovs_strerror(error));
            return error;
        }
    }
    return 0;
}
