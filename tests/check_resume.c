/*
 * tests/check_resume.c - training that survives SIGKILL (nn/resume.c).
 *
 * `check_resume N`: a child process trains a small MLP with Adam, shuffling, mini-batches and a
 * step schedule through tg_nn_train_resumable, saving its state every 3 updates and reporting each
 * update through a pipe; the parent kills it with SIGKILL at a random point (a random number of
 * updates on, plus a random delay of up to 3 ms, so kills land inside updates, inside saves and
 * between them; a child waits for its kill 12 updates past the target, so a fast machine cannot
 * finish the run before it), N times, starting it again with resume each time, then lets a last
 * run finish. The parameters at the end must be bit-identical to those of a run that was never
 * interrupted (and that run's to tg_nn_train's). N is 20 in the `unit` suite and 200 in `slow`.
 *
 * Also: a save that fails for lack of room (RLIMIT_FSIZE) leaves the previous state file intact
 * and says so; a state file that does not fit is refused with nothing changed.
 */
#include <check.h>
#include "run-suite.h"
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <tapegrad/tapegrad.h>

static int kills = 20;
static char dir[64], path[128];

/* 64 rows of 2 features in 3 classes (by the sign pattern of a rotation). */
static struct tg_dataset *data(void)
{
    struct tg_tensor *X = tg_tensor_zeros(TG_F64, 2, (int64_t[]){64, 2});
    struct tg_tensor *y = tg_tensor_zeros(TG_F64, 1, (int64_t[]){64});
    struct tg_rng rng;
    tg_rng_seed(&rng, 99);
    for (int i = 0; i < 64; i++) {
        double a = tg_rng_normal(&rng), b = tg_rng_normal(&rng);
        tg_tensor_set(X, 2 * i, a);
        tg_tensor_set(X, 2 * i + 1, b);
        tg_tensor_set(y, i, a + 0.5 * b > 0 ? (a - b > 0 ? 2 : 1) : 0);
    }
    return tg_dataset_new(X, y);
}

static struct tg_nn_mlp *model(void)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, 7);
    return tg_nn_mlp_new((int64_t[]){2, 8, 3}, 3, TG_ACT_TANH, TG_ACT_NONE, TG_F64,
                         TG_INIT_XAVIER_UNIFORM, &rng);
}

static struct tg_nn_train_config config(int epochs)
{
    struct tg_nn_train_config c = tg_nn_train_defaults();
    c.loss = TG_LOSS_XENT;
    c.mode = TG_TRAIN_MINIBATCH;
    c.batch_size = 16;
    c.shuffle = true;
    c.seed = 5;
    c.optim = tg_nn_optim_defaults(TG_OPTIM_ADAM);
    c.optim.lr = 0.01;
    c.schedule = (struct tg_nn_lr_schedule){.kind = TG_LR_STEP, .step_size = 3, .gamma = 0.9};
    c.max_epochs = epochs;
    return c;
}

/* Whether every parameter of a is in b with the same bytes (b, a state file,
 * may hold more). */
static bool same_bits(const struct tg_params *a, const struct tg_params *b)
{
    if (tg_params_count(a) != 4) return false;
    for (size_t i = 0; i < tg_params_count(a); i++) {
        const struct tg_tensor *x = tg_params_tensor(a, i),
                               *y = tg_params_get(b, tg_params_name(a, i));
        if (!y || tg_tensor_numel(x) != tg_tensor_numel(y) ||
            memcmp(tg_tensor_data(x), tg_tensor_data(y), (size_t)tg_tensor_numel(x) * 8))
            return false;
    }
    return true;
}

static int report_fd = -1;
static int64_t stop_at = INT64_MAX;
static int report(int64_t updates, void *ctx)
{
    (void)ctx;
    if (write(report_fd, &updates, sizeof updates) != (ssize_t)sizeof updates) _exit(3);
    /* The child never runs past stop_at: on a fast disk a few milliseconds can
     * hold the rest of the run, and a child that finished could not be killed. */
    while (updates >= stop_at) pause();
    return 0;
}

