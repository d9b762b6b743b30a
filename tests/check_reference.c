/*
 * tests/check_reference.c - whole graphs against PyTorch: for every case in
 * tests/reference/reference.txt (written by tests/reference/gen_reference.py from
 * Debian's python3-torch, float64) this suite builds the same graph with tapegrad
 * in f64 from the case's `input` and `label` tensors, runs backward from the scalar
 * loss, and compares the loss and the gradient of every input. A case with `dir`
 * lines (the hvp_ cases: one direction v_i per input) also checks tg_hvp with
 * respect to all its inputs against the file's `hvp` lines (PyTorch's double
 * backward).
 *
 * Usage: check_reference PATH/reference.txt (meson passes the path).
 *
 * The file and this table must agree: a case in the file that the table does not
 * know fails, and so does a table case missing from the file; an input or label
 * that the C graph does not read fails too. A malformed line fails with its line
 * number (the parser is tested on broken inputs below).
 *
 * Measure: every element separately, |got - ref| / max(|ref|, 1e-12) <= 1e-9
 * (elementwise relative error with a floor, not a norm-relative one, so a small
 * gradient element is held to the same relative accuracy as a large one).
 */
#include <check.h>
#include "run-suite.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad/tapegrad.h>

#define REL_TOL   1e-9
#define REL_FLOOR 1e-12
#define NAME_LEN  64        /* case and tensor names: at most NAME_LEN - 1 characters */
#define MAX_NUMEL (1 << 20) /* a bigger tensor in the file is taken as a broken line */
#define MSG_LEN   1024      /* messages that report ... */
#define WHY_LEN   256       /* ... the reasons they quote */

/* ---- the file: one tensor per line ---- */

enum ref_kind { REF_INPUT, REF_LABEL, REF_OUTPUT, REF_GRAD, REF_DIR, REF_HVP, REF_KIND_COUNT };
static const char *const KIND_NAMES[REF_KIND_COUNT] = {"input", "label", "output",
                                                       "grad",  "dir",   "hvp"};

struct ref_tensor {
    char case_name[NAME_LEN];
    enum ref_kind kind;
    char name[NAME_LEN];
    int rank;
    int64_t shape[TG_MAX_DIM];
    int64_t numel;
    double *v; /* (numel) row-major */
    int line;
};

struct ref_file {
    struct ref_tensor *t; /* (n) in file order */
    size_t n, cap;
    char err[MSG_LEN]; /* "path:line: reason" after a failed parse */
};

static void ref_free(struct ref_file *rf)
{
    for (size_t i = 0; i < rf->n; i++) free(rf->t[i].v);
    free(rf->t);
    rf->t = NULL;
    rf->n = rf->cap = 0;
}

/* The next whitespace-separated token of *p (length 0 at the end of the line). */
static size_t next_token(const char **p, const char **tok)
{
    const char *s = *p;
    while (isspace((unsigned char)*s)) s++;
    const char *e = s;
    while (*e && !isspace((unsigned char)*e)) e++;
    *tok = s;
    *p = e;
    return (size_t)(e - s);
}

static bool token_int(const char *tok, size_t len, int64_t lo, int64_t hi, int64_t *out)
{
    char buf[32], *end;
    if (len == 0 || len >= sizeof buf) return false;
    memcpy(buf, tok, len);
    buf[len] = '\0';
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

static bool token_double(const char *tok, size_t len, double *out)
{
    char buf[64], *end;
    if (len == 0 || len >= sizeof buf) return false;
    memcpy(buf, tok, len);
    buf[len] = '\0';
    double v = strtod(buf, &end);
    if (*end || !isfinite(v)) return false;
    *out = v;
    return true;
}

static bool token_name(const char *tok, size_t len, char *out)
{
    if (len == 0 || len >= NAME_LEN) return false;
    memcpy(out, tok, len);
    out[len] = '\0';
    return true;
}

/* Parses the header `<case> <kind> <name> <rank> <dims...>` into t; *p is left
 * at the values. false with the reason in why. */
static bool parse_header(const char **p, struct ref_tensor *t, char *why, size_t n)
{
    const char *tok;
    size_t len = next_token(p, &tok);
    if (!token_name(tok, len, t->case_name))
        return snprintf(why, n, "case name longer than %d characters", NAME_LEN - 1), false;
    if (!(len = next_token(p, &tok))) return snprintf(why, n, "missing kind"), false;
    int k = 0;
    while (k < REF_KIND_COUNT &&
           !(strlen(KIND_NAMES[k]) == len && memcmp(KIND_NAMES[k], tok, len) == 0))
        k++;
    if (k == REF_KIND_COUNT)
        return snprintf(why, n, "unknown kind '%.*s' (input, label, output, grad, dir or hvp)",
                        (int)(len < 32 ? len : 32), tok),
               false;
    t->kind = (enum ref_kind)k;
    if (!token_name(tok, next_token(p, &tok), t->name))
        return snprintf(why, n, "missing name or name too long"), false;
    int64_t v;
    if (!token_int(tok, next_token(p, &tok), 0, TG_MAX_DIM, &v))
        return snprintf(why, n, "missing rank or rank not in 0..%d", TG_MAX_DIM), false;
    t->rank = (int)v;
    t->numel = 1;
    for (int d = 0; d < t->rank; d++) {
        if (!token_int(tok, next_token(p, &tok), 0, MAX_NUMEL, &t->shape[d]))
            return snprintf(why, n, "dimension %d missing or not in 0..%d", d, MAX_NUMEL), false;
        t->numel *= t->shape[d]; /* no overflow: each factor and the product <= 2^20 */
        if (t->numel > MAX_NUMEL)
            return snprintf(why, n, "more than %d elements", MAX_NUMEL), false;
    }
    return true;
}

/* Parses one line; t->v is allocated (freed by the caller on failure as well). */
static bool parse_line(const char *line, struct ref_tensor *t, char *why, size_t n)
{
    const char *p = line, *tok;
    if (!parse_header(&p, t, why, n)) return false;
    t->v = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(double));
    if (!t->v) return snprintf(why, n, "out of memory"), false;
    for (int64_t i = 0; i < t->numel; i++) {
        size_t len = next_token(&p, &tok);
        if (len == 0)
            return snprintf(why, n, "%s %s needs %lld values, found %lld", KIND_NAMES[t->kind],
                            t->name, (long long)t->numel, (long long)i),
                   false;
        if (!token_double(tok, len, &t->v[i]))
            return snprintf(why, n, "value %lld '%.*s' is not a finite number", (long long)i,
                            (int)(len < 32 ? len : 32), tok),
                   false;
    }
    if (next_token(&p, &tok))
        return snprintf(why, n, "%s %s has more than %lld values", KIND_NAMES[t->kind], t->name,
                        (long long)t->numel),
               false;
    return true;
}

