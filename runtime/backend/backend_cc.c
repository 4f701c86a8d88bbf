/*
 * backend_cc.c -- the system-compiler backend: C source in, a loaded shared
 * object out, through a disk cache.  Runs the compiler without a shell
 * (arguments are never interpreted), in a process group of its own and under
 * a time limit, keeps the source of a failing compile for the user, and
 * loads only objects that import nothing and need no instruction the CPU
 * lacks.
 *
 * A cache entry is the shared object followed by a trailer: a magic line,
 * the object's length, the CPU features it needs and an XXH3-128 hash of
 * both.  It is written under a temporary name and renamed, so a reader never
 * sees half an entry; one that fails the check (truncated, replaced, not a
 * regular file) is deleted and rebuilt.
 *
 * Every compile works in a private directory (also the compiler's TMPDIR,
 * so its own temporary files land there too).  Running compilers and their
 * directories are listed in a lock-free registry that
 * sepconv_cc_kill_all(), safe in a signal handler, empties.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "backend/backend.h"

#define DEFAULT_FLAGS "-O3 -march=native"
/* Flags every compile gets.  Before the user's: a stack protector would
 * call into libc, which generated objects may not (Ubuntu's gcc turns it
 * on by default); a user who asks for it gets the import refused. */
#define LEADING_FLAGS "-fno-stack-protector"
/* After the user's: a shared object linked with nothing at all. */
#define TRAILING_FLAGS "-shared -fPIC -nostdlib"
#define MAX_WORDS 64
/* A query of the compiler (--version, its predefined macros) takes
 * milliseconds; this bounds one that hangs, with room for a VM that stalls
 * (a `clang -E` query once took over 5 s in CI on an idle 2-core VM). */
#define QUERY_LIMIT_SECONDS 20.0
/* The longest wait between two looks at a running compiler. */
#define POLL_MAX_NS 10000000L

extern char **environ;

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the registry needs lock-free atomics");

/* ------------------------------------------------------------ words */

/* A command or a flag string split into words. */
typedef struct word_list {
    char storage[4096];
    char *words[MAX_WORDS + 1];
    int count;
} word_list;

/* Whether c separates words: any white space, tabs and newlines too. */
static bool blank(char c)
{
    return c != '\0' && strchr(" \t\n\r\v\f", c) != NULL;
}

/* Splits text into words at white space (no quoting: a word never holds a
 * space); false if the text or the word count is too large.  Reentrant:
 * compiles run from many threads. */
static bool split_words(const char *text, word_list *list)
{
    list->count = 0;
    list->words[0] = NULL;
    size_t length = strlen(text);
    if (length >= sizeof list->storage)
        return false;
    memcpy(list->storage, text, length + 1);
    char *at = list->storage;
    for (;;) {
        while (blank(*at))
            *at++ = '\0';
        if (*at == '\0')
            break;
        if (list->count == MAX_WORDS)
            return false;
        list->words[list->count++] = at;
        while (*at != '\0' && !blank(*at))
            at++;
    }
    list->words[list->count] = NULL;
    return true;
}

/* Appends the words of `list` to argv. */
static void append_words(char **argv, int *argc, const word_list *list)
{
    for (int i = 0; i < list->count; i++)
        argv[(*argc)++] = list->words[i];
}

/* ------------------------------------------------------------ the registry */

#define RUNNING_MAX 64
#define RUNNING_PATH_MAX 1024
#define SLOT_FREE 0
#define SLOT_CLAIMED 1
#define SLOT_PUBLISHED 2
/* How long sepconv_cc_kill_all waits for a compiler being spawned on
 * another thread to get its process group: 200 looks 1 ms apart. */
#define KILL_WAIT_LOOKS 200
/* How long it waits, once it killed something, before removing files the
 * dying processes may still be writing. */
#define DEATH_WAIT_NS 20000000L

/* One compile in progress: its directory and its compiler's process group
 * (0 none, -1 being spawned).  The generation changes on every claim, so a
 * signal handler that copied `dir` can tell whether it copied one value. */
static struct running_slot {
    atomic_int state;
    atomic_uint generation;
    atomic_int group;
    char dir[RUNNING_PATH_MAX];
} running[RUNNING_MAX];

/* A compile's private directory and its registry slot (-1: none free). */
typedef struct workspace {
    char dir[4096];
    int slot;
} workspace;

/* Sleeps `ns` nanoseconds (async-signal-safe). */
static void pause_ns(long ns)
{
    struct timespec wait = {0, ns};
    while (nanosleep(&wait, &wait) != 0 && errno == EINTR)
        ;
}

/* Removes a directory and the files in it; async-signal-safe (raw
 * directory reads, no allocation), for the signal handler too. */
static void remove_dir_files(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        /* unlinking while reading may skip names: read again until clean */
        for (int pass = 0; pass < 8; pass++) {
            bool removed = false;
            char buffer[2048] __attribute__((aligned(8)));
            lseek(fd, 0, SEEK_SET);
            ssize_t got;
            while ((got = getdents64(fd, buffer, sizeof buffer)) > 0)
                for (ssize_t at = 0; at < got;) {
                    struct dirent64 *entry = (struct dirent64 *)(void *)(buffer + at);
                    const char *name = entry->d_name;
                    if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0 &&
                        unlinkat(fd, name, 0) == 0)
                        removed = true;
                    at += entry->d_reclen;
                }
            if (!removed)
                break;
        }
        close(fd);
    }
    rmdir(dir);
}

