/*
 * main.c -- the sepconv command: dispatches to one file per subcommand.
 */
#include <string.h>

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
            "'sepconv <command> --help' describes a command.\n"
            "Exit status: 0 success, 1 failure, 2 bad usage.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stderr);
        return CLI_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 ||
        strcmp(name, "help") == 0) {
        print_help(stdout);
        return CLI_OK;
    }
    if (strcmp(name, "--version") == 0) {
        printf("sepconv %s\n", SEPCONV_VERSION);
        return CLI_OK;
    }
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        if (strcmp(name, commands[i]->name) != 0)
            continue;
        for (int a = 2; a < argc; a++)
            if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
                fputs(commands[i]->help, stdout);
                return CLI_OK;
            }
        return commands[i]->run(argc - 1, argv + 1);
    }
    fprintf(stderr, "sepconv: unknown command '%s'\nTry 'sepconv --help'.\n",
            name);
    return CLI_USAGE;
}