/* A whole run (resumed from `path` when it exists) in this process. */
static enum tg_status train(struct tg_nn_mlp *m, int epochs, bool resume,
                            int (*on_update)(int64_t, void *))
{
    struct tg_dataset *ds = data();
    struct tg_nn_train_config c = config(epochs);
    struct tg_nn_resume_config rc = {path, 3, resume, on_update, NULL};
    struct tg_nn_module mod = tg_nn_mlp_module(m);
    enum tg_status st = tg_nn_train_resumable(&mod, ds, &c, &rc, NULL);
    tg_dataset_free(ds);
    return st;
}

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/tg-resume-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/state.safetensors", dir);
}

static int dir_entries(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    const struct dirent *de;
    while ((de = readdir(d))) n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    const struct dirent *de;
    char p[384];
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            unlink(p);
        }
    closedir(d);
    rmdir(dir);
}

/* An uninterrupted resumable run equals tg_nn_train, bit for bit. */
START_TEST(test_same_as_tg_nn_train)
{
    make_dir();
    struct tg_nn_mlp *a = model(), *b = model();
    ck_assert_int_eq(train(a, 12, false, NULL), TG_OK);
    struct tg_dataset *ds = data();
    struct tg_nn_train_config c = config(12);
    struct tg_nn_module mod = tg_nn_mlp_module(b);
    ck_assert_int_eq(tg_nn_train(&mod, ds, &c, NULL), TG_OK);
    ck_assert(same_bits(tg_nn_mlp_params(a), tg_nn_mlp_params(b)));
    /* the file holds the final parameters, and a finished run resumes as done */
    struct tg_params *f = tg_checkpoint_read(path);
    ck_assert(same_bits(tg_nn_mlp_params(a), f));
    ck_assert_str_eq(tg_params_meta_get(f, "resume.done"), "1");
    tg_params_free(f);
    ck_assert_int_eq(train(b, 12, true, NULL), TG_OK);
    ck_assert(same_bits(tg_nn_mlp_params(a), tg_nn_mlp_params(b)));
    tg_dataset_free(ds);
    tg_nn_mlp_free(a);
    tg_nn_mlp_free(b);
    remove_dir();
}
END_TEST

/* Starts a child that resumes the run and reports its updates. */
static pid_t start_child(int epochs, int64_t stop, int *rfd)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        report_fd = fds[1];
        stop_at = stop;
        struct tg_nn_mlp *m = model();
        int rc = m && train(m, epochs, true, report) == TG_OK ? 0 : 4;
        tg_nn_mlp_free(m); /* valgrind checks the child's leaks too */
        _exit(rc);
    }
    close(fds[1]);
    *rfd = fds[0];
    return pid;
}

START_TEST(test_kill_and_resume)
{
    make_dir();
    int epochs = 2 * kills;
    struct tg_nn_mlp *ref = model();
    ck_assert_int_eq(train(ref, epochs, false, NULL), TG_OK);
    unlink(path);
    srand((unsigned)time(NULL));
    int64_t seen = 0;
    int killed = 0, finished_early = 0;
    for (int k = 0; k < kills; k++) {
        int fd;
        int64_t target = seen + 1 + rand() % 4, u = 0;
        /* the kill lands up to 12 updates (4 saves) past the target */
        pid_t pid = start_child(epochs, target + 12, &fd);
        while (u < target && read(fd, &u, sizeof u) == (ssize_t)sizeof u) seen = u;
        usleep((useconds_t)(rand() % 3000));
        kill(pid, SIGKILL);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        close(fd);
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
            killed++;
        else
            finished_early += WIFEXITED(status) && WEXITSTATUS(status) == 0;
        ck_assert_msg(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0),
                      "kill %d: the child failed (status %d)", k, status);
    }
    ck_assert_int_eq(killed, kills);
    ck_assert_int_eq(finished_early, 0);
    /* the last run, to the end */
    int fd;
    pid_t pid = start_child(epochs, INT64_MAX, &fd);
    int64_t u;
    while (read(fd, &u, sizeof u) == (ssize_t)sizeof u) seen = u;
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    close(fd);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_int_eq(seen, 4 * epochs);
    struct tg_params *f = tg_checkpoint_read(path);
    ck_assert_ptr_nonnull(f);
    ck_assert_msg(same_bits(tg_nn_mlp_params(ref), f), "the resumed run differs");
    tg_params_free(f);
    ck_assert_int_eq(dir_entries(), 1); /* the killed saves' temporary files were removed */
    printf("resume: %d kills survived, parameters bit-identical after %lld updates\n", killed,
           (long long)seen);
    tg_nn_mlp_free(ref);
    remove_dir();
}
END_TEST