/* Blocks the asynchronous signals on this thread (not those a fault
 * raises), so that no handler runs between two steps that must go
 * together; the old mask goes to `old`. */
static void block_signals(sigset_t *old)
{
    sigset_t set;
    sigfillset(&set);
    int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT};
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
        sigdelset(&set, faults[i]);
    pthread_sigmask(SIG_BLOCK, &set, old);
}

/* Sets the process group a workspace's compiler runs in. */
static void set_group(const workspace *ws, int group)
{
    if (ws->slot >= 0)
        atomic_store(&running[ws->slot].group, group);
}

/* Makes a private directory under $TMPDIR and lists it in the registry.
 * Signals are blocked meanwhile so a handler never misses it. */
static sepconv_status workspace_open(workspace *ws, const char *tmp, sepconv_error *error)
{
    ws->slot = -1;
    if ((size_t)snprintf(ws->dir, sizeof ws->dir, "%s/sepconv-cc-XXXXXX", tmp) >=
        sizeof ws->dir)
        return sepconv_fail(error, SEPCONV_INVALID, "cc: the temporary directory "
                            "name %.100s... is too long", tmp);
    sigset_t old;
    block_signals(&old);
    bool made = mkdtemp(ws->dir) != NULL;
    int saved = errno;
    for (int i = 0; made && i < RUNNING_MAX && strlen(ws->dir) < RUNNING_PATH_MAX; i++) {
        int expected = SLOT_FREE;
        if (!atomic_compare_exchange_strong(&running[i].state, &expected, SLOT_CLAIMED))
            continue;
        memcpy(running[i].dir, ws->dir, strlen(ws->dir) + 1);
        atomic_store(&running[i].group, 0);
        atomic_fetch_add(&running[i].generation, 1);
        atomic_store(&running[i].state, SLOT_PUBLISHED);
        ws->slot = i;
        break;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!made)
        return sepconv_fail(error, SEPCONV_IO, "cc: cannot make a directory in %s: %s",
                            tmp, strerror(saved));
    return SEPCONV_OK;
}

/* Removes a workspace with everything in it and frees its slot. */
static void workspace_close(workspace *ws)
{
    remove_dir_files(ws->dir);
    if (ws->slot >= 0) {
        atomic_store(&running[ws->slot].group, 0);
        atomic_store(&running[ws->slot].state, SLOT_FREE);
    }
    ws->slot = -1;
}

/* Kills the process group of every compiler the cc backend is running and
 * removes their temporary directories; the compiles in progress fail.
 * Async-signal-safe: a program's SIGTERM/SIGINT/SIGHUP handler should call
 * it (the compiler is in its own process group, which a terminal's ^C does
 * not reach), then re-raise the signal with its default action. */
void sepconv_cc_kill_all(void)
{
    bool killed = false;
    for (int look = 0;; look++) {
        bool spawning = false;
        for (int i = 0; i < RUNNING_MAX; i++) {
            int group = atomic_load(&running[i].group);
            if (group > 0) {
                kill(-group, SIGKILL);
                killed = true;
            } else if (group < 0) {
                spawning = true;
            }
        }
        if (!spawning || look >= KILL_WAIT_LOOKS)
            break;
        pause_ns(1000000L); /* another thread is between spawn and registration */
    }
    if (killed)
        pause_ns(DEATH_WAIT_NS);
    for (int i = 0; i < RUNNING_MAX; i++) {
        unsigned generation = atomic_load(&running[i].generation);
        if (atomic_load(&running[i].state) != SLOT_PUBLISHED)
            continue;
        char dir[RUNNING_PATH_MAX];
        memcpy(dir, running[i].dir, sizeof dir);
        dir[sizeof dir - 1] = '\0';
        if (atomic_load(&running[i].state) == SLOT_PUBLISHED &&
            atomic_load(&running[i].generation) == generation)
            remove_dir_files(dir);
    }
}

/* ------------------------------------------------------------ running */

/* How one run of a program ended. */
typedef struct outcome {
    int spawn_errno;   /* non-zero: it did not start (or could not be waited) */
    bool timed_out;    /* the limit ran out and its group was killed */
    int exit_status;   /* when it exited */
    int signal;        /* non-zero: killed by this signal */
} outcome;

/* The environment of a compiler: ours with TMPDIR set to the workspace, so
 * the compiler's temporary files are removed with it.  NULL if out of
 * memory; free the result and its first entry. */
static char **child_environment(const char *dir)
{
    size_t count = 0;
    while (environ && environ[count])
        count++;
    char **envp = malloc((count + 2) * sizeof *envp);
    size_t length = strlen(dir) + sizeof "TMPDIR=";
    char *tmpdir = malloc(length);
    if (!envp || !tmpdir) {
        free(envp);
        free(tmpdir);
        return NULL;
    }
    snprintf(tmpdir, length, "TMPDIR=%s", dir);
    size_t n = 0;
    envp[n++] = tmpdir;
    for (size_t i = 0; i < count; i++)
        if (strncmp(environ[i], "TMPDIR=", 7) != 0)
            envp[n++] = environ[i];
    envp[n] = NULL;
    return envp;
}

/* Waits for a child until `limit` seconds have passed, then kills its
 * process group.  Looks without reaping (WNOWAIT) so the group id stays
 * taken until the registry has forgotten it. */
