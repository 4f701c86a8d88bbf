/*
 * test_backend.c -- the two backends: tcc in memory (errors, W^X pages,
 * concurrent compiles) and cc with its disk cache (miss then hit without
 * running the compiler, corrupt entries rebuilt, concurrent processes).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests.h"

static const char *const twice_source =
    "int twice(int x) { return 2 * x; }\n"
    "static const int table[4] = {10, 20, 30, 40};\n"
    "int lookup(int i) { return table[i & 3]; }\n";

typedef int (*int_fn)(int);

/* Makes a fresh empty directory under /tmp. */
static void fresh_dir(char *path, size_t capacity, const char *stem)
{
    snprintf(path, capacity, "/tmp/sepconv-%s-XXXXXX", stem);
    ck_assert_ptr_nonnull(mkdtemp(path));
}

/* Counts regular files in a directory whose names end in `suffix`. */
static int count_files(const char *dir, const char *suffix)
{
    char command[512];
    snprintf(command, sizeof command, "ls -A %s | grep -c '%s$' > %s/.count", dir, suffix,
             dir);
    if (system(command) < 0)
        return -1;
    char path[300];
    snprintf(path, sizeof path, "%s/.count", dir);
    FILE *file = fopen(path, "r");
    int count = -1;
    if (file && fscanf(file, "%d", &count) != 1)
        count = -1;
    if (file)
        fclose(file);
    unlink(path);
    return count;
}

/* Removes a directory and everything in it. */
static void remove_dir(const char *dir)
{
    char command[512];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(command), 0);
}

START_TEST(tcc_compiles_and_resolves)
{
    const char *names[] = {"twice", "lookup"};
    sepconv_code *code = NULL;
    sepconv_error error;
    ck_assert_msg(sepconv_tcc_compile(twice_source, strlen(twice_source), names, 2, &code,
                                      &error) == SEPCONV_OK, "%s", error.message);
    int_fn twice = (int_fn)sepconv_code_symbol(code, "twice");
    int_fn lookup = (int_fn)sepconv_code_symbol(code, "lookup");
    ck_assert_int_eq(twice(21), 42);
    ck_assert_int_eq(lookup(6), 30); /* read-only data survives the relocation */
    ck_assert_ptr_null(sepconv_code_symbol(code, "missing"));
    ck_assert_int_eq(sepconv_code_from_cache(code), 0);
    sepconv_code_free(code);
}
END_TEST

START_TEST(tcc_pages_are_never_writable_and_executable)
{
    const char *names[] = {"twice"};
    sepconv_code *code = NULL;
    ck_assert_int_eq(sepconv_tcc_compile(twice_source, strlen(twice_source), names, 1,
                                         &code, NULL), SEPCONV_OK);
    unsigned long address = (unsigned long)sepconv_code_symbol(code, "twice");
    FILE *maps = fopen("/proc/self/maps", "r");
    ck_assert_ptr_nonnull(maps);
    char line[512], permissions[8] = "";
    while (fgets(line, sizeof line, maps)) {
        unsigned long low, high;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &low, &high, perms) == 3 && low <= address &&
            address < high)
            memcpy(permissions, perms, sizeof perms);
    }
    fclose(maps);
    ck_assert_str_eq(permissions, "r-xp");
    sepconv_code_free(code);
}
END_TEST

START_TEST(tcc_reports_errors_and_saves_the_source)
{
    const char *bad = "int f(void) {\n  return undefined_name;\n}\n";
    const char *names[] = {"f"};
    sepconv_code *code = NULL;
    sepconv_error error;
    ck_assert_int_eq(sepconv_tcc_compile(bad, strlen(bad), names, 1, &code, &error),
                     SEPCONV_UNSUPPORTED);
    ck_assert_ptr_null(code);
    ck_assert_ptr_nonnull(strstr(error.message, "tcc: <string>:2: error:"));
    ck_assert_ptr_nonnull(strstr(error.message, "undefined_name"));
    const char *saved = strstr(error.message, "the source is saved as ");
    ck_assert_ptr_nonnull(saved);
    char path[256];
    snprintf(path, sizeof path, "%s", saved + strlen("the source is saved as "));
    FILE *file = fopen(path, "r");
    ck_assert_ptr_nonnull(file);
    char text[128] = "";
    ck_assert_uint_gt(fread(text, 1, sizeof text - 1, file), 0);
    fclose(file);
    ck_assert_str_eq(text, bad);
    unlink(path);
    /* a symbol the code lacks is named */
    const char *missing[] = {"twice", "thrice"};
    ck_assert_int_eq(sepconv_tcc_compile(twice_source, strlen(twice_source), missing, 2,
                                         &code, &error), SEPCONV_TEMPLATE);
    ck_assert_ptr_nonnull(strstr(error.message, "no symbol 'thrice'"));
}
END_TEST

