/*
 * test_cli.c -- the sepconv command as a user runs it: exit codes 0/1/2,
 * errors on stderr only, help, tables and JSON.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests.h"

/* What one run of the command printed and returned. */
typedef struct outcome {
    int code;
    char out[16384];
    char err[4096];
} outcome;

/* Reads up to capacity-1 bytes of a file into `text`. */
static void slurp(const char *path, char *text, size_t capacity)
{
    FILE *file = fopen(path, "rb");
    size_t got = file ? fread(text, 1, capacity - 1, file) : 0;
    text[got] = '\0';
    if (file)
        fclose(file);
}

/* Runs `sepconv ARGS` (ARGS already shell-quoted), capturing both streams. */
static outcome *run_cli(const char *args)
{
    static outcome result;
    const char *cli = getenv("SEPCONV_CLI");
    ck_assert_msg(cli != NULL, "SEPCONV_CLI is not set (run through make test)");
    char out_path[] = "/tmp/sepconv-cli-out-XXXXXX";
    char err_path[] = "/tmp/sepconv-cli-err-XXXXXX";
    close(mkstemp(out_path));
    close(mkstemp(err_path));
    char command[8192];
    const char *root = getenv("SEPCONV_ROOT");
    snprintf(command, sizeof command, "cd '%s' && '%s' %s >%s 2>%s",
             root ? root : ".", cli, args, out_path, err_path);
    int status = system(command);
    ck_assert_msg(WIFEXITED(status), "'%s' did not exit normally", command);
    result.code = WEXITSTATUS(status);
    slurp(out_path, result.out, sizeof result.out);
    slurp(err_path, result.err, sizeof result.err);
    unlink(out_path);
    unlink(err_path);
    return &result;
}

/* A path under the build's absolute CLI path, made absolute if relative. */
static void absolute_cli(void)
{
    const char *cli = getenv("SEPCONV_CLI");
    const char *root = getenv("SEPCONV_ROOT");
    if (cli && cli[0] != '/' && root) {
        static char path[4096];
        snprintf(path, sizeof path, "%s/%s", root, cli);
        setenv("SEPCONV_CLI", path, 1);
    }
}

START_TEST(help_and_version)
{
    outcome *r = run_cli("--help");
    ck_assert_int_eq(r->code, 0);
    ck_assert_ptr_nonnull(strstr(r->out, "usage: sepconv <command>"));
    ck_assert_ptr_nonnull(strstr(r->out, "cost"));
    ck_assert_str_eq(r->err, "");
    r = run_cli("cost --help");
    ck_assert_int_eq(r->code, 0);
    ck_assert_ptr_nonnull(strstr(r->out, "usage: sepconv cost SPEC|FILE"));
    r = run_cli("--version");
    ck_assert_int_eq(r->code, 0);
    ck_assert_ptr_nonnull(strstr(r->out, SEPCONV_VERSION));
}
END_TEST

START_TEST(bad_usage_exits_2)
{
    outcome *r = run_cli("");
    ck_assert_int_eq(r->code, 2);
    ck_assert_ptr_nonnull(strstr(r->err, "usage"));
    r = run_cli("frobnicate");
    ck_assert_int_eq(r->code, 2);
    ck_assert_ptr_nonnull(strstr(r->err, "unknown command 'frobnicate'"));
    ck_assert_str_eq(r->out, "");
    r = run_cli("cost --bogus df=8 m=4 n=4 dk=3");
    ck_assert_int_eq(r->code, 2);
    ck_assert_ptr_nonnull(strstr(r->err, "unknown option '--bogus'"));
    r = run_cli("cost");
    ck_assert_int_eq(r->code, 2);
    ck_assert_ptr_nonnull(strstr(r->err, "missing SPEC or FILE"));
    r = run_cli("reference df=4 m=2 n=2 dk=3 --repeat 0");
    ck_assert_int_eq(r->code, 2);
    r = run_cli("reference df=4 m=2 n=2 dk=3 --repeat");
    ck_assert_int_eq(r->code, 2);
}
END_TEST

START_TEST(bad_specs_exit_1_with_the_reason)
{
    outcome *r = run_cli("cost op=sep df=0 m=32 n=64 dk=3");
    ck_assert_int_eq(r->code, 1);
    ck_assert_str_eq(r->out, "");
    ck_assert_str_eq(r->err, "sepconv cost: df=0 is out of range "
                             "(expected 1..2147483647)\n");
    r = run_cli("cost examples/does-not-exist.layers");
    ck_assert_int_eq(r->code, 1);
    ck_assert_ptr_nonnull(strstr(r->err, "cannot open"));
    r = run_cli("cost op=dw df=2147483647 m=2147483647 dk=1");
    ck_assert_int_eq(r->code, 1);
    ck_assert_ptr_nonnull(strstr(r->err, "64 bits"));
}
END_TEST

START_TEST(cost_of_one_layer)
{
    outcome *r = run_cli("cost op=sep df=14 m=512 n=1024 dk=3");
    ck_assert_int_eq(r->code, 0);
    ck_assert_ptr_nonnull(strstr(r->out, "ratio to conv   0.112"));
    /* 14*14*512*9 + 14*14*512*1024 */
    ck_assert_ptr_nonnull(strstr(r->out, "multiply-adds   103663616 (depthwise "
                                         "903168, pointwise 102760448)"));
    ck_assert_str_eq(r->err, "");
}
END_TEST

START_TEST(cost_of_mobilenet)
{
    outcome *r = run_cli("cost examples/mobilenet_v1.layers");
    ck_assert_int_eq(r->code, 0);
    ck_assert_ptr_nonnull(strstr(r->out, "sep13"));
    ck_assert_ptr_nonnull(strstr(r->out, "total: 568.740 million multiply-adds, "
                                         "4221032 parameters"));
    ck_assert_ptr_nonnull(strstr(r->out, "pointwise 540.516"));
    r = run_cli("cost examples/mobilenet_v1.layers --json");
    ck_assert_int_eq(r->code, 0);
    ck_assert_int_eq(r->out[0], '{');
    ck_assert_ptr_nonnull(strstr(r->out, "\"totals\":{\"macs\":568740352,"));
    ck_assert_ptr_nonnull(strstr(r->out, "\"spec\":\"op=sep name=sep13 df=7 m=1024"));
}
END_TEST

START_TEST(reference_reports_time)
{
    outcome *r = run_cli("reference op=sep df=8 m=4 n=8 dk=3 --repeat 2 --json");
    ck_assert_int_eq(r->code, 0);
    ck_assert_ptr_nonnull(strstr(r->out, "\"repeat\":2,\"median_ms\":"));
    ck_assert_ptr_nonnull(strstr(r->out, "\"gflops\":"));
}
END_TEST

Suite *cli_suite(void)
{
    absolute_cli();
    Suite *suite = suite_create("cli");
    TCase *c = tcase_create("cli");
    tcase_set_timeout(c, 60);
    tcase_add_test(c, help_and_version);
    tcase_add_test(c, bad_usage_exits_2);
    tcase_add_test(c, bad_specs_exit_1_with_the_reason);
    tcase_add_test(c, cost_of_one_layer);
    tcase_add_test(c, cost_of_mobilenet);
    tcase_add_test(c, reference_reports_time);
    suite_add_tcase(suite, c);
    return suite;
}