static const struct ref_tensor *ref_find(const struct ref_file *rf, const char *case_name,
                                         enum ref_kind kind, const char *name)
{
    for (size_t i = 0; i < rf->n; i++)
        if (rf->t[i].kind == kind && !strcmp(rf->t[i].case_name, case_name) &&
            !strcmp(rf->t[i].name, name))
            return &rf->t[i];
    return NULL;
}

static bool same_shape(const struct ref_tensor *a, const struct ref_tensor *b)
{
    if (a->rank != b->rank) return false;
    for (int d = 0; d < a->rank; d++)
        if (a->shape[d] != b->shape[d]) return false;
    return true;
}

/* Whether case c has a tensor of kind k. */
static bool case_has(const struct ref_file *rf, const char *c, enum ref_kind k)
{
    for (size_t i = 0; i < rf->n; i++)
        if (rf->t[i].kind == k && !strcmp(rf->t[i].case_name, c)) return true;
    return false;
}

/* The structure every case needs: no repeated tensor, one scalar output `loss`
 * per case (and no other output), and exactly one grad, of the same shape, per
 * input; in a case with a `dir` (an HVP case), one dir and one hvp of the same
 * shape per input, and none for anything else. false with "path:line: reason" in
 * rf->err. */
static bool ref_validate(struct ref_file *rf, const char *path)
{
    for (size_t i = 0; i < rf->n; i++) {
        const struct ref_tensor *t = &rf->t[i], *o = ref_find(rf, t->case_name, t->kind, t->name);
        const char *c = t->case_name, *k = KIND_NAMES[t->kind];
        const char *why = NULL;
        char buf[WHY_LEN];
        if (o != t) {
            snprintf(buf, sizeof buf, "%s %s %s repeats line %d", c, k, t->name, o->line);
            why = buf;
        } else if (t->kind == REF_OUTPUT && (strcmp(t->name, "loss") || t->numel != 1)) {
            why = "the only output is `loss`, with one element";
        } else if (t->kind == REF_INPUT && !(o = ref_find(rf, c, REF_GRAD, t->name))) {
            why = "input without a grad line";
        } else if (t->kind == REF_INPUT && !same_shape(t, o)) {
            why = "input and its grad differ in shape";
        } else if (t->kind == REF_GRAD && !ref_find(rf, c, REF_INPUT, t->name)) {
            why = "grad of a tensor that is not an input";
        } else if ((t->kind == REF_DIR || t->kind == REF_HVP) &&
                   !(o = ref_find(rf, c, REF_INPUT, t->name))) {
            snprintf(buf, sizeof buf, "%s of a tensor that is not an input", k);
            why = buf;
        } else if ((t->kind == REF_DIR || t->kind == REF_HVP) && !same_shape(t, o)) {
            snprintf(buf, sizeof buf, "%s and its input differ in shape", k);
            why = buf;
        } else if (t->kind == REF_HVP && !ref_find(rf, c, REF_DIR, t->name)) {
            why = "hvp without a dir";
        } else if (t->kind == REF_INPUT && case_has(rf, c, REF_DIR) &&
                   !ref_find(rf, c, REF_DIR, t->name)) {
            why = "an input of an HVP case (one with a dir) without a dir";
        } else if (t->kind == REF_INPUT && case_has(rf, c, REF_DIR) &&
                   !ref_find(rf, c, REF_HVP, t->name)) {
            why = "an input of an HVP case (one with a dir) without an hvp";
        } else if (!ref_find(rf, c, REF_OUTPUT, "loss")) {
            why = "case without an output `loss`";
        }
        if (why) {
            snprintf(rf->err, sizeof rf->err, "%s:%d: %s", path, t->line, why);
            return false;
        }
    }
    return true;
}

