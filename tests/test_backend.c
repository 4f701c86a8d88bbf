/*
 * test_backend.c -- the two backends: tcc in memory (errors, W^X pages,
 * concurrent compiles) and cc with its disk cache (miss then hit without
 * running the compiler, corrupt entries rebuilt, concurrent processes).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
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
    ck_assert_msg(sepconv_tcc_compile(twice_source, strlen(twice_source),
                                      SEPCONV_TARGET_PORTABLE, names, 2, &code,
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
    ck_assert_int_eq(sepconv_tcc_compile(twice_source, strlen(twice_source),
                                      SEPCONV_TARGET_PORTABLE, names, 1,
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
    ck_assert_int_eq(sepconv_tcc_compile(bad, strlen(bad), SEPCONV_TARGET_PORTABLE, names, 1,
                                         &code, &error),
                     SEPCONV_COMPILE);
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
    ck_assert_int_eq(sepconv_tcc_compile(twice_source, strlen(twice_source),
                                      SEPCONV_TARGET_PORTABLE, missing, 2,
                                         &code, &error), SEPCONV_COMPILE);
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
        if (sepconv_tcc_compile(source, strlen(source), SEPCONV_TARGET_PORTABLE, names, 1,
                                &code, NULL) != SEPCONV_OK)
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

/* A compiler wrapper that counts the compiles it runs (not its queries:
 * --version, the predefined macros) and, when $SEPCONV_TEST_MARCH is set,
 * compiles -march=native as -march=$SEPCONV_TEST_MARCH: another CPU. */