static void wait_child(pid_t pid, const workspace *ws, double limit, outcome *out)
{
    double deadline = sepconv_seconds() + limit;
    long step = 1000000L;
    for (;;) {
        siginfo_t info;
        memset(&info, 0, sizeof info);
        if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
            if (errno == EINTR)
                continue;
            out->spawn_errno = errno; /* ECHILD: SIGCHLD ignored, reaped for us */
            set_group(ws, 0);
            return;
        }
        if (info.si_pid == pid)
            break;
        if (sepconv_seconds() >= deadline) {
            out->timed_out = true;
            break;
        }
        pause_ns(step);
        step = step * 2 > POLL_MAX_NS ? POLL_MAX_NS : step * 2;
    }
    /* the leader is alive or a zombie: the group cannot be reused yet; the
     * kill also ends anything of the compile that outlived its leader */
    kill(-pid, SIGKILL);
    set_group(ws, 0);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            out->spawn_errno = errno;
            return;
        }
    if (WIFEXITED(status))
        out->exit_status = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        out->signal = WTERMSIG(status);
}

/* Runs argv in its own process group, stdin from /dev/null, stdout and
 * stderr into `log`, for at most `limit` seconds. */
static void run_program(char **argv, const workspace *ws, const char *log, double limit,
                        outcome *out)
{
    memset(out, 0, sizeof *out);
    char **envp = child_environment(ws->dir);
    if (!envp) {
        out->spawn_errno = ENOMEM;
        return;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                              POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&attributes, 0);
    sigset_t none, defaults, old;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attributes, &none);
    sigemptyset(&defaults);
    int reset[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE};
    for (size_t i = 0; i < sizeof reset / sizeof reset[0]; i++)
        sigaddset(&defaults, reset[i]);
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    /* no handler on this thread may run between the spawn and the
     * registration; other threads' handlers wait for it (group -1) */
    block_signals(&old);
    set_group(ws, -1);
    pid_t pid = 0;
    int spawned = posix_spawnp(&pid, argv[0], &actions, &attributes, argv, envp);
    set_group(ws, spawned == 0 ? pid : 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    free(envp[0]);
    free(envp);
    if (spawned != 0) {
        out->spawn_errno = spawned;
        return;
    }
    wait_child(pid, ws, limit, out);
}

/* Whether a spawned program was not found: some posix_spawn emulations
 * (valgrind's) report that as a child exiting 127 with nothing said. */
static bool not_found(outcome *out, const char *log)
{
    struct stat info;
    if (out->spawn_errno != 0)
        return true;
    if (out->timed_out || out->signal || out->exit_status != 127 || stat(log, &info) != 0 ||
        info.st_size != 0)
        return false;
    out->spawn_errno = ENOENT;
    return true;
}

/* The error of a compiler that could not be started. */
static sepconv_status cannot_run(const word_list *command, const char *text, int code,
                                 sepconv_error *error)
{
    if (code == ECHILD)
        return sepconv_fail(error, SEPCONV_UNSUPPORTED,
                            "cc: cannot wait for the compiler '%s': %s (is SIGCHLD "
                            "ignored? the cc backend needs its exit status)", text,
                            strerror(code));
    if (command->count > 1)
        return sepconv_fail(error, SEPCONV_UNSUPPORTED,
                            "cc: cannot run '%s' of the compiler command '%s': %s; "
                            "install it or use the tcc backend", command->words[0],
                            text, strerror(code));
    return sepconv_fail(error, SEPCONV_UNSUPPORTED,
                        "cc: cannot run the compiler '%s': %s; install one "
                        "(apt-get install gcc) or use the tcc backend", text,
                        strerror(code));
}

/* ------------------------------------------------------------ failures */

/* Describes a source's size for people: "a 917 KB source". */
static void describe_size(size_t length, char *out, size_t capacity)
{
    if (length < 10240)
        snprintf(out, capacity, "a %zu-byte source", length);
    else
        snprintf(out, capacity, "a %zu KB source", length / 1024);
}

/* Saves a failing source next to the user (save_dir) under a name of its
 * own, and describes where: "saved as PATH" or why not. */
static void keep_source(const char *source, size_t length, const char *save_dir,
                        char *kept, size_t capacity)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/sepconv-failed-XXXXXX.c", save_dir);
    int fd = mkstemps(path, 2);
    if (fd < 0) {
        snprintf(kept, capacity, "not saved (cannot create a file in %s: %s)", save_dir,
                 strerror(errno));
        return;
    }
    size_t done = 0;
    while (done < length) {
        ssize_t wrote = write(fd, source + done, length - done);
        if (wrote < 0 && errno == EINTR)
            continue;
        if (wrote <= 0)
            break;
        done += (size_t)wrote;
    }
    if (close(fd) != 0 || done != length) {
        unlink(path);
        snprintf(kept, capacity, "not saved (error writing %s)", path);
        return;
    }
    snprintf(kept, capacity, "saved as %s", path);
}

/* The refusal of an object that imports `name`: generated code may use no
 * library, so it can do nothing but compute on the buffers it is given. */
static sepconv_status imports_refused(const char *name, const char *kept,
                                      sepconv_error *error)
{
    return sepconv_fail(error, SEPCONV_UNSUPPORTED,
                        "cc: the compiled code imports %s; generated kernels may call "
                        "nothing outside themselves but memcpy, memmove, memset and "
                        "memcmp (no other libc function, no library), so it was not "
                        "loaded; the source is %s", name, kept);
}