static bool ref_add_line(struct ref_file *rf, const char *line, int lineno, const char *path)
{
    if (rf->n == rf->cap) {
        size_t cap = rf->cap ? 2 * rf->cap : 64;
        struct ref_tensor *t = realloc(rf->t, cap * sizeof *t);
        if (!t) return snprintf(rf->err, sizeof rf->err, "%s: out of memory", path), false;
        rf->t = t;
        rf->cap = cap;
    }
    struct ref_tensor *t = &rf->t[rf->n];
    char why[WHY_LEN];
    memset(t, 0, sizeof *t);
    t->line = lineno;
    if (!parse_line(line, t, why, sizeof why)) {
        free(t->v);
        snprintf(rf->err, sizeof rf->err, "%s:%d: %s", path, lineno, why);
        return false;
    }
    rf->n++;
    return true;
}

/* Reads f (blank lines and lines starting with '#' are skipped). false with
 * "path:line: reason" in rf->err; rf holds what was read either way (ref_free). */
static bool ref_parse(FILE *f, const char *path, struct ref_file *rf)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0;
    bool ok = true;
    memset(rf, 0, sizeof *rf);
    while (ok && (len = getline(&line, &cap, f)) != -1) {
        const char *s = line;
        lineno++;
        while (isspace((unsigned char)*s)) s++;
        if (strlen(line) != (size_t)len) {
            snprintf(rf->err, sizeof rf->err, "%s:%d: a NUL byte in the line", path, lineno);
            ok = false;
        } else if (*s && *s != '#') {
            ok = ref_add_line(rf, s, lineno, path);
        }
    }
    free(line);
    if (!ok) return false;
    const char *why = ferror(f) ? "read error" : rf->n == 0 ? "no tensors" : NULL;
    if (why) {
        snprintf(rf->err, sizeof rf->err, "%s: %s", path, why);
        return false;
    }
    return ref_validate(rf, path);
}

/* ---- building a case's graph ---- */

#define MAX_LEAVES 8

struct graph {
    const struct ref_file *rf;
    const char *case_name;
    struct tg_tape *T;
    struct tg_tensor *leaf[MAX_LEAVES];       /* owned, freed after the case */
    const struct ref_tensor *rec[MAX_LEAVES]; /* the line each leaf came from */
    int n;
    char err[WHY_LEN];
};

/* A leaf from the case's `kind` tensor `name` (an input requires grad); NULL with
 * g->err set when the file lacks it. */
static struct tg_tensor *leaf(struct graph *g, enum ref_kind kind, const char *name)
{
    const struct ref_tensor *r = ref_find(g->rf, g->case_name, kind, name);
    if (!r || g->n == MAX_LEAVES) {
        if (!g->err[0])
            snprintf(g->err, sizeof g->err, "the file has no %s '%s' for case %s", KIND_NAMES[kind],
                     name, g->case_name);
        return NULL;
    }
    struct tg_tensor *t = tg_tensor_from_f64(TG_F64, r->rank, r->shape, r->v);
    if (t && kind == REF_INPUT) tg_tensor_set_requires_grad(t, true);
    g->leaf[g->n] = t;
    g->rec[g->n++] = r;
    return t;
}
static struct tg_tensor *in(struct graph *g, const char *name)
{
    return leaf(g, REF_INPUT, name);
}
static struct tg_tensor *lab(struct graph *g, const char *name)
{
    return leaf(g, REF_LABEL, name);
}

/* sum(y * R): a fixed random weighting makes every element of y matter. */
static struct tg_tensor *weighted_sum(struct graph *g, struct tg_tensor *y)
{
    return tg_sum(g->T, tg_mul(g->T, y, lab(g, "R")));
}

static struct tg_tensor *build_linear_relu_xent(struct graph *g)
{
    struct tg_tensor *X = in(g, "X"), *W = in(g, "W"), *b = in(g, "b"), *y = lab(g, "y");
    /* z = relu(X W^T + b): X (N,in), W (out,in), b (out) -> z (N,out) */
    struct tg_tensor *z = tg_relu(g->T, tg_add(g->T, tg_matmul_t(g->T, X, W, false, true), b));
    return tg_cross_entropy(g->T, z, y, TG_REDUCE_MEAN); /* y (N) class indices */
}
static struct tg_tensor *build_batched_matmul(struct graph *g)
{
    struct tg_tensor *A = in(g, "A"), *B = in(g, "B");
    return weighted_sum(g, tg_matmul(g->T, A, B)); /* (2,1,3,4) x (5,4,2) -> (2,5,3,2) */
}
static struct tg_tensor *build_log_softmax_axis0(struct graph *g)
{
    return weighted_sum(g, tg_log_softmax(g->T, in(g, "X"), 0));
}
static struct tg_tensor *build_slice_concat(struct graph *g)
{
    struct tg_tensor *X = in(g, "X");
    /* X[1:4, ::2] next to X[0:3, 1::2] along axis 1 */
    const struct tg_slice_spec s[2] = {{1, 4, 1}, {TG_SLICE_NONE, TG_SLICE_NONE, 2}};
    struct tg_tensor *a = tg_slice(g->T, X, 2, s);
    struct tg_tensor *b =
        tg_slice_axis(g->T, tg_slice_axis(g->T, X, 0, 0, 3, 1), 1, 1, TG_SLICE_NONE, 2);
    struct tg_tensor *const parts[2] = {a, b};
    return weighted_sum(g, tg_concat(g->T, 2, parts, 1));
}
static struct tg_tensor *build_mse_mean(struct graph *g)
{
    return tg_mse(g->T, in(g, "P"), lab(g, "T"), TG_REDUCE_MEAN);
}
static struct tg_tensor *build_mse_sum(struct graph *g)
{
    return tg_mse(g->T, in(g, "P"), lab(g, "T"), TG_REDUCE_SUM);
}
static struct tg_tensor *build_xent_labels_sum(struct graph *g)
{
    return tg_cross_entropy(g->T, in(g, "L"), lab(g, "y"), TG_REDUCE_SUM);
}
static struct tg_tensor *build_xent_probs_mean(struct graph *g)
{
    return tg_cross_entropy_probs(g->T, in(g, "L"), lab(g, "Q"), TG_REDUCE_MEAN);
}
static struct tg_tensor *build_bce_logits_mean(struct graph *g)
{
    return tg_bce_logits(g->T, in(g, "L"), lab(g, "T"), TG_REDUCE_MEAN);
}
static struct tg_tensor *build_hinge_mean(struct graph *g)
{
    return tg_hinge(g->T, in(g, "S"), lab(g, "Y"), TG_REDUCE_MEAN); /* Y in {-1, +1} */
}
static struct tg_tensor *build_l2_half_sum(struct graph *g)
{
    return tg_l2_penalty(g->T, in(g, "W")); /* 0.5 sum w^2 */
}