static void write_counting_compiler(const char *dir, char *path, size_t capacity)
{
    snprintf(path, capacity, "%s/counting-cc", dir);
    FILE *file = fopen(path, "w");
    ck_assert_ptr_nonnull(file);
    fprintf(file, "#!/bin/sh\n"
                  "case \" $* \" in *\" -shared \"*) echo compile >> '%s/compiles';; esac\n"
                  "for a in \"$@\"; do\n"
                  "  shift\n"
                  "  if [ \"$a\" = -march=native ] && [ -n \"$SEPCONV_TEST_MARCH\" ]; then\n"
                  "    a=-march=$SEPCONV_TEST_MARCH\n"
                  "  fi\n"
                  "  set -- \"$@\" \"$a\"\n"
                  "done\n"
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
                     SEPCONV_COMPILE);
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

/* ------------------------------------------------- bounded, named, contained */

/* A compiler that hangs on every compile (queries go to cc): it records its
 * PID and that of a child it waits for (as gcc waits for cc1) in dir. */
static void write_hanging_compiler(const char *dir, char *path, size_t capacity)
{
    snprintf(path, capacity, "%s/hanging-cc", dir);
    char text[1024];
    snprintf(text, sizeof text,
             "#!/bin/sh\n"
             "case \" $* \" in *\" -shared \"*)\n"
             "  echo $$ > '%s/compiler.pid'\n"
             "  sleep 40 &\n"
             "  echo $! > '%s/sleeper.tmp' && mv '%s/sleeper.tmp' '%s/sleeper.pid'\n"
             "  wait\n"
             "  exit 1;;\n"
             "esac\n"
             "exec cc \"$@\"\n", dir, dir, dir, dir);
    write_script(path, text);
}

/* Reads a PID from dir/name, waiting up to `seconds` for the file. */
static pid_t read_pid(const char *dir, const char *name, int seconds)
{
    char path[300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    for (int look = 0; look < seconds * 20; look++) {
        FILE *file = fopen(path, "r");
        long pid = 0;
        bool got = file && fscanf(file, "%ld", &pid) == 1;
        if (file)
            fclose(file);
        if (got && pid > 0)
            return (pid_t)pid;
        usleep(50000);
    }
    return -1;
}

/* Whether a process is gone (or a zombie nobody reaped yet), waiting up to
 * five seconds for it to die. */
static bool process_gone(pid_t pid)
{
    for (int look = 0; look < 100; look++) {
        char path[64], stat_text[256] = "";
        snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
        FILE *file = fopen(path, "r");
        if (!file)
            return true;
        bool read = fgets(stat_text, sizeof stat_text, file) != NULL;
        fclose(file);
        const char *state = strrchr(stat_text, ')');
        if (read && state && (state[2] == 'Z' || state[2] == 'X'))
            return true;
        usleep(50000);
    }
    return false;
}

/* How many names in `dir` start with `prefix`. */
static int count_prefixed(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int count = 0;
    for (struct dirent *entry; (entry = readdir(d));)
        count += strncmp(entry->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return count;
}

/* The path after "saved as " in a message, up to a ',', ')', ':' or ';'. */
static void saved_path(const char *message, char *path, size_t capacity)
{
    const char *saved = strstr(message, "saved as ");
    ck_assert_msg(saved != NULL, "no saved source in: %s", message);
    saved += strlen("saved as ");
    snprintf(path, capacity, "%.*s", (int)strcspn(saved, ",):;"), saved);
}

START_TEST(cc_compile_has_a_time_limit)
{
    char dir[64], tmp[128], compiler[128];
    fresh_dir(dir, sizeof dir, "limit");
    snprintf(tmp, sizeof tmp, "%s/tmp", dir);
    ck_assert_int_eq(mkdir(tmp, 0700), 0);
    write_hanging_compiler(dir, compiler, sizeof compiler);
    setenv("TMPDIR", tmp, 1);
    /* long enough for the compiler queries before the compile and for the
     * script to start its sleeper (under qemu in CI, 1 s was not) */
    const int limit = 2 * emulation_factor();
    sepconv_cc_options options = {.compiler = compiler, .flags = "-O1",
                                  .timeout_seconds = limit, .no_cache = 1};
    sepconv_code *code = NULL;
    sepconv_error error;
    sepconv_status status = sepconv_cc_compile(twice_source, strlen(twice_source),
                                               &options, &code, &error);
    unsetenv("TMPDIR");
    ck_assert_msg(status == SEPCONV_LIMIT, "%d: %s", status, error.message);
    ck_assert_ptr_null(code);
    char expected[64];
    snprintf(expected, sizeof expected, "did not finish within the %d s compile limit", limit);
    ck_assert_msg(strstr(error.message, expected), "%s", error.message);
    ck_assert_ptr_nonnull(strstr(error.message, "byte source"));
    ck_assert_ptr_nonnull(strstr(error.message, "--cc-timeout"));
    char kept[256];
    saved_path(error.message, kept, sizeof kept);
    ck_assert_msg(strncmp(kept, tmp, strlen(tmp)) == 0, "%s", kept);
    ck_assert_int_eq(access(kept, R_OK), 0);
    unlink(kept);
    /* the compiler and the child it waited for were killed: its group */
    pid_t leader = read_pid(dir, "compiler.pid", 1);
    pid_t sleeper = read_pid(dir, "sleeper.pid", 1);
    ck_assert_int_gt(leader, 0);
    ck_assert_int_gt(sleeper, 0);
    ck_assert(process_gone(leader));
    ck_assert(process_gone(sleeper));
    ck_assert_int_eq(count_prefixed(tmp, "sepconv-cc-"), 0);
    /* a limit that is no number of seconds is refused */
    options.timeout_seconds = -2;
    ck_assert_int_eq(sepconv_cc_compile(twice_source, strlen(twice_source), &options,
                                        &code, &error), SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "timeout_seconds=-2"));
    remove_dir(dir);
}
END_TEST

/* A thread that compiles with the hanging compiler; returns the status. */
static void *hanging_compile(void *argument)
{
    const sepconv_cc_options *options = argument;
    sepconv_code *code = NULL;
    static sepconv_error error;
    return (void *)(long)sepconv_cc_compile(twice_source, strlen(twice_source), options,
                                            &code, &error);
}

START_TEST(cc_kill_all_stops_running_compilers)
{
    char dir[64], tmp[128], compiler[128];
    fresh_dir(dir, sizeof dir, "killall");
    snprintf(tmp, sizeof tmp, "%s/tmp", dir);
    ck_assert_int_eq(mkdir(tmp, 0700), 0);
    write_hanging_compiler(dir, compiler, sizeof compiler);
    setenv("TMPDIR", tmp, 1);
    sepconv_cc_options options = {.compiler = compiler, .flags = "-O1", .no_cache = 1,
                                  .save_dir = dir};
    pthread_t thread;
    ck_assert_int_eq(pthread_create(&thread, NULL, hanging_compile, &options), 0);
    pid_t sleeper = read_pid(dir, "sleeper.pid", 30);
    pid_t leader = read_pid(dir, "compiler.pid", 1);
    ck_assert_int_gt(sleeper, 0);
    ck_assert_int_eq(count_prefixed(tmp, "sepconv-cc-"), 1); /* it is there meanwhile */
    sepconv_cc_kill_all();
    /* gone long before the 40 s sleep would end, while the thread waits */
    ck_assert(process_gone(sleeper));
    ck_assert(process_gone(leader));
    void *result;
    pthread_join(thread, &result);
    unsetenv("TMPDIR");
    ck_assert_int_eq((long)result, SEPCONV_COMPILE); /* killed: a failed compile */
    ck_assert_int_eq(count_prefixed(tmp, "sepconv-cc-"), 0);
    remove_dir(dir);
}
END_TEST

START_TEST(cc_sigterm_to_the_cli_kills_its_compiler)
{
    const char *cli = getenv("SEPCONV_CLI");
    ck_assert_msg(cli != NULL, "SEPCONV_CLI is not set (run through make test)");
    char dir[64], tmp[128], compiler[128];
    fresh_dir(dir, sizeof dir, "sigterm");
    snprintf(tmp, sizeof tmp, "%s/tmp", dir);
    ck_assert_int_eq(mkdir(tmp, 0700), 0);
    write_hanging_compiler(dir, compiler, sizeof compiler);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        setenv("CC", compiler, 1);
        setenv("TMPDIR", tmp, 1);
        setenv("SEPCONV_CACHE", "off", 1);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execl(cli, cli, "jit", "op=dw", "df=6", "m=8", "dk=3", "--backend", "cc",
              (char *)NULL);
        _exit(127);
    }
    pid_t sleeper = read_pid(dir, "sleeper.pid", 60);
    pid_t leader = read_pid(dir, "compiler.pid", 1);
    ck_assert_int_gt(sleeper, 0);
    ck_assert_int_eq(kill(child, SIGTERM), 0);
    int status = 0;
    pid_t waited = 0;
    for (int look = 0; look < 400 && waited == 0; look++) {
        waited = waitpid(child, &status, WNOHANG);
        if (waited == 0)
            usleep(50000);
    }
    if (waited == 0) {
        kill(child, SIGKILL);
        waitpid(child, &status, 0);
        ck_abort_msg("sepconv did not end within 20 s of SIGTERM");
    }
    /* it died of the signal, as a program without a handler would */
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
    ck_assert(process_gone(leader));
    ck_assert(process_gone(sleeper));
    ck_assert_int_eq(count_prefixed(tmp, "sepconv-cc-"), 0);
    remove_dir(dir);
}
END_TEST

/* A thread of concurrent compiles, each with flags of its own. */
static void *flag_compile(void *argument)
{
    long k = (long)argument, wrong = 0;
    for (int round = 0; round < 2; round++) {
        char flags[64];
        snprintf(flags, sizeof flags, "-O0\t-DVALUE=%ld -DROUND=%d", k, round);
        const char *source = "int value(void) { return VALUE * 10 + ROUND; }\n";
        /* (six compilers at once on two cores: under qemu one took past the
         * 30 s default, so the limit scales with the emulation) */
        sepconv_cc_options options = {.flags = flags, .no_cache = 1,
                                      .timeout_seconds = 30.0 * emulation_factor()};
        sepconv_code *code = NULL;
        sepconv_error error;
        int got = 0;
        if (sepconv_cc_compile(source, strlen(source), &options, &code, &error) != SEPCONV_OK) {
            fprintf(stderr, "flag_compile %ld/%d: %s\n", k, round, error.message);
            wrong++;
        } else if ((got = ((int (*)(void))sepconv_code_symbol(code, "value"))()) !=
                   k * 10 + round) {
            fprintf(stderr, "flag_compile %ld/%d: value %d, expected %ld\n", k, round, got,
                    k * 10 + round);
            wrong++;
        }
        sepconv_code_free(code);
    }
    return (void *)wrong;
}

START_TEST(cc_flags_are_split_into_words_per_compile)
{
    /* any white space separates flags, so the check sees every flag */
    const char *unsafe[] = {"-O2\t-ffast-math", "-O2\n-ffast-math", "-ffast-math\r"};
    for (int i = 0; i < 3; i++) {
        sepconv_cc_options options = {.flags = unsafe[i], .no_cache = 1};
        sepconv_code *code = NULL;
        sepconv_error error;
        ck_assert_int_eq(sepconv_cc_compile(twice_source, strlen(twice_source), &options,
                                            &code, &error), SEPCONV_INVALID);
        ck_assert_ptr_nonnull(strstr(error.message, "the flag -ffast-math breaks IEEE"));
    }
    /* threads compiling at once each get their own flags */
    pthread_t threads[6];
    for (long t = 0; t < 6; t++)
        ck_assert_int_eq(pthread_create(&threads[t], NULL, flag_compile, (void *)(t + 1)),
                         0);
    long wrong = 0;
    for (int t = 0; t < 6; t++) {
        void *result;
        pthread_join(threads[t], &result);
        wrong += (long)result;
    }
    ck_assert_int_eq(wrong, 0);
}
END_TEST

START_TEST(cc_failed_sources_are_kept_apart)
{
    char dir[64];
    fresh_dir(dir, sizeof dir, "failed");
    const char *bad[] = {"int f(void) { return first_bug; }\n",
                         "int g(void) { return second_bug; }\n"};
    char kept[2][256];
    for (int i = 0; i < 2; i++) {
        sepconv_cc_options options = {.flags = "-O1", .no_cache = 1, .save_dir = dir};
        sepconv_code *code = NULL;
        sepconv_error error;
        ck_assert_int_eq(sepconv_cc_compile(bad[i], strlen(bad[i]), &options, &code,
                                            &error), SEPCONV_COMPILE);
        saved_path(error.message, kept[i], sizeof kept[i]);
    }
    ck_assert_str_ne(kept[0], kept[1]);
    for (int i = 0; i < 2; i++) {
        FILE *file = fopen(kept[i], "r");
        ck_assert_ptr_nonnull(file);
        char text[128] = "";
        ck_assert_uint_gt(fread(text, 1, sizeof text - 1, file), 0);
        fclose(file);
        ck_assert_str_eq(text, bad[i]); /* each file holds its own source */
    }
    remove_dir(dir);
}
END_TEST

START_TEST(cc_compiler_command_may_have_words)
{
    sepconv_cc_options options = {.compiler = "env  cc", .flags = "-O1", .no_cache = 1};
    sepconv_code_free(cc_twice(&options));
    /* $CC too, through the cache path (which asks --version) */
    char dir[64], cache[128];
    fresh_dir(dir, sizeof dir, "words");
    snprintf(cache, sizeof cache, "%s/cache", dir);
    setenv("CC", "env cc", 1);
    sepconv_cc_options from_env = {.flags = "-O1", .cache_dir = cache};
    sepconv_code *code = cc_twice(&from_env);
    char identity[128];
    sepconv_error error;
    ck_assert_int_eq(sepconv_cc_identity(&from_env, identity, sizeof identity, &error),
                     SEPCONV_OK);
    /* a missing first word is named as such */
    setenv("CC", "/nonexistent/ccache cc", 1);
    sepconv_code *none = NULL;
    ck_assert_int_eq(sepconv_cc_compile(twice_source, strlen(twice_source), &from_env,
                                        &none, &error), SEPCONV_UNSUPPORTED);
    unsetenv("CC");
    ck_assert_ptr_nonnull(strstr(error.message, "cannot run '/nonexistent/ccache' of the "
                                                "compiler command"));
    ck_assert_int_eq(count_files(cache, ".so"), 1);
    sepconv_code_free(code);
    remove_dir(dir);
}
END_TEST

/* Compiles twice_source in a child process (fresh per-process compiler
 * facts, as on another machine) with $SEPCONV_TEST_MARCH = march and
 * SEPCONV_CPU_HIDE = hide if not NULL; checks the status and, on success,
 * whether it was a cache hit, or that the message names `named`. */
static void compile_elsewhere(const sepconv_cc_options *options, const char *march,
                              const char *hide, sepconv_status expected,
                              int from_cache, const char *named)
{
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        setenv("SEPCONV_TEST_MARCH", march, 1);
        if (hide)
            setenv("SEPCONV_CPU_HIDE", hide, 1);
        sepconv_code *code = NULL;
        sepconv_error error = {0};
        sepconv_status status = sepconv_cc_compile(twice_source, strlen(twice_source),
                                                   options, &code, &error);
        bool ok = status == expected;
        if (ok && status == SEPCONV_OK)
            ok = sepconv_code_from_cache(code) == from_cache &&
                 ((int_fn)sepconv_code_symbol(code, "twice"))(5) == 10;
        if (ok && named)
            ok = strstr(error.message, named) != NULL;
        if (!ok)
            fprintf(stderr, "march %s: status %d, from cache %d: %s\n", march, status,
                    sepconv_code_from_cache(code), error.message);
        sepconv_code_free(code);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "march %s", march);
}

