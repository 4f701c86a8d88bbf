/*
 * cli_run.c -- runs the sepconv command as a user would, for the suites
 * that test it: standard input from a file, both streams captured, and the
 * run bounded so that a hang fails the test instead of stalling the suite.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests.h"

/* Reads up to capacity-1 bytes of a file into `text`. */
void read_text_file(const char *path, char *text, size_t capacity)
{
    FILE *file = fopen(path, "rb");
    size_t got = file ? fread(text, 1, capacity - 1, file) : 0;
    text[got] = '\0';
    if (file)
        fclose(file);
}

/* Runs `sepconv ARGS` (shell-quoted) in `dir` (NULL: $SEPCONV_ROOT). */
cli_outcome *run_sepconv_in(const char *dir, const char *in, const char *to,
                            const char *args)
{
    static cli_outcome result;
    const char *cli = getenv("SEPCONV_CLI"), *root = getenv("SEPCONV_ROOT");
    ck_assert_msg(cli != NULL, "SEPCONV_CLI is not set (run through make test)");
    char absolute[4096];
    if (cli[0] != '/')
        snprintf(absolute, sizeof absolute, "%s/%s", root ? root : ".", cli);
    else
        snprintf(absolute, sizeof absolute, "%s", cli);
    char out_path[] = "/tmp/sepconv-cli-out-XXXXXX", err_path[] = "/tmp/sepconv-cli-err-XXXXXX";
    close(mkstemp(out_path));
    close(mkstemp(err_path));
    char command[8192];
    snprintf(command, sizeof command, "cd '%s' && timeout %d '%s' %s <%s >%s 2>%s",
             dir ? dir : root ? root : ".", CLI_RUN_SECONDS_MAX, absolute, args,
             in ? in : "/dev/null", to ? to : out_path, err_path);
    int status = system(command);
    ck_assert_msg(WIFEXITED(status), "'%s' did not exit normally", command);
    result.code = WEXITSTATUS(status);
    ck_assert_msg(result.code != 124, "'%s' ran past %d s", command, CLI_RUN_SECONDS_MAX);
    read_text_file(out_path, result.out, sizeof result.out);
    read_text_file(err_path, result.err, sizeof result.err);
    unlink(out_path);
    unlink(err_path);
    return &result;
}