/* The hvp_ cases: their file also has a dir and an hvp per input (check_hvps). */
static struct tg_tensor *build_hvp_tanh_mlp(struct graph *g)
{
    /* mse(tanh(X W1^T + b1) W2^T + b2, T), the data X an input too */
    struct tg_tensor *X = in(g, "X"), *W1 = in(g, "W1"), *b1 = in(g, "b1"), *W2 = in(g, "W2"),
                     *b2 = in(g, "b2");
    struct tg_tensor *h = tg_linear(g->T, X, W1, b1, TG_ACT_TANH);
    return tg_mse(g->T, tg_linear(g->T, h, W2, b2, TG_ACT_NONE), lab(g, "T"), TG_REDUCE_MEAN);
}
static struct tg_tensor *build_hvp_xent_linear(struct graph *g)
{
    struct tg_tensor *X = in(g, "X"), *W = in(g, "W"), *b = in(g, "b");
    struct tg_tensor *z = tg_add(g->T, tg_matmul_t(g->T, X, W, false, true), b);
    return tg_cross_entropy(g->T, z, lab(g, "y"), TG_REDUCE_MEAN);
}
static struct tg_tensor *build_hvp_softmax_mix(struct graph *g)
{
    /* sum(softmax(X, 1) R) + sum(logsumexp(X, 1)^2) + mean(sigmoid(X) softplus(X)) */
    struct tg_tape *T = g->T;
    struct tg_tensor *X = in(g, "X");
    struct tg_tensor *lse = tg_logsumexp_axes(T, X, (int[]){1}, 1, false);
    struct tg_tensor *a = weighted_sum(g, tg_softmax(T, X, 1)), *b = tg_sum(T, tg_mul(T, lse, lse));
    struct tg_tensor *c = tg_mean(T, tg_mul(T, tg_sigmoid(T, X), tg_softplus(T, X)));
    return tg_add(T, tg_add(T, a, b), c);
}
static struct tg_tensor *build_hvp_scalar_expr(struct graph *g)
{
    /* sin(a b) + e^c / (b + a^2) + log(b) c + tanh(a - c) sqrt(b) + b^c, rank 0 */
    struct tg_tape *T = g->T;
    struct tg_tensor *a = in(g, "a"), *b = in(g, "b"), *c = in(g, "c");
    struct tg_tensor *t1 = tg_sin(T, tg_mul(T, a, b));
    struct tg_tensor *t2 = tg_div(T, tg_exp(T, c), tg_add(T, b, tg_mul(T, a, a)));
    struct tg_tensor *t3 = tg_mul(T, tg_log(T, b), c);
    struct tg_tensor *t4 = tg_mul(T, tg_tanh(T, tg_sub(T, a, c)), tg_sqrt(T, b));
    struct tg_tensor *t5 = tg_pow(T, b, c);
    return tg_add(T, tg_add(T, tg_add(T, t1, t2), tg_add(T, t3, t4)), t5);
}

struct case_def {
    const char *name;
    struct tg_tensor *(*build)(struct graph *g);
};
#define CASE(name)                                                                                 \
    {                                                                                              \
#name, build_##name                                                                        \
    }
static const struct case_def CASES[] = {
    CASE(linear_relu_xent), CASE(batched_matmul),  CASE(log_softmax_axis0), CASE(slice_concat),
    CASE(mse_mean),         CASE(mse_sum),         CASE(xent_labels_sum),   CASE(xent_probs_mean),
    CASE(bce_logits_mean),  CASE(hinge_mean),      CASE(l2_half_sum),       CASE(hvp_tanh_mlp),
    CASE(hvp_xent_linear),  CASE(hvp_softmax_mix), CASE(hvp_scalar_expr),
};
#define N_CASES ((int)(sizeof CASES / sizeof CASES[0]))

static const struct case_def *find_case(const char *name)
{
    for (int k = 0; k < N_CASES; k++)
        if (!strcmp(CASES[k].name, name)) return &CASES[k];
    return NULL;
}

/* Every case of the file is in `defs` and every one of `defs` is in the file.
 * false with each mismatch listed in msg. */