/* A thread that compiles and calls `twice` many times. */
static void *compile_loop(void *argument)
{
    long failures = 0;
    for (int i = 0; i < 50; i++) {
        char source[128];
        snprintf(source, sizeof source, "int twice(int x) { return 2 * x + %d; }\n", i);
        const char *names[] = {"twice"};
        sepconv_code *code = NULL;
        if (sepconv_tcc_compile(source, strlen(source), names, 1, &code, NULL) != SEPCONV_OK)
            failures++;
        else if (((int_fn)sepconv_code_symbol(code, "twice"))(5) != 10 + i)
            failures++;
        sepconv_code_free(code);
    }
    (void)argument;
    return (void *)failures;
}

START_TEST(tcc_compiles_from_many_threads)
{
    pthread_t threads[8];
    for (int t = 0; t < 8; t++)
        ck_assert_int_eq(pthread_create(&threads[t], NULL, compile_loop, NULL), 0);
    long failures = 0;
    for (int t = 0; t < 8; t++) {
        void *result;
        pthread_join(threads[t], &result);
        failures += (long)result;
    }
    ck_assert_int_eq(failures, 0);
}
END_TEST

/* A compiler wrapper that counts the compiles it runs (not --version). */
static void write_counting_compiler(const char *dir, char *path, size_t capacity)
{
    snprintf(path, capacity, "%s/counting-cc", dir);
    FILE *file = fopen(path, "w");
    ck_assert_ptr_nonnull(file);
    fprintf(file, "#!/bin/sh\n"
                  "[ \"$1\" = --version ] || echo compile >> '%s/compiles'\n"
                  "exec cc \"$@\"\n", dir);
    fclose(file);
    chmod(path, 0755);
}

/* Lines in dir/compiles: how often the wrapper compiled. */
static int compiles(const char *dir)
{
    char path[300], line[64];
    snprintf(path, sizeof path, "%s/compiles", dir);
    FILE *file = fopen(path, "r");
    int count = 0;
    while (file && fgets(line, sizeof line, file))
        count++;
    if (file)
        fclose(file);
    return count;
}

/* Compiles twice_source through the cc backend with the given options. */
static sepconv_code *cc_twice(const sepconv_cc_options *options)
{
    sepconv_code *code = NULL;
    sepconv_error error;
    ck_assert_msg(sepconv_cc_compile(twice_source, strlen(twice_source), options, &code,
                                     &error) == SEPCONV_OK, "%s", error.message);
    ck_assert_int_eq(((int_fn)sepconv_code_symbol(code, "twice"))(4), 8);
    return code;
}

START_TEST(cc_cache_miss_then_hit)
{
    char dir[64], cache[128], compiler[128];
    fresh_dir(dir, sizeof dir, "cache");
    snprintf(cache, sizeof cache, "%s/cache", dir);
    write_counting_compiler(dir, compiler, sizeof compiler);
    sepconv_cc_options options = {.compiler = compiler, .flags = "-O1",
                                  .cache_dir = cache};
    sepconv_code *first = cc_twice(&options);
    ck_assert_int_eq(sepconv_code_from_cache(first), 0);
    ck_assert_int_eq(compiles(dir), 1);
    ck_assert_int_eq(count_files(cache, ".so"), 1);
    sepconv_code *second = cc_twice(&options);
    ck_assert_int_eq(sepconv_code_from_cache(second), 1);
    ck_assert_int_eq(compiles(dir), 1); /* the compiler did not run again */
    /* other flags are another entry */
    options.flags = "-O2";
    sepconv_code *third = cc_twice(&options);
    ck_assert_int_eq(sepconv_code_from_cache(third), 0);
    ck_assert_int_eq(compiles(dir), 2);
    sepconv_code_free(first);
    sepconv_code_free(second);
    sepconv_code_free(third);
    remove_dir(dir);
}
END_TEST

/* Overwrites the only cache entry in `cache` with `how`. */
static void damage_entry(const char *cache, const char *how)
{
    char command[512];
    snprintf(command, sizeof command, "cd %s && for f in *.so; do %s; done", cache, how);
    ck_assert_int_eq(system(command), 0);
}

START_TEST(cc_cache_rebuilds_corrupt_entries)
{
    char dir[64], cache[128], compiler[128];
    fresh_dir(dir, sizeof dir, "cache");
    snprintf(cache, sizeof cache, "%s/cache", dir);
    write_counting_compiler(dir, compiler, sizeof compiler);
    sepconv_cc_options options = {.compiler = compiler, .flags = "-O1",
                                  .cache_dir = cache};
    sepconv_code_free(cc_twice(&options));
    const char *damages[] = {
        "truncate -s 1000 $f",                                   /* cut short */
        "head -c 20000 /dev/urandom > $f",                       /* garbage */
        "printf 'x' | dd of=$f bs=1 seek=200 conv=notrunc 2>/dev/null", /* one byte */
        ": > $f"};                                               /* empty */
    for (int d = 0; d < 4; d++) {
        damage_entry(cache, damages[d]);
        sepconv_code *code = cc_twice(&options);
        ck_assert_msg(sepconv_code_from_cache(code) == 0, "damage %d was served", d);
        ck_assert_int_eq(compiles(dir), 2 + d);
        sepconv_code_free(code);
        code = cc_twice(&options); /* and the rebuilt entry serves again */
        ck_assert_int_eq(sepconv_code_from_cache(code), 1);
        sepconv_code_free(code);
    }
    remove_dir(dir);
}
END_TEST

