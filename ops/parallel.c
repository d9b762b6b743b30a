/*
 * ops/parallel.c - the worker threads of tapegrad/threads.h and tg__parallel,
 * the one way ops use them.
 *
 * A section is n parts, part w run by fn(ctx, w). The caller takes part 0 and
 * the parts n_threads, 2 n_threads, ...; worker k (1..n_threads - 1) takes
 * parts k, k + n_threads, ... So which thread runs a part is fixed, and an op
 * that gives every part its own buffers gets the same results however the
 * threads are scheduled. The workers sleep on a condition variable between
 * sections (a section is a whole convolution or pooling pass: milliseconds,
 * so the tens of microseconds a wake-up costs do not matter). One section at a
 * time: a caller that finds the pool busy (another thread's tape) runs all of
 * its parts itself.
 *
 * Inside a section the workers use the caller's matmul backend (it is
 * thread-local) and never split a product again (tg__parallel_width is 1
 * there). With more than one thread OpenBLAS is set to one thread: tapegrad's
 * own threads split the large products (ops/matmul.c), so OpenBLAS's threads,
 * which spin for a while after each product they share, never compete with
 * them; tg_threads_set(1) gives OpenBLAS its setting back.
 */
#include <pthread.h>
#include "ops-impl.h"
#include "tapegrad/threads.h"
#include "tg-config.h"
#if TG_HAVE_BLAS
#include <cblas.h>
#endif

struct pool {
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    pthread_t tid[TG_THREADS_MAX];
    int n_threads;           /* the caller + the workers */
    bool busy, quit;         /* a section runs; the workers must end */
    unsigned long gen;       /* sections started */
    unsigned long gen0;      /* gen when the workers were started */
    int pending;             /* workers still in the current section */
    void (*fn)(void *, int); /* the current section */
    void *ctx;
    int n_parts;
    enum tg_matmul_backend backend;
    int blas_threads; /* OpenBLAS's setting before the workers started (0: none saved) */
};

/* Whether this thread runs a part of a section now. */
static _Thread_local bool in_section;

static struct pool pool = {PTHREAD_MUTEX_INITIALIZER,
                           PTHREAD_COND_INITIALIZER,
                           PTHREAD_COND_INITIALIZER,
                           {0},
                           1,
                           false,
                           false,
                           0,
                           0,
                           0,
                           NULL,
                           NULL,
                           0,
                           TG_MATMUL_AUTO,
                           0};

/* Part w, w + stride, ... of the current section. */
static void run_parts(int first, int stride)
{
    in_section = true;
    for (int w = first; w < pool.n_parts; w += stride) pool.fn(pool.ctx, w);
    in_section = false;
}

/* OpenBLAS on one thread while tapegrad has several, its own setting otherwise. */
static void set_blas_threads(int n)
{
#if TG_HAVE_BLAS
    if (n > 1 && !pool.blas_threads) {
        pool.blas_threads = openblas_get_num_threads();
        openblas_set_num_threads(1);
    } else if (n == 1 && pool.blas_threads) {
        openblas_set_num_threads(pool.blas_threads);
        pool.blas_threads = 0;
    }
#else
    (void)n;
#endif
}

/* About 0.1 ms of waiting in a spin before sleeping on a condition variable:
 * the gaps between a step's sections are shorter than that, and a thread woken
 * from sleep (on a virtual machine especially) can take far longer to run. */
enum { SPIN = 4096 };

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *worker(void *arg)
{
    int k = (int)(intptr_t)arg;
    pthread_mutex_lock(&pool.mu);
    /* not pool.gen: a section may have begun before this thread first ran */
    unsigned long seen = pool.gen0;
    pthread_mutex_unlock(&pool.mu);
    for (;;) {
        for (int i = 0; i < SPIN && __atomic_load_n(&pool.gen, __ATOMIC_ACQUIRE) == seen &&
                        !__atomic_load_n(&pool.quit, __ATOMIC_ACQUIRE);
             i++)
            cpu_relax();
        pthread_mutex_lock(&pool.mu);
        while (!pool.quit && __atomic_load_n(&pool.gen, __ATOMIC_ACQUIRE) == seen)
            pthread_cond_wait(&pool.work, &pool.mu);
        bool quit = pool.quit;
        pthread_mutex_unlock(&pool.mu);
        if (quit) break;
        seen = __atomic_load_n(&pool.gen, __ATOMIC_ACQUIRE);
        tg_matmul_set_backend(pool.backend);
        run_parts(k, pool.n_threads);
        if (__atomic_sub_fetch(&pool.pending, 1, __ATOMIC_ACQ_REL) == 0) {
            pthread_mutex_lock(&pool.mu);
            pthread_cond_signal(&pool.done);
            pthread_mutex_unlock(&pool.mu);
        }
    }
    return NULL;
}

