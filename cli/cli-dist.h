/*
 * cli/cli-dist.h - `tapegrad train --dist` (cli/dist.c, compiled only when the
 * build has MPI: TG_CLI_DIST). Not installed.
 */
#ifndef TG_CLI_DIST_H
#define TG_CLI_DIST_H

#include <stdbool.h>
#include <tapegrad/tapegrad.h>

/* Starts MPI (tg_dist_init); on every rank but 0, stdout goes to /dev/null so
 * that only rank 0 prints. *rank0 says whether this is rank 0 (it alone writes
 * files). CLI_OK, or CLI_FAIL with a message on stderr. */
int cli_dist_begin(bool *rank0);
/* tg_dist_train with cfg, the parameters broadcast from rank 0 first. */
enum tg_status cli_dist_train(const struct tg_nn_module *model, struct tg_dataset *ds,
                              const struct tg_nn_train_config *cfg);
/* Ends MPI; a no-op when cli_dist_begin was not called or failed. */
void cli_dist_end(void);

#endif