static bool check_coverage(const struct ref_file *rf, const char *path, const struct case_def *defs,
                           int n_defs, char *msg, size_t n)
{
    size_t used = 0;
    msg[0] = '\0';
    for (size_t i = 0; i < rf->n; i++) {
        int k = 0;
        while (k < n_defs && strcmp(defs[k].name, rf->t[i].case_name)) k++;
        bool first = true; /* report each unknown case once, at its first line */
        for (size_t j = 0; j < i && first; j++)
            first = strcmp(rf->t[j].case_name, rf->t[i].case_name);
        if (k == n_defs && first && used < n)
            used += (size_t)snprintf(msg + used, n - used, "%s:%d: case %s is not handled; ", path,
                                     rf->t[i].line, rf->t[i].case_name);
    }
    for (int k = 0; k < n_defs; k++) {
        bool found = false;
        for (size_t i = 0; i < rf->n && !found; i++)
            found = !strcmp(defs[k].name, rf->t[i].case_name);
        if (!found && used < n)
            used += (size_t)snprintf(msg + used, n - used, "case %s is missing from %s; ",
                                     defs[k].name, path);
    }
    return msg[0] == '\0';
}

/* ---- comparing ---- */

/* got (want->numel) against want, elementwise (see the top of the file). Keeps
 * the worst relative error in *worst; false with the first bad element in msg. */
static bool compare(const char *what, const double *got, const struct ref_tensor *want,
                    double *worst, char *msg, size_t n)
{
    if (!got) return snprintf(msg, n, "%s: no value", what), false;
    for (int64_t i = 0; i < want->numel; i++) {
        double ref = want->v[i];
        double rel = fabs(got[i] - ref) / fmax(fabs(ref), REL_FLOOR);
        if (!(rel <= REL_TOL)) /* a NaN fails too */
            return snprintf(msg, n, "%s[%lld] = %.17g, PyTorch (line %d) %.17g, rel. error %.3g",
                            what, (long long)i, got[i], want->line, ref, rel),
                   false;
        if (rel > *worst) *worst = rel;
    }
    return true;
}

static bool shape_is(const struct tg_tensor *t, const struct ref_tensor *r)
{
    if (tg_tensor_rank(t) != r->rank) return false;
    for (int d = 0; d < r->rank; d++)
        if (tg_tensor_dim(t, d) != r->shape[d]) return false;
    return true;
}

/* Every input and label of the case was read by the graph. */
static bool all_used(const struct graph *g, char *msg, size_t n)
{
    for (size_t i = 0; i < g->rf->n; i++) {
        const struct ref_tensor *r = &g->rf->t[i];
        if (strcmp(r->case_name, g->case_name) || (r->kind != REF_INPUT && r->kind != REF_LABEL))
            continue;
        bool used = false;
        for (int k = 0; k < g->n; k++) used |= g->rec[k] == r;
        if (!used)
            return snprintf(msg, n, "line %d: %s %s is not used by the C graph of %s", r->line,
                            KIND_NAMES[r->kind], r->name, g->case_name),
                   false;
    }
    return true;
}

/* Loss and input gradients of the graph of g (built) against the file. */
static bool check_results(struct graph *g, struct tg_tensor *loss, double *worst, char *msg,
                          size_t n)
{
    const struct ref_tensor *want = ref_find(g->rf, g->case_name, REF_OUTPUT, "loss");
    if (!want) return snprintf(msg, n, "the file has no output loss"), false;
    if (!shape_is(loss, want)) return snprintf(msg, n, "loss: shape differs from the file"), false;
    if (!compare("loss", tg_tensor_data(loss), want, worst, msg, n)) return false;
    for (int k = 0; k < g->n; k++) {
        if (g->rec[k]->kind != REF_INPUT) continue;
        char what[NAME_LEN + 8];
        snprintf(what, sizeof what, "grad %s", g->rec[k]->name);
        want = ref_find(g->rf, g->case_name, REF_GRAD, g->rec[k]->name);
        if (!want) return snprintf(msg, n, "the file has no %s", what), false;
        if (!compare(what, tg_tensor_grad(g->leaf[k]), want, worst, msg, n)) return false;
    }
    return true;
}

/* For a case with dirs: tg_hvp of the loss with respect to all the case's inputs
 * along the file's dirs, against its hvp lines. */
static bool check_hvps(struct graph *g, struct tg_tensor *loss, double *worst, char *msg, size_t n)
{
    struct tg_tensor *x[MAX_LEAVES], *v[MAX_LEAVES] = {0}, *hv[MAX_LEAVES];
    const struct ref_tensor *want[MAX_LEAVES];
    int n_in = 0;
    bool ok = true;
    for (int k = 0; k < g->n && ok; k++) {
        if (g->rec[k]->kind != REF_INPUT) continue;
        const char *name = g->rec[k]->name;
        const struct ref_tensor *d = ref_find(g->rf, g->case_name, REF_DIR, name);
        want[n_in] = ref_find(g->rf, g->case_name, REF_HVP, name);
        if (!d || !want[n_in]) { /* ref_validate rules this out; a hand-made rf may not */
            snprintf(msg, n, "the file has no dir or hvp %s", name);
            ok = false;
            break;
        }
        x[n_in] = g->leaf[k];
        v[n_in] = tg_tensor_from_f64(TG_F64, d->rank, d->shape, d->v);
        if (!v[n_in++]) {
            snprintf(msg, n, "dir %s: %s", name, tg_last_error());
            ok = false;
        }
    }
    if (ok && tg_hvp(loss, n_in, x, v, NULL, hv) != TG_OK) {
        snprintf(msg, n, "%s: tg_hvp failed: %s", g->case_name, tg_last_error());
        ok = false;
    }
    for (int i = 0; ok && i < n_in; i++) {
        char what[NAME_LEN + 8];
        snprintf(what, sizeof what, "hvp %s", want[i]->name);
        if (!shape_is(hv[i], want[i])) {
            snprintf(msg, n, "%s: shape differs from the file", what);
            ok = false;
        } else {
            ok = compare(what, tg_tensor_data(hv[i]), want[i], worst, msg, n);
        }
    }
    for (int i = 0; i < n_in; i++) tg_tensor_free(v[i]);
    return ok;
}

