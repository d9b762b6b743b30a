/*
 * examples/lstm_add.c - an LSTM written from primitive ops, trained by truncated
 * backpropagation through time (BPTT) to add two binary numbers.
 *
 * The task: two numbers a and b are presented bit by bit, least significant bit
 * first, one pair of bits (a_t, b_t) per time step, followed by one step of
 * zeros; at each step the network predicts bit t of a + b. The answer is
 * checkable, and getting a whole sum right needs memory: bit t of the sum depends
 * on the carry out of all the earlier steps.
 *
 * The cell (hidden size H), from matmul, add, slice, sigmoid, tanh and mul:
 *     z = x_t Wx + h_{t-1} Wh + b                     (B, 4H)
 *     i = sigmoid(z[:, 0:H])     f = sigmoid(z[:, H:2H])
 *     g = tanh(z[:, 2H:3H])      o = sigmoid(z[:, 3H:4H])
 *     c_t = f * c_{t-1} + i * g  h_t = o * tanh(c_t)   (B, H)
 *     y_t = h_t Wy + by          (the logit of the sum bit, (B, 1))
 * and the loss of a step is the binary cross-entropy of y_t against the bit.
 *
 * Truncated BPTT: a sequence is cut into chunks of K steps. Each chunk is
 * recorded on the tape on top of the previous ones, its loss differentiated
 * (tg_backward) and the parameters updated (Adam); then the state (h, c) is
 * carried on through tg_detach, so the next chunk starts from its value but its
 * backward stops there: the sweep never reaches the earlier chunks again. The
 * tape is reset once per batch of sequences. docs/examples.md draws the graph.
 *
 * Training: 8-bit numbers (9 steps, chunks of 3); held-out: 16-bit numbers
 * (17 steps), so the network must have learned the carry rather than the sums
 * it saw. Prints `sequence accuracy: NN.NN%`, the share of held-out sums with
 * every bit right.
 *
 * Usage: lstm_add [--epochs N] [--chunk K] [--seed S] [--min-accuracy P] [--dot FILE]
 *   --epochs N        passes over the 2048 training sums (default 12; 0: untrained)
 *   --chunk K         the truncation length, 1..64 steps (default 3; 9 or more is
 *                     full BPTT over the 9 training steps; 1 lets no gradient
 *                     cross a time step)
 *   --seed S          the seed of the initial weights and of the data (default 1)
 *   --min-accuracy P  the sequence accuracy, in percent, that exit status 0 needs
 *                     (default 99)
 *   --dot FILE        write the graph of two time steps after a chunk boundary
 *                     (Graphviz DOT) to FILE and exit
 * Exit status 0 when the held-out sequence accuracy reaches P, 1 when it does not
 * or a library call failed (the error printed), 2 on a usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad/tapegrad.h>

enum {
    H = 16,         /* hidden size */
    TRAIN_BITS = 8, /* training sums: 8-bit numbers, 9 steps */
    TEST_BITS = 16, /* held-out sums: 16-bit numbers, 17 steps */
    N_TRAIN = 2048, /* training sums */
    N_TEST = 2000,  /* held-out sums */
    BATCH = 32,     /* sequences per batch */
    MAX_STEPS = TEST_BITS + 1,
};
#define LR 0.02

/* The parameters (leaves, requiring grad). */
struct lstm {
    struct tg_tensor *Wx; /* (2, 4H) */
    struct tg_tensor *Wh; /* (H, 4H) */
    struct tg_tensor *b;  /* (4H) */
    struct tg_tensor *Wy; /* (H, 1) */
    struct tg_tensor *by; /* (1) */
};

/* The recurrent state carried from step to step. */
struct state {
    struct tg_tensor *h, *c; /* (B, H) each */
};

/* A set of sums: n pairs of `bits`-bit numbers. */
struct sums {
    int n, bits;
    uint32_t *a, *b;
};

/* ---- the model ---- */

static struct tg_tensor *param(struct tg_params *p, const char *name, int rank,
                               const int64_t *shape, struct tg_rng *rng, double scale)
{
    struct tg_tensor *t = tg_tensor_uniform(TG_F32, rank, shape, rng, -scale, scale);
    if (!t || tg_tensor_set_requires_grad(t, true) || tg_params_add_owned(p, name, t)) return NULL;
    return t;
}

/* Uniform(-1/sqrt(H), 1/sqrt(H)) weights (PyTorch's LSTM init), forget-gate
 * bias 1 (so that the cell starts by keeping its memory). */
