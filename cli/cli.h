/*
 * cli/cli.h - the subcommands of the `tapegrad` program (not installed).
 *
 * Each subcommand is `int run(int argc, char **argv)` with argv[0] its own
 * name, returning the process exit status: 0 success, 1 a runtime failure,
 * 2 a usage error. Errors go to stderr, one line each.
 */
#ifndef TG_CLI_H
#define TG_CLI_H

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* `tapegrad explain EXPR [name=value ...] [--trace] [--dot FILE] [--json]` */
int tg_cli_explain(int argc, char **argv);
/* `tapegrad gradcheck [--op NAME] [--repeats N] [--seed N]` */
int tg_cli_gradcheck(int argc, char **argv);
/* `tapegrad train DATA [options]` (cli/train.c) */
int tg_cli_train(int argc, char **argv);
/* `tapegrad eval MODEL DATA [--target COL]` (cli/eval.c) */
int tg_cli_eval(int argc, char **argv);

#endif