START_TEST(cc_cache_keys_on_what_the_flags_resolve_to)
{
#if !defined(__x86_64__)
    fprintf(stderr, "SKIPPED: backend: cc cache keys on -march=x86-64-v2/v3/v4 and the "
                    "avx2/avx512 refusals: x86 flags, not this architecture\n");
    return;
#endif
    char dir[64], cache[128], compiler[128];
    fresh_dir(dir, sizeof dir, "resolve");
    snprintf(cache, sizeof cache, "%s/cache", dir);
    write_counting_compiler(dir, compiler, sizeof compiler);
    /* the same flag text, resolved for two CPUs by the wrapper */
    sepconv_cc_options options = {.compiler = compiler, .flags = "-O1 -march=native",
                                  .cache_dir = cache};
    compile_elsewhere(&options, "x86-64-v3", NULL, SEPCONV_OK, 0, NULL);
    compile_elsewhere(&options, "x86-64-v3", NULL, SEPCONV_OK, 1, NULL);
    ck_assert_int_eq(compiles(dir), 1);
    compile_elsewhere(&options, "x86-64-v2", NULL, SEPCONV_OK, 0, NULL); /* not a hit */
    ck_assert_int_eq(compiles(dir), 2);
    ck_assert_int_eq(count_files(cache, ".so"), 2);
    compile_elsewhere(&options, "x86-64-v2", NULL, SEPCONV_OK, 1, NULL);
    /* code for AVX-512 on a CPU without it is refused, not loaded */
    compile_elsewhere(&options, "x86-64-v4", "avx512", SEPCONV_UNSUPPORTED, 0,
                      "needs avx512");
    options.no_cache = 1;
    compile_elsewhere(&options, "x86-64-v4", "avx512", SEPCONV_UNSUPPORTED, 0,
                      "needs avx512");
    /* and code for AVX2 on a CPU without AVX2 */
    compile_elsewhere(&options, "x86-64-v3", "avx2", SEPCONV_UNSUPPORTED, 0,
                      "needs avx2, which this CPU lacks");
    ck_assert_int_eq(compiles(dir), 2);
    remove_dir(dir);
}
END_TEST