/* ------------------------------------------------------------ compiler facts */

/* Compiler identities and flag resolutions already asked for, so a cache
 * hit runs nothing. */
static pthread_mutex_t facts_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char compiler[256];
    XXH128_hash_t identity;
    char first_line[128];
} identities[8];
static int identity_count;
static struct {
    char compiler[256];
    char flags[512];
    XXH128_hash_t resolved;
    uint64_t needs;
} resolutions[32];
static int resolution_count;

/* Runs a query of the compiler (its command words plus `extra`) in the
 * workspace and returns its output, NUL-terminated. */
static sepconv_status query(const word_list *command, const char *text,
                            const word_list *flags, const char *flag_text,
                            const char *const *extra,
                            const workspace *ws, double limit, char **output,
                            size_t *length, sepconv_error *error)
{
    char *argv[2 * MAX_WORDS + 8];
    int argc = 0;
    append_words(argv, &argc, command);
    if (flags)
        append_words(argv, &argc, flags);
    for (int i = 0; extra[i]; i++)
        argv[argc++] = (char *)extra[i];
    argv[argc] = NULL;
    char log[4200];
    snprintf(log, sizeof log, "%s/query.log", ws->dir);
    outcome out;
    run_program(argv, ws, log, limit, &out);
    if (not_found(&out, log))
        return cannot_run(command, text, out.spawn_errno, error);
    if (out.timed_out && limit < QUERY_LIMIT_SECONDS)
        return sepconv_fail(error, SEPCONV_LIMIT,
                            "cc: '%s %s' did not answer within the %g s compile limit; "
                            "raise it with --cc-timeout or options.cc.timeout_seconds",
                            text, extra[0], limit);
    if (out.timed_out)
        return sepconv_fail(error, SEPCONV_LIMIT,
                            "cc: '%s %s' did not answer within %g s (the limit of a "
                            "compiler query); is '%s' a C compiler?", text, extra[0],
                            limit, text);
    if (out.signal || out.exit_status != 0) {
        char *said = NULL;
        size_t said_length = 0;
        if (sepconv_read_file(log, 1 << 16, "log", &said, &said_length, NULL) != SEPCONV_OK)
            said = NULL;
        sepconv_status status = sepconv_fail(
            error, SEPCONV_UNSUPPORTED, "cc: '%s %s' failed (%s %d)%s%s%s; is '%s' a C "
            "compiler, and are the flags its own?%s%.400s", text, extra[0],
            out.signal ? "signal" : "exit", out.signal ? out.signal : out.exit_status,
            flags ? " with the flags '" : "", flags ? flag_text : "", flags ? "'" : "",
            text, said && said[0] ? "\n" : "", said ? said : "");
        free(said);
        return status;
    }
    return sepconv_read_file(log, 1 << 20, "compiler output", output, length, error);
}

/* The hash of `compiler --version` (its identity and version) and the
 * output's first line, for people. */
static sepconv_status compiler_identity(const word_list *command, const char *text,
                                        const workspace *ws, double limit,
                                        XXH128_hash_t *identity, char *first_line,
                                        size_t capacity, sepconv_error *error)
{
    pthread_mutex_lock(&facts_lock);
    for (int i = 0; i < identity_count; i++)
        if (strcmp(identities[i].compiler, text) == 0) {
            *identity = identities[i].identity;
            snprintf(first_line, capacity, "%s", identities[i].first_line);
            pthread_mutex_unlock(&facts_lock);
            return SEPCONV_OK;
        }
    pthread_mutex_unlock(&facts_lock);
    const char *extra[] = {"--version", NULL};
    char *output = NULL;
    size_t length = 0;
    sepconv_status status = query(command, text, NULL, NULL, extra, ws, limit, &output,
                                  &length, error);
    if (status != SEPCONV_OK)
        return status;
    XXH3_state_t *state = XXH3_createState();
    if (!state) {
        free(output);
        return sepconv_fail(error, SEPCONV_NOMEM, "cc: out of memory");
    }
    XXH3_128bits_reset(state);
    XXH3_128bits_update(state, text, strlen(text) + 1);
    XXH3_128bits_update(state, output, length);
    *identity = XXH3_128bits_digest(state);
    XXH3_freeState(state);
    snprintf(first_line, capacity, "%.*s", (int)strcspn(output, "\n"), output);
    free(output);
    pthread_mutex_lock(&facts_lock);
    if (identity_count < 8 && strlen(text) < sizeof identities[0].compiler) {
        snprintf(identities[identity_count].compiler, sizeof identities[0].compiler, "%s",
                 text);
        snprintf(identities[identity_count].first_line, sizeof identities[0].first_line,
                 "%s", first_line);
        identities[identity_count++].identity = *identity;
    }
    pthread_mutex_unlock(&facts_lock);
    return SEPCONV_OK;
}

/* What the flags resolve to on this machine (-march=native is the same
 * text everywhere): the hash of the compiler's predefined macros under
 * them, and the CPU features those macros say the code may use. */
