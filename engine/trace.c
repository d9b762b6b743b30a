/*
 * engine/trace.c - the chain-rule trace: tg_backward with a recorder.
 *
 * The sweep itself is tg__backward_ex in sweep.c; this file only observes it.
 * Before a node's backward rule runs, the gradients of its inputs are copied;
 * after it ran, the difference is that node's contribution to each input. This
 * is generic: it works for every op, present and future, without knowing its
 * derivative. Local derivatives of scalar steps come from running the op's own
 * rule once more with a unit upstream gradient (tg__local_derivs), so they are
 * exact even where the upstream gradient is zero.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "graph-impl.h"
#include "sweep-hook.h"
#include "tapegrad/trace.h"

struct recorder {
    struct tg_trace *tr;
    int64_t room;
    struct tg__graph g;
    int *count;   /* (g.n) contributions received so far, per tensor */
    double *snap; /* before-values of the current step's input gradients */
    int64_t snap_room;
    int64_t *off; /* (n_in) offset of each distinct input in snap, -1: none */
    int64_t off_room;
    enum tg_status err;
};

static double norm2(const void *p, int dtype, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = tg__load(p, dtype, i);
        s += v * v;
    }
    return sqrt(s);
}

static bool grow(void **p, int64_t *room, int64_t need, size_t elem)
{
    if (need <= *room) return true;
    int64_t r = *room ? *room : 16;
    while (r < need) r *= 2;
    void *q = tg__realloc(*p, (size_t)r * elem);
    if (!q) return false;
    *p = q;
    *room = r;
    return true;
}

static bool first_use(const struct tg_tensor *n, uint32_t i)
{
    for (uint32_t j = 0; j < i; j++)
        if (n->in[j] == n->in[i]) return false;
    return true;
}

static void fill_input(struct recorder *R, struct tg_trace_input *in, const struct tg_tensor *n,
                       uint32_t i)
{
    const struct tg_tensor *x = n->in[i];
    in->tensor = x;
    in->kind = tg_graph_kind(x);
    int64_t k = tg__graph_find(&R->g, x);
    in->id = k >= 0 ? R->g.id[k] : 0;
    in->rank = x->rank;
    memset(in->shape, 0, sizeof in->shape); /* entries past the rank read 0 */
    memcpy(in->shape, x->shape, (size_t)x->rank * sizeof *x->shape);
    in->uses = 0;
    in->slots = 0;
    for (uint32_t j = 0; j < n->n_in; j++) {
        in->uses += n->in[j] == x;
        if (n->in[j] == x && j < 64) in->slots |= (uint64_t)1 << j;
    }
    in->gets_grad = x->requires_grad && x->grad;
    in->local = in->contrib = in->total = NAN;
}

/* Starts a step: the node, its upstream gradient, its inputs and their
 * gradients before the node's rule adds to them. */
