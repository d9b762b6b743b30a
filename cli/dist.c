/*
 * cli/dist.c - `mpirun -np N tapegrad train DATA ... --dist`: the command's
 * training on N ranks (tg_dist_train, tapegrad/dist.h). Every rank loads the
 * data and builds the model alike; the trainer broadcasts rank 0's weights,
 * gives each rank its part of every batch and averages the gradients. Only
 * rank 0 prints (the others' stdout goes to /dev/null; errors still reach
 * stderr) and writes files.
 */
#include <stdio.h>
#include "cli-dist.h"
#include "cli.h"
#include <tapegrad/dist.h>

static struct tg_dist *dist;

int cli_dist_begin(bool *rank0)
{
    dist = tg_dist_init(NULL, NULL);
    if (!dist) {
        fprintf(stderr, "tapegrad train: --dist: %s\n", tg_last_error());
        return CLI_FAIL;
    }
    *rank0 = tg_dist_rank(dist) == 0;
    if (!*rank0 && !freopen("/dev/null", "w", stdout)) {
        fprintf(stderr, "tapegrad train: rank %d: cannot silence stdout\n", tg_dist_rank(dist));
        return CLI_FAIL;
    }
    if (*rank0) printf("data-parallel: %d ranks\n", tg_dist_size(dist));
    return CLI_OK;
}

enum tg_status cli_dist_train(const struct tg_nn_module *model, struct tg_dataset *ds,
                              const struct tg_nn_train_config *cfg)
{
    return tg_dist_train(dist, model, ds, cfg, NULL, NULL);
}

void cli_dist_end(void)
{
    tg_dist_finalize(dist);
    dist = NULL;
}