static sepconv_status resolve_flags(const word_list *command, const char *text,
                                    const word_list *flags, const char *flag_text,
                                    const workspace *ws, double limit,
                                    XXH128_hash_t *resolved, uint64_t *needs,
                                    sepconv_error *error)
{
    pthread_mutex_lock(&facts_lock);
    for (int i = 0; i < resolution_count; i++)
        if (strcmp(resolutions[i].compiler, text) == 0 &&
            strcmp(resolutions[i].flags, flag_text) == 0) {
            *resolved = resolutions[i].resolved;
            *needs = resolutions[i].needs;
            pthread_mutex_unlock(&facts_lock);
            return SEPCONV_OK;
        }
    pthread_mutex_unlock(&facts_lock);
    const char *extra[] = {"-E", "-dM", "-x", "c", "/dev/null", NULL};
    char *macros = NULL;
    size_t length = 0;
    sepconv_status status = query(command, text, flags, flag_text, extra, ws, limit,
                                  &macros, &length, error);
    if (status != SEPCONV_OK)
        return status;
    *resolved = XXH3_128bits(macros, length);
    *needs = sepconv_features_of_macros(macros);
    free(macros);
    pthread_mutex_lock(&facts_lock);
    if (resolution_count < 32 && strlen(text) < sizeof resolutions[0].compiler &&
        strlen(flag_text) < sizeof resolutions[0].flags) {
        snprintf(resolutions[resolution_count].compiler, sizeof resolutions[0].compiler,
                 "%s", text);
        snprintf(resolutions[resolution_count].flags, sizeof resolutions[0].flags, "%s",
                 flag_text);
        resolutions[resolution_count].resolved = *resolved;
        resolutions[resolution_count++].needs = *needs;
    }
    pthread_mutex_unlock(&facts_lock);
    return SEPCONV_OK;
}

/* ------------------------------------------------------------ the cache */

#define CACHE_MAGIC "sepconv-cache-2\n" /* 16 bytes */
#define TRAILER_BYTES (16 + 8 + 8 + 16)
#define CACHE_ENTRY_MAX ((size_t)256 << 20)

/* Where the cache is and what may be done with it. */
typedef struct cache_place {
    char dir[4096];
    bool read;  /* hits are served */
    bool write; /* new objects are stored */
} cache_place;

/* The cache directory, created if missing: read if readable, written if
 * also writable (a read-only shared cache still serves its hits). */
static void cache_directory(const sepconv_cc_options *options, cache_place *cache)
{
    cache->read = cache->write = false;
    const char *setting = getenv("SEPCONV_CACHE");
    if ((options && options->no_cache) || (setting && strcmp(setting, "off") == 0))
        return;
    if (options && options->cache_dir)
        snprintf(cache->dir, sizeof cache->dir, "%s", options->cache_dir);
    else if (!sepconv_cache_home(cache->dir, sizeof cache->dir))
        return;
    /* an unusable directory just means no cache */
    sepconv_make_dirs(cache->dir);
    cache->read = access(cache->dir, R_OK | X_OK) == 0;
    cache->write = cache->read && access(cache->dir, W_OK) == 0;
}

/* The entry's path for a key. */
static void entry_path(const char *dir, XXH128_hash_t key, char *out, size_t capacity)
{
    snprintf(out, capacity, "%s/%016llx%016llx.so", dir, (unsigned long long)key.high64,
             (unsigned long long)key.low64);
}

/* The trailer's hash: of the object and the features it needs. */
static XXH128_hash_t entry_hash(const char *bytes, size_t length, uint64_t needs)
{
    return XXH3_128bits_withSeed(bytes, length, needs);
}

/* Reads a cache entry that is whole (its trailer's length and hash match):
 * the object's bytes and the features it needs.  Only a regular file is
 * opened, without blocking (a FIFO there is just a bad entry). */
static bool entry_read(const char *path, char **bytes, size_t *body, uint64_t *needs)
{
    size_t length = 0;
    if (sepconv_read_file_bytes(path, CACHE_ENTRY_MAX, bytes, &length) != SEPCONV_OK)
        return false;
    bool valid = false;
    if (length > TRAILER_BYTES) {
        const char *trailer = *bytes + length - TRAILER_BYTES;
        uint64_t stored_length;
        XXH128_canonical_t stored;
        memcpy(&stored_length, trailer + 16, 8);
        memcpy(needs, trailer + 24, 8);
        memcpy(&stored, trailer + 32, 16);
        *body = length - TRAILER_BYTES;
        valid = memcmp(trailer, CACHE_MAGIC, 16) == 0 && stored_length == *body &&
                XXH128_isEqual(entry_hash(*bytes, *body, *needs),
                               XXH128_hashFromCanonical(&stored));
    }
    if (!valid) {
        free(*bytes);
        *bytes = NULL;
    }
    return valid;
}

/* Copies a built object into the cache with its trailer: a temporary file
 * in the cache directory, then an atomic rename.  Failures are ignored: the
 * kernel works without its cache entry. */
static void entry_store(const char *bytes, size_t length, uint64_t needs, const char *dir,
                        const char *path)
{
    char trailer[TRAILER_BYTES];
    uint64_t body = length;
    XXH128_canonical_t hash;
    XXH128_canonicalFromHash(&hash, entry_hash(bytes, length, needs));
    memcpy(trailer, CACHE_MAGIC, 16);
    memcpy(trailer + 16, &body, 8);
    memcpy(trailer + 24, &needs, 8);
    memcpy(trailer + 32, &hash, 16);
    char temporary[4300];
    snprintf(temporary, sizeof temporary, "%s/.entry-XXXXXX", dir);
    int fd = mkstemp(temporary);
    if (fd < 0)
        return;
    bool ok = write(fd, bytes, length) == (ssize_t)length &&
              write(fd, trailer, sizeof trailer) == (ssize_t)sizeof trailer;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(temporary, path) != 0)
        unlink(temporary);
}