/* Whether the space-separated list `words` holds `word`. */
static bool has_word(const char *words, const char *word)
{
    size_t length = strlen(word);
    for (const char *at = words; (at = strstr(at, word)) != NULL; at += length)
        if ((at == words || at[-1] == ' ') && (at[length] == ' ' || at[length] == '\0'))
            return true;
    return false;
}

START_TEST(environment_features_leave_out_what_is_hidden)
{
    sepconv_kernel_options options = sepconv_kernel_defaults();
    sepconv_environment seen, hidden;
    unsetenv("SEPCONV_CPU_HIDE");
    ck_assert_int_eq(sepconv_environment_get(&options, &seen, NULL), SEPCONV_OK);
    if (!has_word(seen.features, "avx2")) {
        fprintf(stderr, "SKIPPED: backend: hidden features in the environment: the CPU "
                        "reports no avx2 (features \"%s\")\n", seen.features);
        return;
    }
    /* a record measured with AVX-512 hidden says so in its features */
    setenv("SEPCONV_CPU_HIDE", "avx512", 1);
    ck_assert_int_eq(sepconv_environment_get(&options, &hidden, NULL), SEPCONV_OK);
    ck_assert_msg(!strstr(hidden.features, "avx512"), "%s", hidden.features);
    ck_assert_msg(has_word(hidden.features, "avx2") && has_word(hidden.features, "fma"), "%s",
                  hidden.features);
    /* one word hides one feature, the others stay */
    setenv("SEPCONV_CPU_HIDE", "avx2", 1);
    ck_assert_int_eq(sepconv_environment_get(&options, &hidden, NULL), SEPCONV_OK);
    unsetenv("SEPCONV_CPU_HIDE");
    ck_assert_msg(!has_word(hidden.features, "avx2"), "%s", hidden.features);
    ck_assert_msg(has_word(hidden.features, "fma") == has_word(seen.features, "fma"), "%s",
                  hidden.features);
    ck_assert_msg(has_word(hidden.features, "avx512f") == has_word(seen.features, "avx512f"),
                  "%s vs %s", hidden.features, seen.features);
    ck_assert_str_eq(hidden.cpu, seen.cpu);
}
END_TEST