/* Ends every worker; the pool is then 1 thread. Called with mu held, not busy;
 * marked busy meanwhile, so that a tape on another thread runs its parts itself
 * instead of starting a section for workers that are ending. */
static void stop_workers(void)
{
    int n = pool.n_threads;
    pool.busy = true;
    __atomic_store_n(&pool.quit, true, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&pool.work);
    pthread_mutex_unlock(&pool.mu);
    for (int k = 1; k < n; k++) pthread_join(pool.tid[k], NULL);
    pthread_mutex_lock(&pool.mu);
    __atomic_store_n(&pool.quit, false, __ATOMIC_RELEASE);
    __atomic_store_n(&pool.n_threads, 1, __ATOMIC_RELAXED);
    pool.busy = false;
}

/* fork() copies only the calling thread: the child has no workers, so its pool
 * starts again with one thread (and a mutex no worker holds). */
static void before_fork(void)
{
    pthread_mutex_lock(&pool.mu);
}
static void after_fork_parent(void)
{
    pthread_mutex_unlock(&pool.mu);
}
static void after_fork_child(void)
{
    pthread_mutex_init(&pool.mu, NULL);
    pthread_cond_init(&pool.work, NULL);
    pthread_cond_init(&pool.done, NULL);
    pool.busy = pool.quit = false;
    pool.n_threads = 1;
    pool.pending = 0;
    /* blas_threads kept: tg_threads_set(1) gives OpenBLAS its setting back */
}
static void install_fork_handlers(void)
{
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

enum tg_status tg_threads_set(int n)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_fork_handlers);
    static const char fn[] = "tg_threads_set";
    if (n < 1 || n > TG_THREADS_MAX)
        return tg__fail(TG_ERR_VALUE, "%s: %d threads: the count must lie in 1..%d", fn, n,
                        TG_THREADS_MAX);
    pthread_mutex_lock(&pool.mu);
    if (pool.busy) {
        pthread_mutex_unlock(&pool.mu);
        return tg__fail(
            TG_ERR_STATE,
            "%s: a parallel section or another tg_threads_set is running on another thread", fn);
    }
    enum tg_status st = TG_OK;
    if (n != pool.n_threads) {
        stop_workers();
        pool.gen0 = __atomic_load_n(&pool.gen, __ATOMIC_RELAXED);
        int k = 1;
        for (; k < n; k++)
            if (pthread_create(&pool.tid[k], NULL, worker, (void *)(intptr_t)k)) break;
        __atomic_store_n(&pool.n_threads, k, __ATOMIC_RELAXED);
        if (k < n) {
            stop_workers();
            st = tg__fail(TG_ERR_NOMEM, "%s: could not start worker thread %d of %d; using 1", fn,
                          k, n - 1);
        }
    }
    set_blas_threads(pool.n_threads);
    pthread_mutex_unlock(&pool.mu);
    return st;
}

int tg_threads_get(void)
{
    return __atomic_load_n(&pool.n_threads, __ATOMIC_RELAXED);
}

int tg__parallel_width(void)
{
    return in_section ? 1 : __atomic_load_n(&pool.n_threads, __ATOMIC_RELAXED);
}

void tg__parallel(int n_parts, void (*fn)(void *ctx, int part), void *ctx)
{
    if (n_parts == 1) {
        fn(ctx, 0);
        return;
    }
    pthread_mutex_lock(&pool.mu);
    if (n_parts < 1 || pool.n_threads < 2 || pool.busy || in_section) {
        pthread_mutex_unlock(&pool.mu);
        bool was = in_section;
        in_section = true;
        for (int w = 0; w < n_parts; w++) fn(ctx, w);
        in_section = was;
        return;
    }
    pool.busy = true;
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n_parts = n_parts;
    pool.backend = tg_matmul_get_backend();
    __atomic_store_n(&pool.pending, pool.n_threads - 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&pool.gen, 1, __ATOMIC_RELEASE); /* publishes the section */
    int stride = pool.n_threads;
    pthread_cond_broadcast(&pool.work);
    pthread_mutex_unlock(&pool.mu);
    run_parts(0, stride);
    for (int i = 0; i < SPIN && __atomic_load_n(&pool.pending, __ATOMIC_ACQUIRE) > 0; i++)
        cpu_relax();
    pthread_mutex_lock(&pool.mu);
    while (__atomic_load_n(&pool.pending, __ATOMIC_ACQUIRE) > 0)
        pthread_cond_wait(&pool.done, &pool.mu);
    pool.busy = false;
    pthread_mutex_unlock(&pool.mu);
}