START_TEST(cc_cache_two_processes_at_once)
{
    char dir[64], cache[128];
    fresh_dir(dir, sizeof dir, "cache");
    snprintf(cache, sizeof cache, "%s/cache", dir);
    sepconv_cc_options options = {.flags = "-O1", .cache_dir = cache};
    for (int round = 0; round < 3; round++) {
        pid_t children[2];
        for (int c = 0; c < 2; c++) {
            children[c] = fork();
            ck_assert_int_ge(children[c], 0);
            if (children[c] == 0) {
                sepconv_code *code = NULL;
                int ok = sepconv_cc_compile(twice_source, strlen(twice_source), &options,
                                            &code, NULL) == SEPCONV_OK &&
                         ((int_fn)sepconv_code_symbol(code, "twice"))(3) == 6;
                _exit(ok ? 0 : 1);
            }
        }
        for (int c = 0; c < 2; c++) {
            int status = 0;
            waitpid(children[c], &status, 0);
            ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        ck_assert_int_eq(count_files(cache, ".so"), 1);
        ck_assert_int_eq(count_files(cache, "entry-......"), 0); /* no leftovers */
        damage_entry(cache, "rm $f"); /* start the next round cold */
    }
    remove_dir(dir);
}
END_TEST

START_TEST(cc_cache_can_be_turned_off)
{
    char dir[64], cache[128];
    fresh_dir(dir, sizeof dir, "cache");
    snprintf(cache, sizeof cache, "%s/cache", dir);
    sepconv_cc_options options = {.flags = "-O1", .cache_dir = cache};
    setenv("SEPCONV_CACHE", "off", 1);
    sepconv_code *a = cc_twice(&options), *b = cc_twice(&options);
    unsetenv("SEPCONV_CACHE");
    ck_assert_int_eq(sepconv_code_from_cache(b), 0);
    ck_assert_int_eq(access(cache, F_OK), -1); /* not even created */
    options.no_cache = 1;
    sepconv_code *c = cc_twice(&options);
    ck_assert_int_eq(sepconv_code_from_cache(c), 0);
    sepconv_code_free(a);
    sepconv_code_free(b);
    sepconv_code_free(c);
    /* an unwritable cache directory means no cache, not a failure */
    options.no_cache = 0;
    options.cache_dir = "/proc/sepconv-cache";
    sepconv_code_free(cc_twice(&options));
    remove_dir(dir);
}
END_TEST

START_TEST(cc_errors_name_the_problem)
{
    sepconv_cc_options options = {.compiler = "/nonexistent/bin/cc", .no_cache = 1};
    sepconv_code *code = NULL;
    sepconv_error error;
    ck_assert_int_eq(sepconv_cc_compile(twice_source, strlen(twice_source), &options,
                                        &code, &error), SEPCONV_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(error.message, "cannot run the compiler "
                                                "'/nonexistent/bin/cc'"));
    ck_assert_ptr_nonnull(strstr(error.message, "use the tcc backend"));
    /* the same through the cache path, which asks for --version first */
    options.no_cache = 0;
    options.cache_dir = "/tmp";
    ck_assert_int_eq(sepconv_cc_compile(twice_source, strlen(twice_source), &options,
                                        &code, &error), SEPCONV_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(error.message, "tcc backend"));
    const char *bad = "int f(void) { return nope; }\n";
    sepconv_cc_options plain = {.flags = "-O1", .no_cache = 1};
    ck_assert_int_eq(sepconv_cc_compile(bad, strlen(bad), &plain, &code, &error),
                     SEPCONV_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(error.message, "nope"));
    ck_assert_ptr_nonnull(strstr(error.message, "undeclared"));
    const char *saved = strstr(error.message, "the source is saved as ");
    ck_assert_ptr_nonnull(saved);
    char path[256];
    snprintf(path, sizeof path, "%.*s", (int)strcspn(saved + 23, ":"), saved + 23);
    ck_assert_int_eq(access(path, R_OK), 0);
    unlink(path);
}
END_TEST

Suite *backend_suite(void)
{
    Suite *suite = suite_create("backend");
    TCase *tcc = tcase_create("tcc");
    tcase_set_timeout(tcc, 300);
    tcase_add_test(tcc, tcc_compiles_and_resolves);
    tcase_add_test(tcc, tcc_pages_are_never_writable_and_executable);
    tcase_add_test(tcc, tcc_reports_errors_and_saves_the_source);
    tcase_add_test(tcc, tcc_compiles_from_many_threads);
    suite_add_tcase(suite, tcc);
    TCase *cc = tcase_create("cc");
    tcase_set_timeout(cc, 300);
    tcase_add_test(cc, cc_cache_miss_then_hit);
    tcase_add_test(cc, cc_cache_rebuilds_corrupt_entries);
    tcase_add_test(cc, cc_cache_two_processes_at_once);
    tcase_add_test(cc, cc_cache_can_be_turned_off);
    tcase_add_test(cc, cc_errors_name_the_problem);
    suite_add_tcase(suite, cc);
    return suite;
}