/* Builds case d from rf, runs backward and compares. false with the reason in
 * msg; *worst gets the largest relative error seen. */
static bool run_case(const struct ref_file *rf, const struct case_def *d, double *worst, char *msg,
                     size_t n)
{
    struct graph g = {.rf = rf, .case_name = d->name, .T = tg_tape_new()};
    bool ok = false;
    *worst = 0;
    struct tg_tensor *loss = g.T ? d->build(&g) : NULL;
    if (!ref_find(rf, d->name, REF_OUTPUT, "loss"))
        snprintf(msg, n, "case %s is missing from the file", d->name);
    else if (!loss)
        snprintf(msg, n, "%s: building the graph failed: %s", d->name,
                 g.err[0] ? g.err : tg_last_error());
    else if (tg_backward(loss, NULL) != TG_OK)
        snprintf(msg, n, "%s: backward failed: %s", d->name, tg_last_error());
    else
        ok = all_used(&g, msg, n) && check_results(&g, loss, worst, msg, n) &&
             (!case_has(rf, d->name, REF_DIR) || check_hvps(&g, loss, worst, msg, n));
    for (int k = 0; k < g.n; k++) tg_tensor_free(g.leaf[k]);
    tg_tape_free(g.T);
    return ok;
}

/* ---- the tests ---- */

static const char *ref_path; /* argv[1] */
static struct ref_file ref;  /* the parsed file */
static bool ref_ok;          /* it parsed and validated */

START_TEST(test_file_parses)
{
    ck_assert_msg(ref_ok, "%s", ref.err);
}
END_TEST

START_TEST(test_file_covers_cases)
{
    char msg[2048];
    ck_assert_msg(ref_ok, "%s", ref.err);
    ck_assert_msg(check_coverage(&ref, ref_path, CASES, N_CASES, msg, sizeof msg), "%s", msg);
}
END_TEST

START_TEST(test_case)
{
    const struct case_def *d = &CASES[_i];
    char msg[MSG_LEN];
    double worst;
    ck_assert_msg(ref_ok, "%s", ref.err);
    ck_assert_msg(run_case(&ref, d, &worst, msg, sizeof msg), "%s", msg);
    printf("%-18s max relative error %.2g\n", d->name, worst);
}
END_TEST

/* The comparison is not vacuous: one gradient or hvp element moved by 2e-9
 * relative, or the loss by the same, makes its case fail. */
START_TEST(test_perturbed_fails)
{
    char msg[MSG_LEN];
    double worst;
    ck_assert_msg(ref_ok, "%s", ref.err);
    for (size_t i = 0; i < ref.n; i++) {
        struct ref_tensor *t = &ref.t[i];
        if (t->kind != REF_GRAD && t->kind != REF_OUTPUT && t->kind != REF_HVP) continue;
        int k = 0;
        while (k < N_CASES && strcmp(CASES[k].name, t->case_name)) k++;
        if (k == N_CASES) continue; /* test_file_covers_cases reports it */
        int64_t j = t->numel - 1;
        double saved = t->v[j];
        t->v[j] = saved == 0 ? 1e-11 : saved * (1 + 2e-9);
        bool ok = run_case(&ref, &CASES[k], &worst, msg, sizeof msg);
        t->v[j] = saved;
        ck_assert_msg(!ok, "line %d: a perturbed value still passed", t->line);
    }
}
END_TEST

static bool parse_text(const char *text, struct ref_file *rf)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    ck_assert_ptr_nonnull(f);
    bool ok = ref_parse(f, "mem", rf);
    fclose(f);
    return ok;
}