static void before(struct tg_tensor *n, struct recorder *R)
{
    struct tg_trace *tr = R->tr;
    if (!grow((void **)&tr->steps, &R->room, tr->n_steps + 1, sizeof *tr->steps) ||
        !grow((void **)&R->off, &R->off_room, n->n_in, sizeof *R->off)) {
        R->err = TG_ERR_NOMEM;
        return;
    }
    struct tg_trace_step *s = &tr->steps[tr->n_steps];
    memset(s, 0, sizeof *s);
    s->node = n;
    s->op = n->desc->op;
    s->op_name = n->desc->name;
    s->operands = tg__rule_operands(n->desc);
    s->elementwise = n->desc->elementwise;
    int64_t k = tg__graph_find(&R->g, n);
    s->id = k >= 0 ? R->g.id[k] : 0;
    s->rank = n->rank;
    memcpy(s->shape, n->shape, (size_t)n->rank * sizeof *n->shape); /* the rest stays 0 */
    s->value = n->numel == 1 ? tg__load(n->data, n->dtype, 0) : norm2(n->data, n->dtype, n->numel);
    s->upstream =
        n->numel == 1 ? tg__load(n->grad, n->dtype, 0) : norm2(n->grad, n->dtype, n->numel);
    s->n_params = tg_tensor_op_params(n, s->params, TG_MAX_OP_PARAMS);
    int distinct = 0;
    for (uint32_t i = 0; i < n->n_in; i++) distinct += first_use(n, i);
    if (!(s->inputs = tg__calloc((size_t)distinct ? (size_t)distinct : 1, sizeof *s->inputs))) {
        R->err = TG_ERR_NOMEM;
        return;
    }
    tr->n_steps++; /* the step owns its inputs array from here on */
    char rule[TG_RULE_MAX];
    tg__rule_template(n, rule, sizeof rule);
    char *text = tg__malloc(strlen(rule) + 1);
    if (!text) {
        R->err = TG_ERR_NOMEM;
        return;
    }
    s->rule = memcpy(text, rule, strlen(rule) + 1);
    int64_t used = 0;
    for (uint32_t i = 0; i < n->n_in; i++) {
        if (!first_use(n, i)) continue;
        struct tg_trace_input *in = &s->inputs[s->n_inputs++];
        fill_input(R, in, n, i);
        R->off[in - s->inputs] = -1;
        if (!in->gets_grad) continue;
        const struct tg_tensor *x = n->in[i];
        if (!grow((void **)&R->snap, &R->snap_room, used + x->numel, sizeof *R->snap)) {
            R->err = TG_ERR_NOMEM;
            return;
        }
        for (int64_t e = 0; e < x->numel; e++) R->snap[used + e] = tg__load(x->grad, x->dtype, e);
        R->off[in - s->inputs] = used;
        used += x->numel;
    }
}

/* Finishes a step: what the node's rule added to each input. */
static void after(struct tg_tensor *n, struct recorder *R)
{
    struct tg_trace_step *s = &R->tr->steps[R->tr->n_steps - 1];
    double local[16], per_slot[16];
    s->scalar = tg__local_derivs(n, local, per_slot);
    int d = 0;
    for (uint32_t i = 0; i < n->n_in; i++) {
        if (!first_use(n, i)) continue;
        struct tg_trace_input *in = &s->inputs[d];
        int64_t off = R->off[d++];
        if (s->scalar) {
            in->local = local[i];
            for (uint32_t j = i, k = 0; j < n->n_in && k < TG_TRACE_SLOTS; j++)
                if (n->in[j] == n->in[i]) in->local_slots[k++] = per_slot[j];
        } else {
            struct tg_jacobian_info *J = &in->jacobian;
            in->jacobian_classified = tg__local_jacobian(n, i, J) == TG_OK;
            if (!in->jacobian_classified)
                *J = (struct tg_jacobian_info){.rows = n->numel, .cols = n->in[i]->numel};
        }
        if (off < 0) continue;
        const struct tg_tensor *x = n->in[i];
        double c2 = 0, t2 = 0;
        for (int64_t e = 0; e < x->numel; e++) {
            double now = tg__load(x->grad, x->dtype, e), c = now - R->snap[off + e];
            c2 += c * c;
            t2 += now * now;
        }
        in->contrib = x->numel == 1 ? tg__load(x->grad, x->dtype, 0) - R->snap[off] : sqrt(c2);
        in->total = x->numel == 1 ? tg__load(x->grad, x->dtype, 0) : sqrt(t2);
        in->nth = ++R->count[tg__graph_find(&R->g, x)];
    }
}

static void hook(struct tg_tensor *n, bool is_after, void *ctx)
{
    struct recorder *R = ctx;
    if (R->err) return;
    if (is_after)
        after(n, R);
    else
        before(n, R);
}