START_TEST(cc_objects_import_nothing)
{
    char dir[64], marker[128];
    fresh_dir(dir, sizeof dir, "imports");
    snprintf(marker, sizeof marker, "%s/marker", dir);
    /* a constructor would run at load time, before any kernel call */
    char source[512];
    snprintf(source, sizeof source,
             "int system(const char *);\n"
             "__attribute__((constructor)) static void early(void) "
             "{ system(\"touch %s\"); }\n"
             "int twice(int x) { return 2 * x; }\n", marker);
    sepconv_cc_options options = {.flags = "-O1", .no_cache = 1, .save_dir = dir};
    sepconv_code *code = NULL;
    sepconv_error error;
    ck_assert_int_eq(sepconv_cc_compile(source, strlen(source), &options, &code, &error),
                     SEPCONV_UNSUPPORTED);
    ck_assert_ptr_null(code);
    ck_assert_ptr_nonnull(strstr(error.message, "imports system"));
    ck_assert_int_eq(access(marker, F_OK), -1);
    /* the four functions compilers call on their own are allowed */
    const char *copying = "void *memcpy(void *, const void *, unsigned long);\n"
                          "int twice(int x) { int y; memcpy(&y, &x, sizeof y); "
                          "return 2 * y; }\n";
    options.flags = "-O1 -fno-builtin"; /* a real call, not an inlined copy */
    ck_assert_msg(sepconv_cc_compile(copying, strlen(copying), &options, &code, &error) ==
                  SEPCONV_OK, "%s", error.message);
    ck_assert_int_eq(((int_fn)sepconv_code_symbol(code, "twice"))(4), 8);
    sepconv_code_free(code);
    /* a template whose kernel calls system() */
    char templates[64];
    char bug[256];
    snprintf(bug, sizeof bug,
             "    { extern int system(const char *); system(\"touch %s\"); }\n", marker);
    write_buggy_templates(templates, sizeof templates, bug);
    sepconv_layer layer = parse_layer("op=dw df=6 m=4 dk=3");
    sepconv_kernel_options kernel_options = sepconv_kernel_defaults();
    kernel_options.backend = SEPCONV_BACKEND_CC;
    kernel_options.cc.flags = "-O1";
    kernel_options.cc.no_cache = 1;
    kernel_options.cc.save_dir = dir;
    kernel_options.generate.template_dir = templates;
    sepconv_kernel *kernel = NULL;
    ck_assert_int_eq(sepconv_kernel_create(&layer, &kernel_options, &kernel, &error),
                     SEPCONV_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(error.message, "imports system"));
    ck_assert_int_eq(access(marker, F_OK), -1);
    remove_dir(templates);
    remove_dir(dir);
}
END_TEST

