/*
 * cpus.c -- how many CPUs this process may use: its affinity mask, within
 * the CFS quota of its cgroups (v1 and v2), so the default thread count of a
 * kernel fits a container or a `taskset`, not the machine.
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT_S */
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "kernel/cpus.h"

/* The longest line read from /proc/self/cgroup or a cgroup file. */
#define CGROUP_LINE_MAX 1024
/* The deepest cgroup path walked up (a loop bound; real paths are short). */
#define CGROUP_DEPTH_MAX 64
/* The largest CPU set asked of sched_getaffinity, in CPUs. */
#define AFFINITY_CPUS_MAX (1 << 16)

/* The CPUs a CFS quota allows: quota / period rounded up; 0 for none. */
static int quota_cpus(long long quota, long long period)
{
    if (quota <= 0 || period <= 0)
        return 0;
    long long cpus = quota / period + (quota % period != 0);
    return cpus > INT_MAX ? INT_MAX : (int)cpus;
}

/* The smaller of two limits where 0 means none. */
static int tighter(int a, int b)
{
    return a == 0 ? b : b == 0 ? a : a < b ? a : b;
}

/* Reads the first line of a file; false if it cannot be read. */
static bool read_line(const char *path, char *line, size_t capacity)
{
    FILE *file = fopen(path, "r");
    if (!file)
        return false;
    bool ok = fgets(line, (int)capacity, file) != NULL;
    fclose(file);
    return ok;
}

/* Joins a directory and a file name; false if the path does not fit. */
static bool join(char *path, size_t capacity, const char *directory, const char *name)
{
    int length = snprintf(path, capacity, "%s/%s", directory, name);
    return length >= 0 && (size_t)length < capacity;
}

/* The limit set in one cgroup directory: v2's cpu.max ("max 100000" or
 * "150000 100000") or v1's cpu.cfs_quota_us and cpu.cfs_period_us. */
static int directory_limit(const char *directory, int version)
{
    char path[PATH_MAX], line[CGROUP_LINE_MAX];
    long long quota = 0, period = 0;
    if (version == 2) {
        if (!join(path, sizeof path, directory, "cpu.max") ||
            !read_line(path, line, sizeof line) ||
            sscanf(line, "%lld %lld", &quota, &period) != 2)
            return 0; /* "max": no limit */
        return quota_cpus(quota, period);
    }
    if (!join(path, sizeof path, directory, "cpu.cfs_quota_us") ||
        !read_line(path, line, sizeof line) || sscanf(line, "%lld", &quota) != 1)
        return 0;
    if (!join(path, sizeof path, directory, "cpu.cfs_period_us") ||
        !read_line(path, line, sizeof line) || sscanf(line, "%lld", &period) != 1)
        return 0;
    return quota_cpus(quota, period); /* a quota of -1: no limit */
}

/* The tightest limit of a cgroup and its ancestors under a mount.  A
 * container often has its own cgroup mounted as the root, so a part of the
 * path may not exist: those directories give no limit. */
static int hierarchy_limit(const char *mount, const char *cgroup, int version)
{
    char directory[PATH_MAX];
    if (snprintf(directory, sizeof directory, "%s%s", mount, cgroup) >=
        (int)sizeof directory)
        return 0;
    size_t root = strlen(mount);
    int tightest = 0;
    for (int depth = 0; depth < CGROUP_DEPTH_MAX; depth++) {
        tightest = tighter(tightest, directory_limit(directory, version));
        char *slash = strrchr(directory + root, '/');
        if (!slash)
            break;
        *slash = '\0';
    }
    return tightest;
}

/* Whether a comma-separated controller list ("cpu,cpuacct") has `name`. */
static bool has_controller(const char *list, const char *name)
{
    size_t length = strlen(name);
    for (const char *at = list;; at++) {
        size_t token = strcspn(at, ",");
        if (token == length && strncmp(at, name, length) == 0)
            return true;
        at += token;
        if (*at == '\0')
            return false;
    }
}

/* The CPUs the cgroup quotas of this process allow (v2 cpu.max, v1 CFS
 * quota, over the cgroup and its ancestors), read under `root`: "" for the
 * real file systems, a directory for a test's fake tree; 0 for no limit. */
int sepconv_cgroup_cpu_limit(const char *root)
{
    static const char *const v1_mounts[] = {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct",
                                            "/sys/fs/cgroup/cpuacct,cpu"};
    static const char *const v2_mounts[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"};
    char path[PATH_MAX], line[CGROUP_LINE_MAX], mount[PATH_MAX];
    FILE *file = join(path, sizeof path, root, "proc/self/cgroup") ? fopen(path, "r")
                                                                    : NULL;
    if (!file)
        return 0;
    int tightest = 0;
    while (fgets(line, sizeof line, file)) {
        /* "hierarchy:controllers:path"; v2 is hierarchy 0, no controllers */
        char *first = strchr(line, ':'), *second = first ? strchr(first + 1, ':') : NULL;
        if (!second)
            continue;
        *first = *second = '\0';
        char *cgroup = second + 1;
        cgroup[strcspn(cgroup, "\n")] = '\0';
        int version = strcmp(line, "0") == 0 && first + 1 == second ? 2
                      : has_controller(first + 1, "cpu")            ? 1 : 0;
        const char *const *mounts = version == 2 ? v2_mounts : v1_mounts;
        size_t count = version == 2 ? 2 : version == 1 ? 3 : 0;
        for (size_t i = 0; i < count; i++) {
            if (snprintf(mount, sizeof mount, "%s%s", root, mounts[i]) < (int)sizeof mount)
                tightest = tighter(tightest, hierarchy_limit(mount, cgroup, version));
        }
    }
    fclose(file);
    return tightest;
}

/* The CPUs the calling thread may run on (sched_getaffinity); 0 if unknown. */
static int affinity_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        return CPU_COUNT(&set);
    /* EINVAL: the kernel has more CPUs than a cpu_set_t holds */
    for (int cpus = 2 * CPU_SETSIZE; cpus <= AFFINITY_CPUS_MAX; cpus *= 2) {
        cpu_set_t *big = CPU_ALLOC(cpus);
        if (!big)
            return 0;
        size_t bytes = CPU_ALLOC_SIZE(cpus);
        int count = sched_getaffinity(0, bytes, big) == 0 ? CPU_COUNT_S(bytes, big) : 0;
        CPU_FREE(big);
        if (count > 0)
            return count;
    }
    return 0;
}

/* The CPUs this process may use: the calling thread's affinity mask
 * (sched_getaffinity), within its cgroup's CPU quota (v2 cpu.max, v1
 * cpu.cfs_quota_us), rounded up; at least 1.  What threads = 0 means. */
int sepconv_usable_cpus(void)
{
    int cpus = affinity_cpus();
    if (cpus <= 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        cpus = online > 0 && online < INT_MAX ? (int)online : 1;
    }
    return tighter(cpus, sepconv_cgroup_cpu_limit(""));
}

/* The threads options.threads gives a kernel: 0 means every usable CPU, and
 * a request beyond them is capped to them, because pool threads that share
 * a CPU wait for each other (8 threads on 2 CPUs ran 4x slower than one). */
int sepconv_thread_count(int requested)
{
    if (requested == 1)
        return 1;
    int usable = sepconv_usable_cpus();
    return requested <= 0 || requested > usable ? usable : requested;
}