enum tg_status tg_backward_trace(struct tg_tensor *root, const struct tg_tensor *seed,
                                 struct tg_trace **out)
{
    if (!out) return tg__fail(TG_ERR_NULL, "tg_backward_trace: out is NULL");
    *out = NULL;
    if (!root) return tg__null_input("backward", "root");
    if (tg__check_input(root->tape, "backward", root)) return tg_last_status();
    struct recorder R;
    memset(&R, 0, sizeof R);
    enum tg_status st = tg__graph_build(&R.g, root);
    if (st) return st;
    R.tr = tg__calloc(1, sizeof *R.tr);
    R.count = tg__calloc((size_t)R.g.n, sizeof *R.count);
    if (!R.tr || !R.count)
        st = tg_last_status();
    else
        st = tg__backward_ex(root, seed, hook, &R);
    if (!st && R.err) st = tg__fail(R.err, "tg_backward_trace: out of memory while recording");
    tg__graph_free(&R.g);
    tg__free(R.count);
    tg__free(R.snap);
    tg__free(R.off);
    if (st) {
        tg_trace_free(R.tr);
        return st;
    }
    *out = R.tr;
    return TG_OK;
}

void tg_trace_free(struct tg_trace *trace)
{
    if (!trace) return;
    for (int64_t i = 0; i < trace->n_steps; i++) {
        tg__free(trace->steps[i].inputs);
        tg__free((char *)trace->steps[i].rule);
    }
    tg__free(trace->steps);
    tg__free(trace);
}

/* ---- printing ---- */

static void label(char *buf, size_t size, const struct tg_graph_names *names,
                  const struct tg_tensor *t, enum tg_graph_kind kind, int id)
{
    const char *nm = tg_graph_name_of(names, t);
    char p = kind == TG_GRAPH_OP ? 'v' : (kind == TG_GRAPH_CONST ? 'c' : 'x');
    if (nm)
        snprintf(buf, size, "%s", nm);
    else
        snprintf(buf, size, "%c%d", p, id);
}

/* The step's rule in the names of its tensors (up to 64 input slots). */
static void print_rule(FILE *out, const struct tg_trace_step *s, const char *node,
                       const struct tg_graph_names *names)
{
    enum { SLOTS = 64 };
    char label_of[SLOTS][128];
    const char *slot_name[SLOTS] = {NULL};
    int n_slots = 0;
    for (int i = 0; i < s->n_inputs && i < SLOTS; i++) {
        const struct tg_trace_input *x = &s->inputs[i];
        label(label_of[i], sizeof label_of[0], names, x->tensor, x->kind, x->id);
        for (int k = 0; k < SLOTS; k++)
            if (x->slots >> k & 1) {
                slot_name[k] = label_of[i];
                n_slots = k + 1 > n_slots ? k + 1 : n_slots;
            }
    }
    char text[2 * TG_RULE_MAX];
    tg__rule_render(s->rule ? s->rule : "", s->operands ? s->operands : "", n_slots, slot_name,
                    node, s->n_params, s->params, text, sizeof text);
    fprintf(out, "    rule: %s\n", text);
}

static void print_header(FILE *out, const struct tg_trace_step *s, const char *node,
                         const char *root, const struct tg_graph_names *names, int64_t k)
{
    char shape[160], in[128];
    fprintf(out, "[%lld] %s = %s(", (long long)k + 1, node, s->op_name);
    for (int i = 0; i < s->n_inputs; i++) {
        const struct tg_trace_input *x = &s->inputs[i];
        label(in, sizeof in, names, x->tensor, x->kind, x->id);
        for (int u = 0; u < x->uses; u++) fprintf(out, "%s%s", i || u ? ", " : "", in);
    }
    for (int p = 0; p < s->n_params; p++) fprintf(out, ", %.6g", s->params[p]);
    tg_tensor_format_shape(shape, sizeof shape, s->rank, s->shape);
    if (s->scalar)
        fprintf(out, ") = %.6g\n", s->value);
    else
        fprintf(out, ")  shape %s, |value| = %.6g\n", shape, s->value);
    print_rule(out, s, node, names);
    const char *bar = s->scalar ? "" : "|";
    fprintf(out, "    %sd%s/d%s%s = %.6g%s\n", bar, root, node, bar, s->upstream,
            k == 0 ? "   (the seed)" : "");
}