/* Broken files: each fails with its line number and reason, without crashing. */
static const struct {
    const char *text, *where, *why;
} BROKEN[] = {
    {"", "mem:", "no tensors"},
    {"# only a comment\n\n", "mem:", "no tensors"},
    {"c input X 1 2 1.5\n", "mem:1:", "needs 2 values, found 1"},
    {"# a comment\nc input X 1 2 1 2 3\n", "mem:2:", "more than 2 values"},
    {"c input X 1 2 1 x\n", "mem:1:", "value 1 'x' is not a finite number"},
    {"c input X 1 2 1 2.5e\n", "mem:1:", "not a finite number"},
    {"c input X 1 2 1 nan\n", "mem:1:", "not a finite number"},
    {"c input X 1 2 1 1e999\n", "mem:1:", "not a finite number"},
    {"c input X 9 1 1 1 1 1 1 1 1 1 0\n", "mem:1:", "rank not in 0..8"},
    {"c input X -1 0\n", "mem:1:", "rank not in"},
    {"c input X 1.0 2 1 2\n", "mem:1:", "rank not in"},
    {"c input X 1 -2\n", "mem:1:", "dimension 0 missing or not in"},
    {"c input X 2 3\n", "mem:1:", "dimension 1 missing"},
    {"c input X 3 1024 1024 2\n", "mem:1:", "more than 1048576 elements"},
    {"c input X 1 99999999999999999999\n", "mem:1:", "dimension 0"},
    {"c weight X 0 1\n", "mem:1:", "unknown kind 'weight'"},
    {"c input X 0 1\nc grad X 0 1\nc output loss 0 1\nc dir X 0 1\nc hvp X 0 1\n"
     "c dir Y 0 1\n",
     "mem:6:", "dir of a tensor that is not an input"},
    {"c input X 0 1\nc grad X 0 1\nc output loss 0 1\nc dir X 1 2 1 1\nc hvp X 0 1\n",
     "mem:4:", "dir and its input differ in shape"},
    {"c input X 0 1\nc grad X 0 1\nc output loss 0 1\nc dir X 0 1\nc hvp X 1 1 1\n",
     "mem:5:", "hvp and its input differ in shape"},
    {"c input X 0 1\nc grad X 0 1\nc output loss 0 1\nc hvp X 0 1\n",
     "mem:4:", "hvp without a dir"},
    {"c input X 0 1\nc grad X 0 1\nc input Z 0 1\nc grad Z 0 1\nc output loss 0 1\n"
     "c dir X 0 1\nc hvp X 0 1\n",
     "mem:3:", "HVP case (one with a dir) without a dir"},
    {"c input X 0 1\nc grad X 0 1\nc output loss 0 1\nc dir X 0 1\n",
     "mem:1:", "HVP case (one with a dir) without an hvp"},
    {"c\n", "mem:1:", "missing kind"},
    {"c input\n", "mem:1:", "missing name"},
    {"c input X\n", "mem:1:", "missing rank"},
    {"c input X 0 1\nc output loss 0 1\nc grad X 0 1\nc input X 0 2\n",
     "mem:4:", "c input X repeats line 1"},
    {"c input X 0 1\nc output loss 0 1\n", "mem:1:", "input without a grad line"},
    {"c input X 0 1\nc grad X 1 1 1\nc output loss 0 1\n", "mem:1:", "differ in shape"},
    {"c output loss 0 1\nc grad Y 0 1\n", "mem:2:", "grad of a tensor that is not an input"},
    {"c input X 0 1\nc grad X 0 1\n", "mem:1:", "case without an output `loss`"},
    {"c input X 0 1\nc grad X 0 1\nc output loss 1 2 1 2\n", "mem:3:", "one element"},
    {"c input X 0 1\nc grad X 0 1\nc output loss 0 1\nc output acc 0 1\n",
     "mem:4:", "the only output is `loss`"},
    {"c input X 0 1\nd output loss 0 1\nc grad X 0 1\n", "mem:1:", "without an output"},
    {"c input X 0 1\nc grad X 0 1\nc output loss 0 1\nd output loss 0 1\nd label "
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 0 "
     "1\n",
     "mem:5:", "missing name or name too long"},
};

START_TEST(test_parse_broken)
{
    struct ref_file rf;
    bool ok = parse_text(BROKEN[_i].text, &rf);
    ck_assert_msg(!ok, "broken text %d parsed", _i);
    ck_assert_msg(strstr(rf.err, BROKEN[_i].where) == rf.err && strstr(rf.err, BROKEN[_i].why),
                  "text %d: error '%s', want '%s ... %s'", _i, rf.err, BROKEN[_i].where,
                  BROKEN[_i].why);
    ref_free(&rf);
}
END_TEST