/* A save that runs out of room (RLIMIT_FSIZE, as a full disk) fails with
 * TG_ERR_IO saying the previous state is unchanged, and it is. */
START_TEST(test_full_disk_keeps_previous)
{
    make_dir();
    struct tg_nn_mlp *m = model();
    ck_assert_int_eq(train(m, 2, false, NULL), TG_OK);
    FILE *fp = fopen(path, "rb");
    static unsigned char before[1 << 16], after[1 << 16];
    size_t n = fread(before, 1, sizeof before, fp);
    fclose(fp);
    ck_assert(n > 1000 && n < sizeof before);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {n / 2, n / 2};
        if (setrlimit(RLIMIT_FSIZE, &rl)) _exit(5);
        enum tg_status st = train(m, 3, true, NULL); /* resumes, runs an epoch, saves */
        bool said = strstr(tg_last_error(), "the previous state at") &&
                    strstr(tg_last_error(), "is unchanged");
        if (!said) fprintf(stderr, "message: %s\n", tg_last_error());
        tg_nn_mlp_free(m);
        _exit(st == TG_ERR_IO && said ? 0 : 6);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    fp = fopen(path, "rb");
    size_t n2 = fread(after, 1, sizeof after, fp);
    fclose(fp);
    ck_assert(n2 == n && !memcmp(before, after, n));
    ck_assert_int_eq(dir_entries(), 1); /* no temporary file left */
    tg_nn_mlp_free(m);
    remove_dir();
}
END_TEST

/* A state file that does not fit the run is refused, nothing changed. */
START_TEST(test_mismatch_refused)
{
    make_dir();
    struct tg_nn_mlp *m = model();
    ck_assert_int_eq(train(m, 1, false, NULL), TG_OK);
    struct tg_dataset *ds = data();
    struct tg_nn_train_config c = config(2);
    c.optim = tg_nn_optim_defaults(TG_OPTIM_MOMENTUM);
    struct tg_nn_optim *opt = tg_nn_optim_new(tg_nn_mlp_params(m), &c.optim);
    struct tg_nn_train_state st = {0};
    struct tg_tensor *w = tg_nn_mlp_weight(m, 0);
    double w0 = tg_tensor_get(w, 0);
    ck_assert_int_eq(tg_nn_resume_load(path, tg_nn_mlp_params(m), opt, ds, &st), TG_ERR_MISMATCH);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "optimizer kind"));
    tg_nn_optim_free(opt);
    struct tg_nn_mlp *other = tg_nn_mlp_new((int64_t[]){2, 4, 3}, 3, TG_ACT_TANH, TG_ACT_NONE,
                                            TG_F64, TG_INIT_XAVIER_UNIFORM, &st.rng);
    ck_assert_int_eq(tg_nn_resume_load(path, tg_nn_mlp_params(other), NULL, NULL, &st),
                     TG_ERR_MISMATCH);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "layers.0.weight"));
    ck_assert_double_eq(tg_tensor_get(w, 0), w0);
    ck_assert_int_eq(st.updates, 0);
    tg_nn_mlp_free(other);
    tg_dataset_free(ds);
    tg_nn_mlp_free(m);
    remove_dir();
}
END_TEST

int main(int argc, char **argv)
{
    if (argc > 1) kills = atoi(argv[1]);
    Suite *s = suite_create("resume");
    TCase *tc = tcase_create("resume");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, test_same_as_tg_nn_train);
    tcase_add_test(tc, test_kill_and_resume);
    tcase_add_test(tc, test_full_disk_keeps_previous);
    tcase_add_test(tc, test_mismatch_refused);
    suite_add_tcase(s, tc);
    return tg_test_run_suite(s);
}
