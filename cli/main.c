/*
 * cli/main.c - the `tapegrad` program: dispatches to a subcommand.
 *
 * Adding a subcommand is one entry in `commands` (and its file in cli/).
 */
#include <stdio.h>
#include <string.h>
#include <tapegrad/tapegrad.h>
#include "cli.h"

static const struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"explain", tg_cli_explain, "value, gradients, Hessian and chain-rule trace of an expression"},
    {"gradcheck", tg_cli_gradcheck, "gradient-check every op of the table, as a table"},
    {"train", tg_cli_train, "train an MLP on a CSV file or IDX data"},
    {"eval", tg_cli_eval, "loss, accuracy and confusion matrix of a saved model"},
};
enum { N_COMMANDS = sizeof commands / sizeof commands[0] };

static void help(FILE *f)
{
    fprintf(f,
            "usage: tapegrad COMMAND [ARGS...]\n"
            "       tapegrad COMMAND --help\n\n"
            "tapegrad %s: reverse-mode automatic differentiation with a tape.\n\n"
            "commands:\n",
            TAPEGRAD_VERSION);
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        help(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        help(stdout);
        return CLI_OK;
    }
    if (!strcmp(cmd, "--version")) {
        printf("tapegrad %s\n", TAPEGRAD_VERSION);
        return CLI_OK;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(cmd, commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "tapegrad: unknown command '%s' (see tapegrad --help)\n", cmd);
    return CLI_USAGE;
}