static int lstm_init(struct lstm *m, struct tg_params *p, struct tg_rng *rng)
{
    const double s = 0.25; /* 1 / sqrt(H) */
    m->Wx = param(p, "Wx", 2, (int64_t[]){2, 4 * H}, rng, s);
    m->Wh = param(p, "Wh", 2, (int64_t[]){H, 4 * H}, rng, s);
    m->b = param(p, "b", 1, (int64_t[]){4 * H}, rng, s);
    m->Wy = param(p, "Wy", 2, (int64_t[]){H, 1}, rng, s);
    m->by = param(p, "by", 1, (int64_t[]){1}, rng, s);
    if (!m->Wx || !m->Wh || !m->b || !m->Wy || !m->by) return -1;
    for (int k = H; k < 2 * H; k++)
        if (tg_tensor_set(m->b, k, 1.0)) return -1;
    return 0;
}

/* One time step: the new state from input x (B, 2) and the old state. A failed
 * op makes the results NULL (ops pass NULL on), which the caller checks. */
static struct state lstm_step(struct tg_tape *T, const struct lstm *m, struct tg_tensor *x,
                              struct state s)
{
    struct tg_tensor *z =
        tg_add(T, tg_add(T, tg_matmul(T, x, m->Wx), tg_matmul(T, s.h, m->Wh)), m->b); /* (B, 4H) */
    struct tg_tensor *i = tg_sigmoid(T, tg_slice_axis(T, z, 1, 0, H, 1));
    struct tg_tensor *f = tg_sigmoid(T, tg_slice_axis(T, z, 1, H, 2 * H, 1));
    struct tg_tensor *g = tg_tanh(T, tg_slice_axis(T, z, 1, 2 * H, 3 * H, 1));
    struct tg_tensor *o = tg_sigmoid(T, tg_slice_axis(T, z, 1, 3 * H, 4 * H, 1));
    struct tg_tensor *c = tg_add(T, tg_mul(T, f, s.c), tg_mul(T, i, g)); /* (B, H) */
    return (struct state){tg_mul(T, o, tg_tanh(T, c)), c};
}

/* The logit of the sum bit: (B, 1). */
static struct tg_tensor *lstm_out(struct tg_tape *T, const struct lstm *m, struct tg_tensor *h)
{
    return tg_add(T, tg_matmul(T, h, m->Wy), m->by);
}

/* ---- the data ---- */

static int sums_new(struct sums *s, int n, int bits, struct tg_rng *rng)
{
    s->n = n;
    s->bits = bits;
    s->a = malloc((size_t)n * sizeof *s->a);
    s->b = malloc((size_t)n * sizeof *s->b);
    if (!s->a || !s->b) return -1;
    for (int k = 0; k < n; k++) {
        s->a[k] = (uint32_t)tg_rng_below(rng, 1u << bits);
        s->b[k] = (uint32_t)tg_rng_below(rng, 1u << bits);
    }
    return 0;
}

static void sums_free(struct sums *s)
{
    free(s->a);
    free(s->b);
}

/* Step t of sums first..first+B-1: the input bits (B, 2) and target bits (B, 1),
 * as tape constants. Step `bits` (the last) has input 0 0 and the final carry
 * as its target. */
static void step_data(struct tg_tape *T, const struct sums *s, int first, int B, int t,
                      struct tg_tensor **x, struct tg_tensor **y)
{
    float xv[BATCH * 2], yv[BATCH];
    for (int r = 0; r < B; r++) {
        uint32_t a = s->a[first + r], b = s->b[first + r];
        xv[2 * r] = (float)((a >> t) & 1);
        xv[2 * r + 1] = (float)((b >> t) & 1);
        yv[r] = (float)(((a + b) >> t) & 1);
    }
    *x = tg_tape_constant(T, TG_F32, 2, (int64_t[]){B, 2}, xv);
    *y = tg_tape_constant(T, TG_F32, 2, (int64_t[]){B, 1}, yv);
}

static struct state zero_state(struct tg_tape *T, int B)
{
    return (struct state){tg_tape_constant(T, TG_F32, 2, (int64_t[]){B, H}, NULL),
                          tg_tape_constant(T, TG_F32, 2, (int64_t[]){B, H}, NULL)};
}

/* ---- training: truncated BPTT ---- */

/* One batch: the sequences of sums first..first+B-1, in chunks of K steps. Adds
 * the summed per-step losses to *loss. */
