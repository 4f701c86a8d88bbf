/*
 * main.c -- the sepconv command: dispatches to one file per subcommand.
 */
#define _POSIX_C_SOURCE 200809L /* sigaction */
#include <signal.h>
#include <string.h>

#include <lua.h>

#include "cli.h"

static const cli_command *const commands[] = {
    &cli_cost_command,
    &cli_schedules_command,
    &cli_gen_command,
    &cli_jit_command,
    &cli_tune_command,
    &cli_log_command,
    &cli_run_command,
    &cli_reference_command,
};
#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

/* Prints the top-level help. */
static void print_help(FILE *out)
{
    fprintf(out,
            "usage: sepconv <command> [arguments]\n\n"
            "sepconv generates shape-specialized depthwise separable "
            "convolution kernels.\n\ncommands:\n");
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        fprintf(out, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(out,
            "\nA layer is written as key=value tokens, e.g.\n"
            "  sepconv cost op=sep df=112 m=32 n=64 dk=3\n"
            "Where a command takes a model FILE, '-' reads it from standard input;\n"
            "output goes to standard output unless -o (or --output) names a file.\n"
            "'sepconv help <command>' or 'sepconv <command> --help' describes a\n"
            "command; 'sepconv --version' prints the versions.\n"
            "Exit status: 0 success, 1 failure, 2 bad usage (an unknown option, a\n"
            "bad value, spec or schedule on the command line).\n");
    cli_print_environment(out);
}

/* Prints the versions of sepconv and of what it embeds. */
static void print_version(FILE *out)
{
    fprintf(out, "sepconv %s\n", SEPCONV_VERSION);
#ifdef SEPCONV_TCC_VERSION
    if (SEPCONV_TCC_VERSION[0])
        fprintf(out, "libtcc %s\n", SEPCONV_TCC_VERSION);
#endif
    fprintf(out, "%s\n", LUA_RELEASE);
}

/* The subcommand called `name`, or NULL. */
static const cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        if (strcmp(name, commands[i]->name) == 0)
            return commands[i];
    return NULL;
}

/* Reports an unknown subcommand. */
static int unknown_command(const char *name)
{
    fprintf(stderr, "sepconv: unknown command '%s'\nTry 'sepconv --help'.\n", name);
    return CLI_USAGE;
}

/* Runs what the command line asks for; returns the exit status. */
static int dispatch(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stderr);
        return CLI_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 ||
        (strcmp(name, "help") == 0 && argc == 2)) {
        print_help(stdout);
        return CLI_OK;
    }
    if (strcmp(name, "help") == 0) {
        const cli_command *command = find_command(argv[2]);
        if (!command)
            return unknown_command(argv[2]);
        if (argc > 3)
            return cli_usage("help", "give one command, not '%s' as well", argv[3]);
        cli_print_help(stdout, command->help);
        return CLI_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        if (argc > 2)
            return cli_usage("version", "takes no arguments, not '%s'", argv[2]);
        print_version(stdout);
        return CLI_OK;
    }
    const cli_command *command = find_command(name);
    if (!command)
        return unknown_command(name);
    for (int a = 2; a < argc; a++)
        if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
            cli_print_help(stdout, command->help);
            return CLI_OK;
        }
    return command->run(argc - 1, argv + 1);
}

/* ---- signals (cc backend): a compiler runs in its own process group,
 * which a terminal's ^C or a kill of sepconv does not reach. */

/* Kills the running compilers and removes their files, then dies of the
 * signal as if there were no handler. */
static void on_terminating_signal(int number)
{
    sepconv_cc_kill_all();
    signal(number, SIG_DFL);
    raise(number);
}

/* Installs the handler for the signals that end sepconv. */
static void install_signal_handlers(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_terminating_signal;
    sigfillset(&action.sa_mask);
    const int numbers[] = {SIGTERM, SIGINT, SIGHUP};
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        struct sigaction old;
        /* a signal ignored by whoever started us (nohup) stays ignored */
        if (sigaction(numbers[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
            sigaction(numbers[i], &action, NULL);
    }
}
/* ---- end of signals */

int main(int argc, char **argv)
{
    install_signal_handlers();
    /* every command's output is checked here, once, after it returns */
    return cli_finish_stdout(dispatch(argc, argv));
}