START_TEST(test_parse_nul_byte)
{
    static const char text[] = "c input X 0 1\nc grad X 0 1\0 2\nc output loss 0 1\n";
    struct ref_file rf;
    FILE *f = fmemopen((void *)text, sizeof text - 1, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert(!ref_parse(f, "mem", &rf));
    fclose(f);
    ck_assert_str_eq(rf.err, "mem:2: a NUL byte in the line");
    ref_free(&rf);
}
END_TEST

/* A well-formed file: comments, blank lines, CRLF, rank 0 with two spaces. */
START_TEST(test_parse_good)
{
    struct ref_file rf;
    const char *text = "# header\n\n  c input X 2 2 1 -0.5 2.5e-3\r\n"
                       "c label y 1 0\nc output loss 0  1.5\nc grad X 2 2 1 1 -1\n";
    ck_assert_msg(parse_text(text, &rf), "%s", rf.err);
    ck_assert_uint_eq(rf.n, 4);
    const struct ref_tensor *x = ref_find(&rf, "c", REF_INPUT, "X");
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(x->line, 3);
    ck_assert_int_eq(x->rank, 2);
    ck_assert_int_eq(x->shape[0], 2);
    ck_assert_int_eq(x->shape[1], 1);
    ck_assert_double_eq(x->v[0], -0.5);
    ck_assert_double_eq(x->v[1], 2.5e-3);
    const struct ref_tensor *y = ref_find(&rf, "c", REF_LABEL, "y");
    ck_assert_int_eq(y->numel, 0);
    const struct ref_tensor *loss = ref_find(&rf, "c", REF_OUTPUT, "loss");
    ck_assert_int_eq(loss->rank, 0);
    ck_assert_double_eq(loss->v[0], 1.5);
    ref_free(&rf);
}
END_TEST

/* A case unknown to CASES and cases missing from the file are both reported. */
START_TEST(test_coverage_mismatch)
{
    struct ref_file rf;
    char msg[4096];
    const char *text = "mystery input X 0 1\nmystery grad X 0 1\nmystery output loss 0 1\n"
                       "l2_half_sum input W 0 1\nl2_half_sum grad W 0 1\n"
                       "l2_half_sum output loss 0 0.5\n";
    ck_assert_msg(parse_text(text, &rf), "%s", rf.err);
    ck_assert(!check_coverage(&rf, "mem", CASES, N_CASES, msg, sizeof msg));
    ck_assert_msg(strstr(msg, "mem:1: case mystery is not handled"), "%s", msg);
    ck_assert_msg(strstr(msg, "case hinge_mean is missing from mem"), "%s", msg);
    ck_assert_msg(!strstr(msg, "l2_half_sum"), "%s", msg);
    ck_assert(check_coverage(&rf, "mem", find_case("l2_half_sum"), 1, msg, sizeof msg) == false);
    ref_free(&rf);
}
END_TEST

/* A case whose file lacks an input the graph reads, or has one it does not read. */
START_TEST(test_case_file_mismatch)
{
    struct ref_file rf;
    char msg[MSG_LEN];
    double worst;
    const struct case_def *l2 = find_case("l2_half_sum");
    ck_assert_ptr_nonnull(l2);
    ck_assert(parse_text("l2_half_sum input V 0 1\nl2_half_sum grad V 0 1\n"
                         "l2_half_sum output loss 0 0.5\n",
                         &rf));
    ck_assert(!run_case(&rf, l2, &worst, msg, sizeof msg));
    ck_assert_msg(strstr(msg, "the file has no input 'W' for case l2_half_sum"), "%s", msg);
    ref_free(&rf);
    ck_assert(parse_text("l2_half_sum input W 0 3\nl2_half_sum grad W 0 3\n"
                         "l2_half_sum label Z 0 1\nl2_half_sum output loss 0 4.5\n",
                         &rf));
    ck_assert(!run_case(&rf, l2, &worst, msg, sizeof msg));
    ck_assert_msg(strstr(msg, "line 3: label Z is not used"), "%s", msg);
    ref_free(&rf);
    /* and the same case, consistent, passes: 0.5 * 3^2 = 4.5, gradient 3 */
    ck_assert(parse_text("l2_half_sum input W 0 3\nl2_half_sum grad W 0 3\n"
                         "l2_half_sum output loss 0 4.5\n",
                         &rf));
    ck_assert_msg(run_case(&rf, l2, &worst, msg, sizeof msg), "%s", msg);
    ref_free(&rf);
}
END_TEST

/* A case with a dir checks tg_hvp: 0.5 w^2 has the Hessian 1, so the hvp is the
 * dir itself (2 here); a file that says 2.5 fails, naming the hvp. */
START_TEST(test_hvp_by_hand)
{
    struct ref_file rf;
    char msg[MSG_LEN];
    double worst;
    const struct case_def *l2 = find_case("l2_half_sum");
    const char *head = "l2_half_sum input W 0 3\nl2_half_sum grad W 0 3\n"
                       "l2_half_sum output loss 0 4.5\nl2_half_sum dir W 0 2\n";
    char text[256];
    ck_assert_ptr_nonnull(l2);
    snprintf(text, sizeof text, "%sl2_half_sum hvp W 0 2\n", head);
    ck_assert_msg(parse_text(text, &rf), "%s", rf.err);
    ck_assert_msg(run_case(&rf, l2, &worst, msg, sizeof msg), "%s", msg);
    ref_free(&rf);
    snprintf(text, sizeof text, "%sl2_half_sum hvp W 0 2.5\n", head);
    ck_assert_msg(parse_text(text, &rf), "%s", rf.err);
    ck_assert(!run_case(&rf, l2, &worst, msg, sizeof msg));
    ck_assert_msg(strstr(msg, "hvp W[0] = 2, PyTorch (line 5) 2.5"), "%s", msg);
    ref_free(&rf);
}
END_TEST

static Suite *reference_suite(void)
{
    Suite *s = suite_create("reference");
    TCase *tc = tcase_create("parser");
    tcase_add_loop_test(tc, test_parse_broken, 0, (int)(sizeof BROKEN / sizeof BROKEN[0]));
    tcase_add_test(tc, test_parse_good);
    tcase_add_test(tc, test_parse_nul_byte);
    tcase_add_test(tc, test_coverage_mismatch);
    tcase_add_test(tc, test_case_file_mismatch);
    tcase_add_test(tc, test_hvp_by_hand);
    suite_add_tcase(s, tc);
    tc = tcase_create("pytorch");
    tcase_add_test(tc, test_file_parses);
    tcase_add_test(tc, test_file_covers_cases);
    tcase_add_loop_test(tc, test_case, 0, N_CASES);
    tcase_add_test(tc, test_perturbed_fails);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH/reference.txt\n", argv[0]);
        return 2;
    }
    ref_path = argv[1];
    FILE *f = fopen(ref_path, "r");
    if (f) {
        ref_ok = ref_parse(f, ref_path, &ref);
        fclose(f);
    } else {
        snprintf(ref.err, sizeof ref.err, "%s: %s", ref_path, strerror(errno));
    }
    int status = tg_test_run_suite(reference_suite());
    ref_free(&ref);
    return status;
}