/* The cache key: source, compiler identity, flags (as words), what they
 * resolve to here, the CPU's features and sepconv's version.  False if out
 * of memory: then there is no key, and no cache. */
static bool cache_key(const char *source, size_t length, XXH128_hash_t identity,
                      const word_list *flags, XXH128_hash_t resolved, XXH128_hash_t *key)
{
    XXH3_state_t *state = XXH3_createState();
    if (!state)
        return false;
    uint64_t cpu = sepconv_cpu_features();
    XXH3_128bits_reset(state);
    XXH3_128bits_update(state, source, length);
    XXH3_128bits_update(state, &identity, sizeof identity);
    for (int i = 0; i < flags->count; i++)
        XXH3_128bits_update(state, flags->words[i], strlen(flags->words[i]) + 1);
    XXH3_128bits_update(state, LEADING_FLAGS "|" TRAILING_FLAGS,
                        sizeof LEADING_FLAGS "|" TRAILING_FLAGS);
    XXH3_128bits_update(state, &resolved, sizeof resolved);
    XXH3_128bits_update(state, &cpu, sizeof cpu);
    XXH3_128bits_update(state, SEPCONV_VERSION, sizeof SEPCONV_VERSION);
    *key = XXH3_128bits_digest(state);
    XXH3_freeState(state);
    return true;
}

/* Flags that let the compiler break IEEE semantics: NaN and infinity
 * propagation, signed zeros, subnormals, the order of a sum.  Kernels must
 * match the reference's semantics, so these are refused. */
static const char *const unsafe_flags[] = {
    "-ffast-math", "-Ofast", "-ffinite-math-only", "-funsafe-math-optimizations",
    "-fassociative-math", "-freciprocal-math", "-fno-signed-zeros", "-fno-trapping-math",
    "-ffp-contract=fast-honor-pragmas", "-menable-unsafe-fp-math", NULL};

/* The first IEEE-breaking flag among the flag words, or NULL. */
static const char *unsafe_flag(const word_list *flags)
{
    for (int i = 0; i < flags->count; i++)
        for (const char *const *flag = unsafe_flags; *flag; flag++)
            if (strcmp(flags->words[i], *flag) == 0)
                return *flag;
    return NULL;
}

/* ------------------------------------------------------------ compiling */

/* Everything one compile works with. */
typedef struct compile_job {
    const char *source;
    size_t length;
    const char *compiler; /* the command text */
    word_list command;
    word_list flags;
    const char *flag_text;
    const char *save_dir;
    double limit;
    workspace ws;
    cache_place cache;
    char entry[4200]; /* the cache entry's path, "" if none */
    uint64_t needs;   /* CPU features the object may use */
} compile_job;

/* Resolves the compiler command to run: the option, $CC, or "cc". */
static const char *compiler_of(const sepconv_cc_options *options)
{
    if (options && options->compiler)
        return options->compiler;
    const char *cc = getenv("CC");
    return cc && cc[0] ? cc : "cc";
}

/* The temporary directory: $TMPDIR or /tmp. */
static const char *temporary_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    return tmp && tmp[0] ? tmp : "/tmp";
}

/* The compile limit in seconds; refuses one that is not a positive number. */
static sepconv_status time_limit(const sepconv_cc_options *options, double *limit,
                                 sepconv_error *error)
{
    double seconds = options ? options->timeout_seconds : 0.0;
    if (seconds == 0.0) {
        *limit = SEPCONV_CC_TIMEOUT_DEFAULT;
        return SEPCONV_OK;
    }
    if (!(seconds > 0.0) || !isfinite(seconds))
        return sepconv_fail(error, SEPCONV_INVALID,
                            "cc: timeout_seconds=%g is not valid (expected a positive "
                            "number of seconds, or 0 for the default of %g s)", seconds,
                            SEPCONV_CC_TIMEOUT_DEFAULT);
    *limit = seconds;
    return SEPCONV_OK;
}

/* Reads the options into a job: the command and flags split into words
 * once, the flags checked on those words. */
static sepconv_status job_prepare(compile_job *job, const sepconv_cc_options *options,
                                  sepconv_error *error)
{
    sepconv_status status = time_limit(options, &job->limit, error);
    if (status != SEPCONV_OK)
        return status;
    job->compiler = compiler_of(options);
    job->flag_text = options && options->flags ? options->flags : DEFAULT_FLAGS;
    if (!split_words(job->compiler, &job->command) || job->command.count == 0)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "cc: the compiler command '%.200s' is %s (expected a program "
                            "and at most %d words)", job->compiler,
                            job->command.count == 0 ? "empty" : "too long", MAX_WORDS);
    if (!split_words(job->flag_text, &job->flags))
        return sepconv_fail(error, SEPCONV_INVALID,
                            "cc: too many flags (at most %d words of 4095 bytes)",
                            MAX_WORDS);
    const char *unsafe = unsafe_flag(&job->flags);
    if (unsafe)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "cc: the flag %s breaks IEEE semantics (NaN, infinities, "
                            "signed zeros, subnormals) that kernels must keep; remove it",
                            unsafe);
    job->save_dir = options && options->save_dir ? options->save_dir : temporary_dir();
    return SEPCONV_OK;
}

