/*
 * kernel/cpus.h -- the CPUs a process may use, for the kernel's threads.
 * Not installed (sepconv.h has sepconv_usable_cpus and sepconv_thread_count).
 */
#ifndef SEPCONV_CPUS_H
#define SEPCONV_CPUS_H

/* The CPUs the cgroup CPU quotas of this process allow, 0 for no limit,
 * with the file systems read under `root` ("" for the real ones; tests
 * pass a fake tree).  In cpus.c. */
int sepconv_cgroup_cpu_limit(const char *root);
#endif /* SEPCONV_CPUS_H */
