/* fsinfo.c — file system provenance and page-cache drops (fsinfo.h). */
#include "fileio/fsinfo.h"

#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

static const struct {
    unsigned long magic;
    const char *name;
} fs_types[] = {
    {0xEF53, "ext4"},      {0x58465342, "xfs"},      {0x9123683E, "btrfs"},
    {0x01021994, "tmpfs"}, {0x6969, "nfs"},          {0x0BD00BD0, "lustre"},
    {0x47504653, "gpfs"},  {0x19830326, "beegfs"},   {0x00C36400, "ceph"},
    {0x2FC12FC1, "zfs"},   {0x65735546, "fuse"},     {0x794C7630, "overlay"},
    {0x858458F6, "ramfs"}, {0x5346414F, "afs"},      {0xFF534D42, "cifs"},
    {0xF2F52010, "f2fs"},  {0x73717368, "squashfs"}, {0x62656572, "sysfs"},
    {0x9FA0, "proc"},      {0x01021997, "v9fs"},     {0x6E667364, "nfsd"},
    {0xAAD7AAEA, "panfs"}, {0x5A3C69F0, "aufs"},     {0x4D44, "vfat"},
};

const char *fx_fs_type_name(unsigned long type)
{
    for (size_t i = 0; i < SONDE_ARRAY_LEN(fs_types); i++)
        if (fs_types[i].magic == (type & 0xFFFFFFFFUL))
            return fs_types[i].name;
    return NULL;
}

/* mountinfo escapes blanks and backslashes as \ooo: decoded in place. */
static void unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 3;
        } else
            *w++ = *r;
    }
    *w = '\0';
}

/* Whether mount point m holds path p ("/" holds everything). */
static size_t holds(const char *m, const char *p)
{
    size_t n = strlen(m);
    if (n == 1 && m[0] == '/')
        return 1;
    return !strncmp(m, p, n) && (p[n] == '/' || p[n] == '\0') ? n : 0;
}

int fx_mountinfo_find(const char *text, const char *path, struct fx_fsinfo *out)
{
    size_t best = 0;
    char *copy = xstrdup(text), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        /* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER */
        char *t[64], *s2 = NULL;
        int n = 0, dash = -1;
        for (char *w = strtok_r(line, " ", &s2); w && n < 64; w = strtok_r(NULL, " ", &s2)) {
            if (dash < 0 && n >= 6 && !strcmp(w, "-"))
                dash = n;
            t[n++] = w;
        }
        if (dash < 0 || dash + 2 >= n)
            continue;
        unescape(t[4]);
        size_t len = holds(t[4], path);
        if (!len || len < best)
            continue;
        best = len;
        unescape(t[dash + 2]);
        const char *super = dash + 3 < n ? t[dash + 3] : NULL;
        snprintf(out->mount, sizeof(out->mount), "%s", t[4]);
        snprintf(out->source, sizeof(out->source), "%s", t[dash + 2]);
        snprintf(out->options, sizeof(out->options), "%s%s%s", t[5], super ? "," : "",
                 super ? super : "");
        snprintf(out->type, sizeof(out->type), "%s", t[dash + 1]);
    }
    free(copy);
    return best ? 0 : -ENOENT;
}

int fx_fs_describe(const char *path, struct fx_fsinfo *out)
{
    memset(out, 0, sizeof(*out));
    struct statfs sf;
    struct statvfs sv;
    if (statfs(path, &sf) < 0 || statvfs(path, &sv) < 0)
        return -errno;
    out->free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
    out->total_bytes = (uint64_t)sv.f_blocks * sv.f_frsize;
    char *abs = realpath(path, NULL), *text = NULL;
    size_t len = 0;
    if (abs && read_file("/proc/self/mountinfo", 4 << 20, &text, &len) == 0)
        fx_mountinfo_find(text, abs, out);
    free(text);
    free(abs);
    const char *name = fx_fs_type_name((unsigned long)sf.f_type);
    if (name) /* statfs's answer is the one I/O goes to (mountinfo may say "fuse.x") */
        snprintf(out->type, sizeof(out->type), "%s", name);
    else if (!out->type[0])
        snprintf(out->type, sizeof(out->type), "0x%lx", (unsigned long)sf.f_type);
    return 0;
}

int fx_drop_caches(char *err, size_t n)
{
    sync();
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "3\n", 2) != 2) {
        int e = errno;
        snprintf(err, n, "cannot drop the page cache (/proc/sys/vm/drop_caches): %s", strerror(e));
        if (fd >= 0)
            close(fd);
        return -(e == EPERM ? EACCES : e);
    }
    close(fd);
    return 0;
}