/* Writes `length` bytes to a new file. */
static sepconv_status write_file(const char *path, const char *text, size_t length,
                                 sepconv_error *error)
{
    FILE *file = fopen(path, "wb");
    if (!file)
        return sepconv_fail(error, SEPCONV_IO, "cannot write %s: %s", path,
                            strerror(errno));
    size_t wrote = fwrite(text, 1, length, file);
    if (fclose(file) != 0 || wrote != length)
        return sepconv_fail(error, SEPCONV_IO, "error writing %s", path);
    return SEPCONV_OK;
}

/* The error of a compile that ran out of time or failed, with where the
 * source was kept and (for a failure) what the compiler said. */
static sepconv_status build_failed(const compile_job *job, const outcome *out,
                                   const char *log_path, sepconv_error *error)
{
    char kept[4400], size[64];
    keep_source(job->source, job->length, job->save_dir, kept, sizeof kept);
    describe_size(job->length, size, sizeof size);
    if (out->timed_out)
        return sepconv_fail(error, SEPCONV_LIMIT,
                            "cc: %s did not finish within the %g s compile limit (%s, "
                            "%s); raise it with --cc-timeout or "
                            "options.cc.timeout_seconds, or choose a schedule with less "
                            "unrolling", job->compiler, job->limit, size, kept);
    char *log = NULL;
    size_t log_length = 0;
    if (sepconv_read_file(log_path, 1 << 20, "log", &log, &log_length, NULL) != SEPCONV_OK)
        log = NULL;
    char how[64];
    if (out->signal)
        snprintf(how, sizeof how, "was killed by signal %d", out->signal);
    else
        snprintf(how, sizeof how, "failed (exit %d)", out->exit_status);
    sepconv_status status = sepconv_fail(error, SEPCONV_COMPILE,
                                         "cc: %s %s; the source is %s:\n%.700s",
                                         job->compiler, how, kept,
                                         log ? log : "(no compiler output)");
    free(log);
    return status;
}

/* Runs the compiler on the job's source into workspace/kernel.so; on
 * failure the message holds its output and where the source was kept. */
static sepconv_status build(compile_job *job, sepconv_error *error)
{
    char c_path[4200], so_path[4200], log_path[4200];
    snprintf(c_path, sizeof c_path, "%s/kernel.c", job->ws.dir);
    snprintf(so_path, sizeof so_path, "%s/kernel.so", job->ws.dir);
    snprintf(log_path, sizeof log_path, "%s/compiler.log", job->ws.dir);
    sepconv_status status = write_file(c_path, job->source, job->length, error);
    if (status != SEPCONV_OK)
        return status;
    word_list leading, trailing;
    split_words(LEADING_FLAGS, &leading);
    split_words(TRAILING_FLAGS, &trailing);
    char *argv[3 * MAX_WORDS + 8];
    int argc = 0;
    append_words(argv, &argc, &job->command);
    append_words(argv, &argc, &leading);
    append_words(argv, &argc, &job->flags);
    append_words(argv, &argc, &trailing);
    argv[argc++] = "-o";
    argv[argc++] = so_path;
    argv[argc++] = c_path;
    argv[argc] = NULL;
    outcome out;
    run_program(argv, &job->ws, log_path, job->limit, &out);
    if (not_found(&out, log_path))
        return cannot_run(&job->command, job->compiler, out.spawn_errno, error);
    if (out.timed_out || out.signal || out.exit_status != 0)
        return build_failed(job, &out, log_path, error);
    return SEPCONV_OK;
}

/* Loads a checked object: first its imports and needed features. */
static sepconv_status load(const compile_job *job, const char *path, const char *bytes,
                           size_t length, uint64_t needs, int from_cache,
                           sepconv_code **code, sepconv_error *error)
{
    char name[128];
    if (sepconv_elf_imports(bytes, length, name, sizeof name)) {
        char kept[4400];
        keep_source(job->source, job->length, job->save_dir, kept, sizeof kept);
        return imports_refused(name, kept, error);
    }
    sepconv_status status = sepconv_check_features(needs, from_cache ? "the cached object"
                                                             : "the compiled object", error);
    if (status != SEPCONV_OK)
        return status;
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle)
        return sepconv_fail(error, SEPCONV_IO, "cc: cannot load %s: %s", path, dlerror());
    return sepconv_code_from_handle(handle, from_cache, code, error);
}