static enum tg_status train_batch(struct tg_tape *T, const struct lstm *m, struct tg_nn_optim *opt,
                                  const struct sums *s, int first, int B, int K, double *loss)
{
    const int steps = s->bits + 1;
    tg_tape_reset(T);
    struct state st = zero_state(T, B);
    for (int t0 = 0; t0 < steps; t0 += K) {
        int t1 = t0 + K < steps ? t0 + K : steps;
        struct tg_tensor *L = NULL; /* the chunk's loss: the sum of its steps' */
        for (int t = t0; t < t1; t++) {
            struct tg_tensor *x, *y;
            step_data(T, s, first, B, t, &x, &y);
            st = lstm_step(T, m, x, st);
            struct tg_tensor *l = tg_bce_logits(T, lstm_out(T, m, st.h), y, TG_REDUCE_MEAN);
            L = L ? tg_add(T, L, l) : l;
        }
        if (!L) return tg_last_status();
        *loss += tg_tensor_item(L);
        enum tg_status err = tg_backward(L, NULL);
        if (err || (err = tg_nn_optim_step(opt, 1.0 / (t1 - t0)))) return err;
        /* the truncation: the next chunk starts from the state's value, and
         * its backward stops here */
        st.h = tg_detach(T, st.h);
        st.c = tg_detach(T, st.c);
    }
    return TG_OK;
}

/* ---- evaluation ---- */

/* The share of sums in s whose every bit the model predicts (in *seq) and of
 * bits predicted right (in *bit), recorded without gradients. */
static enum tg_status evaluate(struct tg_tape *T, const struct lstm *m, const struct sums *s,
                               double *seq, double *bit)
{
    const int steps = s->bits + 1;
    int seq_right = 0;
    long bits_right = 0;
    for (int first = 0; first < s->n; first += BATCH) {
        int B = s->n - first < BATCH ? s->n - first : BATCH;
        bool right[BATCH];
        memset(right, 1, sizeof right);
        tg_tape_reset(T);
        if (tg_tape_no_grad_push(T)) return tg_last_status();
        struct state st = zero_state(T, B);
        for (int t = 0; t < steps; t++) {
            struct tg_tensor *x, *y;
            step_data(T, s, first, B, t, &x, &y);
            st = lstm_step(T, m, x, st);
            struct tg_tensor *logit = lstm_out(T, m, st.h);
            if (!logit) {
                tg_tape_no_grad_pop(T);
                return tg_last_status();
            }
            for (int r = 0; r < B; r++) {
                bool ok = (tg_tensor_get(logit, r) > 0) == (tg_tensor_get(y, r) > 0.5);
                bits_right += ok;
                right[r] &= ok;
            }
        }
        tg_tape_no_grad_pop(T);
        for (int r = 0; r < B; r++) seq_right += right[r];
    }
    *seq = 100.0 * seq_right / s->n;
    *bit = 100.0 * (double)bits_right / ((double)s->n * steps);
    return TG_OK;
}

/* ---- the picture ---- */

/* The graph of two time steps with a chunk boundary between them, batch of one:
 * step 1 (the last of chunk k-1) from the zero state, the state detached, step
 * 2 (the first of chunk k) and its loss, drawn from that loss: what chunk k's
 * backward sees. */
static enum tg_status write_dot(const struct lstm *m, const char *path)
{
    uint32_t a = 0x5B, b = 0x37;
    const struct sums one = {1, TRAIN_BITS, &a, &b};
    struct tg_tape *T = tg_tape_new();
    FILE *f = fopen(path, "w");
    enum tg_status err = TG_OK;
    if (!T || !f) {
        err = f ? tg_last_status()
                : tg_set_error(TG_ERR_IO, "--dot: cannot write %s: %s", path, strerror(errno));
        goto out;
    }
    struct tg_tensor *x1, *y1, *x2, *y2;
    struct state s0 = zero_state(T, 1);
    step_data(T, &one, 0, 1, 0, &x1, &y1);
    step_data(T, &one, 0, 1, 1, &x2, &y2);
    struct state s1 = lstm_step(T, m, x1, s0);
    struct state cut = {tg_detach(T, s1.h), tg_detach(T, s1.c)}; /* the chunk boundary */
    struct state s2 = lstm_step(T, m, x2, cut);
    struct tg_tensor *L = tg_bce_logits(T, lstm_out(T, m, s2.h), y2, TG_REDUCE_MEAN);
    const struct tg_graph_name nm[] = {
        {m->Wx, "Wx"},  {m->Wh, "Wh"},  {m->b, "b"},  {m->Wy, "Wy"}, {m->by, "by"}, {s0.h, "h0"},
        {s0.c, "c0"},   {x1, "x1"},     {x2, "x2"},   {y2, "bit2"},  {s1.h, "h1"},  {s1.c, "c1"},
        {cut.h, "h1'"}, {cut.c, "c1'"}, {s2.h, "h2"}, {s2.c, "c2"},  {L, "loss2"},
    };
    struct tg_graph_names names = {nm, (int)(sizeof nm / sizeof nm[0])};
    struct tg_graph_dot_options o = {.names = &names, .max_values = -1, .rankdir = "BT"};
    if (!L || (err = tg_graph_dot(L, f, &o))) err = tg_last_status();
out:
    if (f && fclose(f) && !err)
        err = tg_set_error(TG_ERR_IO, "--dot: cannot write %s: %s", path, strerror(errno));
    tg_tape_free(T);
    return err;
}