START_TEST(cc_read_only_cache_serves_hits)
{
    char dir[64], cache[128], compiler[128];
    fresh_dir(dir, sizeof dir, "readonly");
    ck_assert_int_eq(chmod(dir, 0755), 0);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    write_counting_compiler(dir, compiler, sizeof compiler);
    sepconv_cc_options options = {.compiler = compiler, .flags = "-O1",
                                  .cache_dir = cache};
    sepconv_code_free(cc_twice(&options));
    /* published read-only for others, as an administrator might */
    damage_entry(cache, "chmod 0644 $f");
    ck_assert_int_eq(chmod(cache, 0555), 0);
    ck_assert_int_eq(chmod(dir, 0777), 0); /* the wrapper's count, as another user */
    char count_path[300];
    snprintf(count_path, sizeof count_path, "%s/compiles", dir);
    ck_assert_int_eq(chmod(count_path, 0666), 0);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        /* root writes anywhere: become a user the mode applies to */
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(3);
        if (access(cache, W_OK) == 0)
            _exit(4);
        sepconv_code *code = NULL;
        int ok = sepconv_cc_compile(twice_source, strlen(twice_source), &options, &code,
                                    NULL) == SEPCONV_OK && sepconv_code_from_cache(code);
        sepconv_code_free(code);
        code = NULL;
        /* a miss still compiles, without storing */
        const char *other = "int twice(int x) { return x + x; }\n";
        ok = ok && sepconv_cc_compile(other, strlen(other), &options, &code, NULL) ==
                       SEPCONV_OK && !sepconv_code_from_cache(code);
        sepconv_code_free(code);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x",
                  status);
    ck_assert_int_eq(compiles(dir), 2); /* the hit ran no compile, the miss did */
    ck_assert_int_eq(count_files(cache, ".so"), 1);
    chmod(cache, 0755);
    remove_dir(dir);
}
END_TEST