/* Compiles the job, through the cache, in its workspace. */
static sepconv_status compile_job_run(compile_job *job, const sepconv_cc_options *options,
                                      sepconv_code **code, sepconv_error *error)
{
    double query_limit = job->limit < QUERY_LIMIT_SECONDS ? job->limit : QUERY_LIMIT_SECONDS;
    XXH128_hash_t resolved;
    sepconv_status status = resolve_flags(&job->command, job->compiler, &job->flags,
                                          job->flag_text, &job->ws, query_limit, &resolved,
                                          &job->needs, error);
    if (status != SEPCONV_OK)
        return status;
    /* refused before compiling: the object would need what the CPU lacks */
    status = sepconv_check_features(job->needs, "code built with these flags", error);
    if (status != SEPCONV_OK)
        return status;
    cache_directory(options, &job->cache);
    XXH128_hash_t identity = {0, 0}, key;
    if (job->cache.read) {
        char first_line[128];
        status = compiler_identity(&job->command, job->compiler, &job->ws, query_limit,
                                   &identity, first_line, sizeof first_line, error);
        if (status != SEPCONV_OK)
            return status;
    }
    if (job->cache.read &&
        cache_key(job->source, job->length, identity, &job->flags, resolved, &key)) {
        entry_path(job->cache.dir, key, job->entry, sizeof job->entry);
        char *bytes = NULL;
        size_t body = 0;
        uint64_t needs = 0;
        if (entry_read(job->entry, &bytes, &body, &needs)) {
            status = load(job, job->entry, bytes, body, needs, 1, code, error);
            free(bytes);
            return status;
        }
        if (job->cache.write)
            unlink(job->entry); /* missing, corrupt or not a file: rebuild it */
    }
    status = build(job, error);
    if (status != SEPCONV_OK)
        return status;
    char so_path[4200];
    snprintf(so_path, sizeof so_path, "%s/kernel.so", job->ws.dir);
    char *bytes = NULL;
    size_t length = 0;
    if (sepconv_read_file_bytes(so_path, CACHE_ENTRY_MAX, &bytes, &length) != SEPCONV_OK)
        return sepconv_fail(error, SEPCONV_IO, "cc: %s made no readable %s", job->compiler,
                            so_path);
    status = load(job, so_path, bytes, length, job->needs, 0, code, error);
    if (status == SEPCONV_OK && job->cache.write && job->entry[0])
        entry_store(bytes, length, job->needs, job->cache.dir, job->entry);
    free(bytes);
    return status;
}

/*
 * Compiles C source with the system compiler into a shared object and
 * loads it, through a disk cache keyed by an XXH3-128 hash of the source,
 * the compiler's identity and version, the flags, what they resolve to on
 * this machine (the compiler's predefined macros: -march=native differs
 * between CPUs) and the CPU's features.  Entries are written under a
 * temporary name and renamed; a corrupt entry (or one that is not a regular
 * file) is discarded and rebuilt; a cache directory that is not writable
 * still serves its hits.  options->compiler ($CC, else "cc") and
 * options->flags are split into words at white space, with no quoting
 * ("ccache gcc" is two words); no_cache (or SEPCONV_CACHE=off) neither
 * reads nor writes the cache.
 *
 * The compiler runs in a process group of its own with TMPDIR set to a
 * private directory; past timeout_seconds (0: SEPCONV_CC_TIMEOUT_DEFAULT,
 * 30 s: MobileNet's layers take 1-4 s on a slow CPU) the group is killed
 * and the call returns SEPCONV_LIMIT.  Temporary files are removed on every
 * path.  On a compile error or a timeout the message holds the compiler's
 * text and the path where the source was saved (a name of its own per
 * failure, in save_dir, else $TMPDIR).
 *
 * Generated code imports nothing: objects are linked with -nostdlib, and
 * one that leaves any symbol undefined or needs any library (system(),
 * printf, libm...) is refused with SEPCONV_UNSUPPORTED naming it before it
 * is loaded, so no constructor of it runs.  The one exception is the four
 * functions compilers call on their own even in freestanding code:
 * memcpy, memmove, memset, memcmp.  An object whose flags need CPU
 * features this CPU lacks (AVX-512 from a cache shared with another
 * machine) is refused the same way; SEPCONV_CPU_HIDE="avx512 sha..."
 * simulates a CPU without those features.
 */
sepconv_status sepconv_cc_compile(const char *source, size_t length,
                                  const sepconv_cc_options *options,
                                  sepconv_code **code, sepconv_error *error)
{
    if (!source || !code)
        return sepconv_fail(error, SEPCONV_INVALID, "cc: no source or no result");
    *code = NULL;
    compile_job *job = calloc(1, sizeof *job);
    if (!job)
        return sepconv_fail(error, SEPCONV_NOMEM, "cc: out of memory");
    job->source = source;
    job->length = length;
    sepconv_status status = job_prepare(job, options, error);
    if (status == SEPCONV_OK)
        status = workspace_open(&job->ws, temporary_dir(), error);
    if (status == SEPCONV_OK) {
        status = compile_job_run(job, options, code, error);
        workspace_close(&job->ws); /* every path: a loaded object stays mapped */
    }
    free(job);
    return status;
}

/* The compiler's identity for people and tuning logs: the first line of
 * `compiler --version`. */
sepconv_status sepconv_cc_identity(const sepconv_cc_options *options, char *text,
                                   size_t capacity, sepconv_error *error)
{
    compile_job *job = calloc(1, sizeof *job);
    if (!job)
        return sepconv_fail(error, SEPCONV_NOMEM, "cc: out of memory");
    sepconv_status status = job_prepare(job, options, error);
    if (status == SEPCONV_OK)
        status = workspace_open(&job->ws, temporary_dir(), error);
    if (status == SEPCONV_OK) {
        double limit = job->limit < QUERY_LIMIT_SECONDS ? job->limit : QUERY_LIMIT_SECONDS;
        XXH128_hash_t identity;
        status = compiler_identity(&job->command, job->compiler, &job->ws, limit,
                                   &identity, text, capacity, error);
        workspace_close(&job->ws);
    }
    free(job);
    return status;
}