static void print_input(FILE *out, const struct tg_trace_step *s, const struct tg_trace_input *x,
                        const char *node, const char *root, const char *in)
{
    static const char *const word[4] = {"an op result", "a parameter", "an input", "a constant"};
    if (!x->gets_grad) {
        fprintf(out, "    %s: %s that needs no gradient\n", in, word[x->kind]);
        return;
    }
    if (s->scalar) {
        fprintf(out, "    d%s/d%s += d%s/d%s * d%s/d%s = ", root, in, node, in, root, node);
        if (x->uses > 1) { /* one term per slot the input fills: x * x gives (3 + 3) */
            for (int k = 0; k < x->uses && k < TG_TRACE_SLOTS; k++)
                fprintf(out, "%s%.6g", k ? " + " : "(", x->local_slots[k]);
            fprintf(out, "%s) * %.6g = %.6g", x->uses > TG_TRACE_SLOTS ? " + ..." : "", s->upstream,
                    x->contrib);
        } else {
            fprintf(out, "%.6g * %.6g = %.6g", x->local, s->upstream, x->contrib);
        }
        fprintf(out, "   -> d%s/d%s = %.6g", root, in, x->total);
    } else {
        char si[160], so[160], j[160];
        tg_tensor_format_shape(si, sizeof si, x->rank, x->shape);
        tg_tensor_format_shape(so, sizeof so, s->rank, s->shape);
        if (x->jacobian_classified)
            tg__jacobian_format(&x->jacobian, j, sizeof j);
        else
            snprintf(j, sizeof j, "%lldx%lld, not classified", (long long)x->jacobian.rows,
                     (long long)x->jacobian.cols);
        fprintf(out, "    d%s/d%s += d%s/d%s J_%s(%s)  [Jacobian %s; %s by %s]", root, in, root,
                node, node, in, j, so, si);
        fprintf(out, "  |added| = %.6g   -> |d%s/d%s| = %.6g", x->contrib, root, in, x->total);
    }
    if (x->nth > 1) fprintf(out, "  (sum of %d contributions)", x->nth);
    fputc('\n', out);
}

enum tg_status tg_trace_print(const struct tg_trace *trace, FILE *out,
                              const struct tg_graph_names *names)
{
    if (!trace || !out) return tg__fail(TG_ERR_NULL, "tg_trace_print: trace or out is NULL");
    if (trace->n_steps == 0) return TG_OK;
    char root[128], node[128], in[128];
    const struct tg_trace_step *r = &trace->steps[0];
    const char *rn = tg_graph_name_of(names, r->node);
    snprintf(root, sizeof root, "%s", rn ? rn : "Div");
    label(node, sizeof node, names, r->node, TG_GRAPH_OP, r->id);
    fprintf(out, "Backward sweep from %s%s%s, %lld step%s (consumers before producers):\n", root,
            rn ? "" : " = ", rn ? "" : node, (long long)trace->n_steps,
            trace->n_steps == 1 ? "" : "s");
    for (int64_t k = 0; k < trace->n_steps; k++) {
        const struct tg_trace_step *s = &trace->steps[k];
        label(node, sizeof node, names, s->node, TG_GRAPH_OP, s->id);
        print_header(out, s, node, root, names, k);
        for (int i = 0; i < s->n_inputs; i++) {
            const struct tg_trace_input *x = &s->inputs[i];
            label(in, sizeof in, names, x->tensor, x->kind, x->id);
            print_input(out, s, x, node, root, in);
        }
    }
    if (ferror(out)) return tg__fail(TG_ERR_IO, "tg_trace_print: writing failed");
    return TG_OK;
}