/* ---- main ---- */

static int usage(void)
{
    fprintf(stderr, "usage: lstm_add [--epochs N] [--chunk K] [--seed S] [--min-accuracy P] "
                    "[--dot FILE]\n");
    return 2;
}

static bool parse_long(const char *s, long lo, long hi, long *v)
{
    char *end;
    *v = strtol(s, &end, 10);
    return end != s && !*end && *v >= lo && *v <= hi;
}

int main(int argc, char **argv)
{
    long epochs = 12, seed = 1, min_acc = 99, chunk = 3;
    const char *dot = NULL;
    for (int k = 1; k < argc; k++) {
        bool has = k + 1 < argc;
        if (!strcmp(argv[k], "--epochs") && has && parse_long(argv[k + 1], 0, 100000, &epochs))
            k++;
        else if (!strcmp(argv[k], "--seed") && has && parse_long(argv[k + 1], 0, 1L << 30, &seed))
            k++;
        else if (!strcmp(argv[k], "--min-accuracy") && has &&
                 parse_long(argv[k + 1], 0, 100, &min_acc))
            k++;
        else if (!strcmp(argv[k], "--chunk") && has && parse_long(argv[k + 1], 1, 64, &chunk))
            k++;
        else if (!strcmp(argv[k], "--dot") && has)
            dot = argv[++k];
        else
            return usage();
    }
    struct tg_rng rng;
    tg_rng_seed(&rng, (uint64_t)seed);
    struct lstm m;
    struct sums train = {0}, test = {0};
    struct tg_params *p = tg_params_new();
    struct tg_tape *T = tg_tape_new();
    struct tg_nn_optim_config oc = tg_nn_optim_defaults(TG_OPTIM_ADAM);
    oc.lr = LR;
    oc.zero_grad = true;
    struct tg_nn_optim *opt = NULL;
    enum tg_status err = TG_ERR_NOMEM;
    double seq = 0, bit = 0;
    if (!p || !T || lstm_init(&m, p, &rng) || !(opt = tg_nn_optim_new(p, &oc))) goto out;
    if (dot) {
        if (!(err = write_dot(&m, dot))) printf("wrote %s\n", dot);
        goto out;
    }
    if (sums_new(&train, N_TRAIN, TRAIN_BITS, &rng) || sums_new(&test, N_TEST, TEST_BITS, &rng))
        goto out;
    err = TG_OK;
    for (long e = 0; e < epochs && !err; e++) {
        double loss = 0;
        for (int first = 0; first < N_TRAIN && !err; first += BATCH)
            err = train_batch(T, &m, opt, &train, first, BATCH, (int)chunk, &loss);
        if (!err)
            printf("epoch %2ld  loss per step %.5f\n", e + 1,
                   loss / (N_TRAIN / BATCH) / (TRAIN_BITS + 1));
    }
    if (!err) err = evaluate(T, &m, &test, &seq, &bit);
    if (!err) {
        printf("held-out: %d sums of %d-bit numbers (%d steps; trained on %d-bit, %d steps)\n",
               N_TEST, TEST_BITS, TEST_BITS + 1, TRAIN_BITS, TRAIN_BITS + 1);
        printf("bit accuracy: %.2f%%\n", bit);
        printf("sequence accuracy: %.2f%%\n", seq);
    }
out:
    if (err) fprintf(stderr, "lstm_add: %s\n", tg_last_error());
    tg_nn_optim_free(opt);
    tg_tape_free(T);
    tg_params_free(p);
    sums_free(&train);
    sums_free(&test);
    if (err) return 1;
    return dot || seq >= (double)min_acc ? 0 : 1;
}