START_TEST(cc_fifo_in_the_cache_is_replaced)
{
    char dir[64], cache[128];
    fresh_dir(dir, sizeof dir, "fifo");
    snprintf(cache, sizeof cache, "%s/cache", dir);
    sepconv_cc_options options = {.flags = "-O1", .cache_dir = cache};
    sepconv_code_free(cc_twice(&options));
    damage_entry(cache, "rm $f && mkfifo $f");
    /* in a child with an alarm: the old code blocked opening the FIFO */
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        alarm(20);
        sepconv_code *code = NULL;
        int ok = sepconv_cc_compile(twice_source, strlen(twice_source), &options, &code,
                                    NULL) == SEPCONV_OK && !sepconv_code_from_cache(code) &&
                 ((int_fn)sepconv_code_symbol(code, "twice"))(2) == 4;
        sepconv_code_free(code);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
    sepconv_code *code = cc_twice(&options); /* the rebuilt entry is a file again */
    ck_assert_int_eq(sepconv_code_from_cache(code), 1);
    sepconv_code_free(code);
    remove_dir(dir);
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
    tcase_add_test(cc, cc_compile_has_a_time_limit);
    tcase_add_test(cc, cc_kill_all_stops_running_compilers);
    tcase_add_test(cc, cc_sigterm_to_the_cli_kills_its_compiler);
    tcase_add_test(cc, cc_flags_are_split_into_words_per_compile);
    tcase_add_test(cc, cc_failed_sources_are_kept_apart);
    tcase_add_test(cc, cc_compiler_command_may_have_words);
    tcase_add_test(cc, cc_cache_keys_on_what_the_flags_resolve_to);
    tcase_add_test(cc, cc_objects_import_nothing);
    tcase_add_test(cc, environment_features_leave_out_what_is_hidden);
    tcase_add_test(cc, cc_read_only_cache_serves_hits);
    tcase_add_test(cc, cc_fifo_in_the_cache_is_replaced);
    suite_add_tcase(suite, cc);
    return suite;
}
