/*
 * engine/html.c - tg_graph_html: one self-contained page of a graph and of its
 * recorded backward sweep, to step through in a browser.
 *
 * The page is the graph as inline SVG (Graphviz's drawing when the caller gives
 * one, else a simple layered layout drawn here), the facts of every node and
 * every sweep step as one JSON block, and a script (engine/html/page.js, CSS in
 * page.css; both embedded at build time by embed.py) that steps through them.
 * Every number comes from the engine: values and gradients from the tensors,
 * the sweep from tg_backward_trace, local derivatives from the op's own
 * backward rule (tg__local_derivs), the numeric check from a replay of the
 * recorded forward rules judged by tg_gradcheck's own comparison.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "graph-impl.h"
#include "tapegrad/gradcheck.h"
#include "tapegrad/trace.h"

extern const char *const tg__html_css[];
extern const char *const tg__html_js[];

struct page {
    FILE *out;
    struct tg__graph g;
    const struct tg_graph_html_options *o;
    const struct tg_graph_names *names;
    const struct tg_trace *tr;
    struct tg_tensor *root;
    int max_values, max_check;
};

/* ---- writing ---- */

static void put_html(FILE *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '&':
            fputs("&amp;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        default:
            fputc(*s, out);
        }
    }
}

/* A JSON string; "</" is written "<\/" so that the block cannot end the script. */
static void put_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c == '/' && p > s && p[-1] == '<')
            fputs("\\/", out);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

/* A JSON number; NaN and infinities as the strings the script reads back. */
static void put_num(FILE *out, double v)
{
    if (isnan(v))
        fputs("\"NaN\"", out);
    else if (isinf(v))
        fputs(v > 0 ? "\"Infinity\"" : "\"-Infinity\"", out);
    else
        fprintf(out, "%.17g", v);
}

static void put_array(FILE *out, const void *p, int dtype, int64_t n)
{
    fputc('[', out);
    for (int64_t i = 0; i < n; i++) {
        if (i) fputc(',', out);
        put_num(out, tg__load(p, dtype, i));
    }
    fputc(']', out);
}

static void put_shape(FILE *out, int rank, const int64_t *shape)
{
    fputc('[', out);
    for (int i = 0; i < rank; i++) fprintf(out, "%s%lld", i ? "," : "", (long long)shape[i]);
    fputc(']', out);
}

static void label_of(const struct page *P, const struct tg_tensor *t, char *buf, size_t size)
{
    tg__graph_label(&P->g, P->names, t, buf, size);
}

/* ---- the numeric check: a replay of the recorded forward rules ---- */

static double objective(const struct page *P)
{
    const struct tg_tensor *r = P->root, *s = P->o ? P->o->seed : NULL;
    double f = 0;
    for (int64_t i = 0; i < r->numel; i++)
        f += tg__load(r->data, r->dtype, i) * (s ? tg__load(s->data, s->dtype, i) : 1.0);
    return f;
}

static bool replayable(const struct page *P)
{
    for (int64_t k = 0; k < P->g.n; k++) {
        const struct tg_tensor *t = P->g.order[k];
        if (t->desc && !(t->numel == 1 && t->desc->forward1[t->dtype]) && !t->desc->forward)
            return false;
    }
    return true;
}

static double replay(const struct page *P)
{
    for (int64_t k = 0; k < P->g.n; k++) {
        struct tg_tensor *t = P->g.order[k];
        if (!t->desc) continue;
        /* a node of the scalar record path has no shape: its own kernel */
        if (t->numel == 1 && t->desc->forward1[t->dtype])
            t->desc->forward1[t->dtype](t);
        else
            t->desc->forward(t);
    }
    return objective(P);
}

static const char *verdict(const struct tg_gradcheck_report *rep, double an, double num)
{
    if (!isfinite(an) || !isfinite(num)) return "not finite";
    if (rep->n_kinks) return "kink";
    return rep->n_failed ? "disagree" : "agree";
}

/* One leaf's check: {"node":k,"index":[...],"analytic":[...],...}. */
static void put_check(struct page *P, int64_t k)
{
    struct tg_tensor *x = P->g.order[k];
    FILE *out = P->out;
    int64_t n = x->numel < P->max_check ? x->numel : P->max_check;
    bool f64 = x->dtype == TG_F64;
    const void *gr = tg_tensor_grad(x);
    double f0 = objective(P);
    fprintf(out, "{\"node\":%lld,\"checked\":%lld,\"items\":[", (long long)k, (long long)n);
    for (int64_t j = 0; j < n; j++) {
        double v = tg__load(x->data, x->dtype, j), h = (f64 ? 1e-6 : 1e-3) * fmax(1.0, fabs(v));
        double an = gr ? tg__load(gr, x->dtype, j) : 0.0;
        tg__store(x->data, x->dtype, j, v + h);
        double fp = replay(P);
        tg__store(x->data, x->dtype, j, v - h);
        double fm = replay(P);
        tg__store(x->data, x->dtype, j, v);
        struct tg_gradcheck_options go = {
            .eps = h, .atol = f64 ? 1e-8 : 1e-4, .rtol = f64 ? 1e-6 : 1e-2};
        struct tg_gradcheck_report rep;
        memset(&rep, 0, sizeof rep);
        rep.worst_input = -1;
        double worst = 0, num = (fp - fm) / (2 * h);
        tg__gradcheck_judge(&go, &rep, &worst, 0, j, an, f0, fp, fm);
        fprintf(out, "%s{\"index\":%lld,\"analytic\":", j ? "," : "", (long long)j);
        put_num(out, an);
        fputs(",\"numeric\":", out);
        put_num(out, num);
        fputs(",\"left\":", out);
        put_num(out, (f0 - fm) / h);
        fputs(",\"right\":", out);
        put_num(out, (fp - f0) / h);
        fputs(",\"verdict\":", out);
        put_str(out, verdict(&rep, an, num));
        fputc('}', out);
    }
    fputs("]}", out);
}

static void put_checks(struct page *P)
{
    FILE *out = P->out;
    const struct tg_tensor *s = P->o ? P->o->seed : NULL;
    fputs(",\"checks\":[", out);
    bool any = false;
    if (P->root->desc && (P->root->numel == 1 || s) && replayable(P)) {
        for (int64_t k = 0; k < P->g.n; k++) {
            struct tg_tensor *x = P->g.order[k];
            if (tg_graph_kind(x) != TG_GRAPH_PARAM) continue;
            if (any) fputc(',', out);
            put_check(P, k);
            any = true;
        }
        replay(P); /* back to the recorded values */
    }
    fputs("]", out);
    if (!P->root->desc)
        fputs(",\"no_check\":\"the graph is a single tensor: no op to differentiate\"", out);
    else if (!any && !replayable(P))
        fputs(",\"no_check\":\"an op of the graph cannot be replayed\"", out);
}

/* ---- the facts: nodes and steps ---- */

static void put_node(struct page *P, int64_t k)
{
    static const char *const kinds[4] = {"op", "param", "input", "const"};
    const struct tg_tensor *t = P->g.order[k];
    FILE *out = P->out;
    char name[128];
    label_of(P, t, name, sizeof name);
    fprintf(out, "%s{\"dot\":\"t%lld\",\"label\":", k ? ",\n" : "", (long long)k);
    put_str(out, name);
    fprintf(out, ",\"kind\":\"%s\",\"named\":%s", kinds[tg_graph_kind(t)],
            tg_graph_name_of(P->names, t) ? "true" : "false");
    if (t->desc) {
        fputs(",\"op\":", out);
        put_str(out, t->desc->name);
        fputs(",\"formula\":", out);
        put_str(out, t->desc->formula ? t->desc->formula : "");
        fputs(",\"inputs\":[", out);
        for (uint32_t i = 0; i < t->n_in; i++)
            fprintf(out, "%s%lld", i ? "," : "", (long long)tg__graph_find(&P->g, t->in[i]));
        fputc(']', out);
        double params[TG_MAX_OP_PARAMS];
        int np = tg_tensor_op_params(t, params, TG_MAX_OP_PARAMS);
        fputs(",\"params\":[", out);
        for (int i = 0; i < np; i++) {
            if (i) fputc(',', out);
            put_num(out, params[i]);
        }
        fputc(']', out);
    }
    fputs(",\"shape\":", out);
    put_shape(out, t->rank, t->shape);
    fprintf(out, ",\"dtype\":\"%s\",\"numel\":%lld", tg_dtype_name(t->dtype), (long long)t->numel);
    int64_t n = t->numel < P->max_values ? t->numel : P->max_values;
    double s2 = 0;
    for (int64_t i = 0; i < t->numel; i++) s2 += pow(tg__load(t->data, t->dtype, i), 2);
    fputs(",\"norm\":", out);
    put_num(out, sqrt(s2));
    fputs(",\"value\":", out);
    put_array(out, t->data, t->dtype, n);
    const void *gr = tg_tensor_grad(t);
    fputs(",\"grad\":", out);
    if (gr) {
        put_array(out, gr, t->dtype, n);
        s2 = 0;
        for (int64_t i = 0; i < t->numel; i++) s2 += pow(tg__load(gr, t->dtype, i), 2);
        fputs(",\"grad_norm\":", out);
        put_num(out, sqrt(s2));
    } else {
        fputs("null", out);
    }
    fputc('}', out);
}

static void put_step(struct page *P, const struct tg_trace_step *s, int64_t i)
{
    FILE *out = P->out;
    fprintf(out, "%s{\"node\":%lld,\"rule\":", i ? ",\n" : "",
            (long long)tg__graph_find(&P->g, s->node));
    put_str(out, s->rule ? s->rule : "");
    fprintf(out, ",\"scalar\":%s,\"value\":", s->scalar ? "true" : "false");
    put_num(out, s->value);
    fputs(",\"upstream\":", out);
    put_num(out, s->upstream);
    fputs(",\"inputs\":[", out);
    for (int j = 0; j < s->n_inputs; j++) {
        const struct tg_trace_input *x = &s->inputs[j];
        fprintf(out,
                "%s{\"node\":%lld,\"uses\":%d,\"gets_grad\":%s,\"nth\":%d,\"local\":", j ? "," : "",
                (long long)tg__graph_find(&P->g, x->tensor), x->uses,
                x->gets_grad ? "true" : "false", x->nth);
        put_num(out, x->local);
        fputs(",\"contrib\":", out);
        put_num(out, x->contrib);
        fputs(",\"total\":", out);
        put_num(out, x->total);
        fputs(",\"jacobian\":", out);
        char jb[200];
        if (x->jacobian_classified)
            tg__jacobian_format(&x->jacobian, jb, sizeof jb);
        else
            snprintf(jb, sizeof jb, "J %lldx%lld not classified", (long long)x->jacobian.rows,
                     (long long)x->jacobian.cols);
        put_str(out, jb);
        fputc('}', out);
    }
    fputs("]}", out);
}

static void put_data(struct page *P)
{
    FILE *out = P->out;
    const struct tg_graph_html_options *o = P->o;
    char root[128];
    const char *rn = tg_graph_name_of(P->names, P->root);
    snprintf(root, sizeof root, "%s", rn ? rn : "Div");
    fputs("<script type=\"application/json\" id=\"tg-data\">\n{\"title\":", out);
    put_str(out, o && o->title ? o->title : "graph");
    fputs(",\"root_name\":", out);
    put_str(out, root);
    fprintf(out, ",\"root\":%lld,\"docs\":", (long long)tg__graph_find(&P->g, P->root));
    put_str(out, o && o->docs_url ? o->docs_url : "docs/backprop.md");
    fprintf(out, ",\"max_values\":%d,\"nodes\":[\n", P->max_values);
    for (int64_t k = 0; k < P->g.n; k++) put_node(P, k);
    fputs("],\n\"steps\":[\n", out);
    for (int64_t i = 0; i < P->tr->n_steps; i++) put_step(P, &P->tr->steps[i], i);
    fputs("]", out);
    put_checks(P);
    fputs("}\n</script>\n", out);
}

/* ---- the picture when no Graphviz drawing is given: a layered layout ---- */

enum { COL_W = 210, ROW_H = 92, BOX_W = 150, LINE_H = 13 };

/* Lines of a node's label, as tg_graph_dot writes them (the script finds the
 * "value" and "grad" lines by their first word). */
static int node_lines(const struct page *P, const struct tg_tensor *t, char lines[4][160])
{
    static const char *const word[4] = {"", "param", "input", "const"};
    char name[128], shape[96];
    enum tg_graph_kind kind = tg_graph_kind(t);
    label_of(P, t, name, sizeof name);
    tg_tensor_format_shape(shape, sizeof shape, t->rank, t->shape);
    int n = 0;
    if (t->desc)
        snprintf(lines[n++], 160, "%s = %s", name, t->desc->name);
    else
        snprintf(lines[n++], 160, "%s", name);
    snprintf(lines[n++], 160, "%s%s%s %s", word[kind], kind ? " " : "", shape,
             tg_dtype_name(t->dtype));
    if (t->numel == 1) {
        snprintf(lines[n++], 160, "value %.6g", tg__load(t->data, t->dtype, 0));
        const void *gr = tg_tensor_grad(t);
        if (gr) snprintf(lines[n++], 160, "grad %.6g", tg__load(gr, t->dtype, 0));
    }
    return n;
}

static void put_svg_node(const struct page *P, int64_t k, double x, double y)
{
    FILE *out = P->out;
    const struct tg_tensor *t = P->g.order[k];
    char lines[4][160];
    int n = node_lines(P, t, lines);
    double h = n * LINE_H + 12;
    fprintf(out, "<g class=\"node\" id=\"node%lld\"><title>t%lld</title>\n", (long long)k + 1,
            (long long)k);
    switch (tg_graph_kind(t)) {
    case TG_GRAPH_OP:
        fprintf(out,
                "<ellipse cx=\"%.1f\" cy=\"%.1f\" rx=\"%d\" ry=\"%.1f\" fill=\"none\" "
                "stroke=\"black\"/>\n",
                x + BOX_W / 2.0, y, BOX_W / 2 + 6, h / 2 + 6);
        break;
    case TG_GRAPH_PARAM: /* a box, drawn heavier */
    case TG_GRAPH_INPUT: {
        bool param = tg_graph_kind(t) == TG_GRAPH_PARAM;
        fprintf(out,
                "<polygon points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f %.1f,%.1f\" "
                "fill=\"%s\" stroke=\"black\"%s/>\n",
                x, y - h / 2, x + BOX_W, y - h / 2, x + BOX_W, y + h / 2, x, y + h / 2,
                param ? "#ffe4b5" : "#dbeafe", param ? " stroke-width=\"2\"" : "");
        break;
    }
    case TG_GRAPH_CONST:
        break;
    }
    for (int i = 0; i < n; i++) {
        fprintf(out, "<text text-anchor=\"middle\" x=\"%.1f\" y=\"%.1f\" font-size=\"10\"%s>",
                x + BOX_W / 2.0, y - h / 2 + 6 + LINE_H * (i + 1) - 3,
                tg_graph_kind(t) == TG_GRAPH_CONST ? " fill=\"#555555\"" : "");
        put_html(out, lines[i]);
        fputs("</text>\n", out);
    }
    fputs("</g>\n", out);
}

static void put_svg_edge(const struct page *P, int64_t from, int64_t to, uint32_t slot,
                         const double *pos, const double *local, int uses, int64_t *edge_no)
{
    FILE *out = P->out;
    struct tg_tensor *t = P->g.order[to];
    const struct tg_tensor *x = t->in[slot];
    double x1 = pos[2 * from] + BOX_W + 6, y1 = pos[2 * from + 1];
    double x2 = pos[2 * to] - 6, y2 = pos[2 * to + 1];
    char tn[128], xn[128], lab[400];
    label_of(P, t, tn, sizeof tn);
    label_of(P, x, xn, sizeof xn);
    if (local) {
        snprintf(lab, sizeof lab, "d%s/d%s = %.6g", tn, xn, local[slot]);
    } else {
        tg__jacobian_label(t, slot, lab, sizeof lab); /* as tg_graph_dot labels it */
    }
    if (uses > 1) snprintf(lab + strlen(lab), sizeof lab - strlen(lab), " (used %dx)", uses);
    double dx = x2 - x1, dy = y2 - y1, len = sqrt(dx * dx + dy * dy);
    double ux = len > 0 ? dx / len : 1, uy = len > 0 ? dy / len : 0;
    fprintf(out, "<g class=\"edge\" id=\"edge%lld\"><title>t%lld&#45;&gt;t%lld</title>\n",
            (long long)++*edge_no, (long long)from, (long long)to);
    fprintf(out, "<path fill=\"none\" stroke=\"black\" d=\"M%.1f,%.1f L%.1f,%.1f\"/>\n", x1, y1,
            x2 - 8 * ux, y2 - 8 * uy);
    fprintf(out,
            "<polygon fill=\"black\" stroke=\"black\" points=\"%.1f,%.1f %.1f,%.1f "
            "%.1f,%.1f\"/>\n",
            x2, y2, x2 - 9 * ux - 4 * uy, y2 - 9 * uy + 4 * ux, x2 - 9 * ux + 4 * uy,
            y2 - 9 * uy - 4 * ux);
    fprintf(out, "<text text-anchor=\"middle\" x=\"%.1f\" y=\"%.1f\" font-size=\"9\">",
            (x1 + x2) / 2, (y1 + y2) / 2 - 4);
    put_html(out, lab);
    fputs("</text></g>\n", out);
}

static enum tg_status put_own_svg(struct page *P)
{
    int64_t n = P->g.n;
    int *layer = tg__calloc((size_t)n, sizeof *layer), *row = tg__calloc((size_t)n, sizeof *row);
    int *count = tg__calloc((size_t)n + 1, sizeof *count);
    double *pos = tg__calloc((size_t)n * 2, sizeof *pos);
    if (!layer || !row || !count || !pos) {
        tg__free(layer), tg__free(row), tg__free(count), tg__free(pos);
        return tg_last_status();
    }
    /* ops: one past their deepest input; leaves and constants: just before their
     * first consumer's layer (order is topological, so one pass each) */
    int max_layer = 0, max_rows = 1;
    for (int64_t k = 0; k < n; k++) {
        struct tg_tensor *t = P->g.order[k];
        if (!t->desc) continue;
        int l = 1;
        for (uint32_t i = 0; i < t->n_in; i++) {
            int64_t j = tg__graph_find(&P->g, t->in[i]);
            if (P->g.order[j]->desc && layer[j] + 1 > l) l = layer[j] + 1;
        }
        layer[k] = l;
    }
    for (int64_t k = 0; k < n; k++) {
        struct tg_tensor *t = P->g.order[k];
        for (uint32_t i = 0; t->desc && i < t->n_in; i++) {
            int64_t j = tg__graph_find(&P->g, t->in[i]);
            if (!P->g.order[j]->desc && (layer[j] == 0 || layer[k] - 1 < layer[j]))
                layer[j] = layer[k] - 1 > 0 ? layer[k] - 1 : 0;
        }
    }
    for (int64_t k = 0; k < n; k++) {
        row[k] = count[layer[k]]++;
        if (layer[k] > max_layer) max_layer = layer[k];
        if (count[layer[k]] > max_rows) max_rows = count[layer[k]];
    }
    for (int64_t k = 0; k < n; k++) {
        pos[2 * k] = 20 + (double)layer[k] * COL_W;
        pos[2 * k + 1] = 50 + ((double)row[k] + (max_rows - count[layer[k]]) / 2.0) * ROW_H;
    }
    FILE *out = P->out;
    double w = 40 + (double)max_layer * COL_W + BOX_W, h = 60 + (double)max_rows * ROW_H;
    fprintf(out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0fpt\" height=\"%.0fpt\" "
            "viewBox=\"0 0 %.0f %.0f\" font-family=\"Helvetica,Arial,sans-serif\">\n"
            "<g id=\"graph0\" class=\"graph\">\n",
            w, h, w, h);
    for (int64_t k = 0; k < n; k++) put_svg_node(P, k, pos[2 * k], pos[2 * k + 1]);
    int64_t edge_no = 0;
    for (int64_t k = 0; k < n; k++) {
        struct tg_tensor *t = P->g.order[k];
        if (!t->desc) continue;
        double local[16];
        bool scalar = tg__local_derivs(t, local, NULL);
        for (uint32_t i = 0; i < t->n_in; i++) {
            int uses = 0;
            bool dup = false;
            for (uint32_t j = 0; j < t->n_in; j++) {
                uses += t->in[j] == t->in[i];
                dup |= j < i && t->in[j] == t->in[i];
            }
            if (!dup)
                put_svg_edge(P, tg__graph_find(&P->g, t->in[i]), k, i, pos, scalar ? local : NULL,
                             uses, &edge_no);
        }
    }
    fputs("</g>\n</svg>\n", out);
    tg__free(layer), tg__free(row), tg__free(count), tg__free(pos);
    return TG_OK;
}

/* ---- the page ---- */

static void put_lines(FILE *out, const char *const *lines)
{
    for (; *lines; lines++) fputs(*lines, out);
}

static enum tg_status put_page(struct page *P, const char *svg)
{
    FILE *out = P->out;
    const char *title = P->o && P->o->title ? P->o->title : "graph";
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<title>tapegrad: ",
          out);
    put_html(out, title);
    fputs("</title>\n<style>\n", out);
    put_lines(out, tg__html_css);
    fputs("</style>\n</head>\n<body class=\"tg-graph\">\n<header>\n<h1>Backpropagation, step by "
          "step</h1>\n<p class=\"expr\"><code>",
          out);
    put_html(out, title);
    fputs("</code></p>\n</header>\n"
          "<nav id=\"controls\" aria-label=\"steps\">\n"
          "<button id=\"first\" title=\"first step (Home)\">&#x00AB; first</button>\n"
          "<button id=\"prev\" title=\"previous step (left arrow)\">&#x25C0; back</button>\n"
          "<button id=\"next\" title=\"next step (right arrow)\">step &#x25B6;</button>\n"
          "<button id=\"last\" title=\"last step (End)\">last &#x00BB;</button>\n"
          "<input id=\"slider\" type=\"range\" min=\"0\" max=\"0\" value=\"0\" "
          "aria-label=\"jump to step\">\n"
          "<span id=\"counter\"></span>\n</nav>\n"
          "<main>\n<section id=\"graph\" aria-label=\"the graph\">\n",
          out);
    enum tg_status st = TG_OK;
    if (svg)
        fputs(svg, out);
    else
        st = put_own_svg(P);
    if (st) return st;
    fputs("<p class=\"legend\"><span class=\"k-param\">parameter</span> "
          "<span class=\"k-input\">input</span> <span class=\"k-op\">op result</span> "
          "<span class=\"k-const\">constant</span>. Click a node for its values.</p>\n"
          "</section>\n<section id=\"panel\" aria-live=\"polite\">\n"
          "<div id=\"explain\"></div>\n<div id=\"details\"></div>\n</section>\n</main>\n"
          "<section id=\"final\">\n<h2>Gradients of the leaves</h2>\n"
          "<p id=\"final-note\"></p>\n<table id=\"final-table\"><thead><tr><th>leaf</th>"
          "<th>backward (chain rule)</th><th>numeric (central difference)</th>"
          "<th>verdict</th></tr></thead><tbody></tbody></table>\n</section>\n"
          "<section id=\"all-steps\">\n<h2>All steps</h2>\n<ol id=\"steps\"></ol>\n</section>\n"
          "<footer><p id=\"layout-note\">",
          out);
    fputs(svg ? "Graph laid out by Graphviz (dot)."
              : "Graph laid out by tapegrad's own layered layout (Graphviz was not used).",
          out);
    fputs(" Written by tapegrad's <code>tg_graph_html</code>.</p></footer>\n", out);
    put_data(P);
    fputs("<script>\n", out);
    put_lines(out, tg__html_js);
    fputs("</script>\n</body>\n</html>\n", out);
    return TG_OK;
}

enum tg_status tg_graph_html(struct tg_tensor *root, const struct tg_trace *trace, FILE *out,
                             const struct tg_graph_html_options *opts)
{
    if (!root) return tg__null_input("tg_graph_html", "root");
    if (!trace || !out) return tg__fail(TG_ERR_NULL, "tg_graph_html: trace or out is NULL");
    if (tg__check_input(root->tape, "tg_graph_html", root)) return tg_last_status();
    if (root->desc ? trace->n_steps < 1 || trace->steps[0].node != root : trace->n_steps != 0)
        return tg__fail(TG_ERR_MISMATCH,
                        "tg_graph_html: the trace is not a backward sweep from this root");
    const struct tg_tensor *seed = opts ? opts->seed : NULL;
    if (seed && (seed->numel != root->numel || seed->rank != root->rank))
        return tg__fail(TG_ERR_MISMATCH, "tg_graph_html: the seed's shape is not the root's");
    const char *svg = opts && opts->svg ? strstr(opts->svg, "<svg") : NULL;
    if (opts && opts->svg && !svg)
        return tg__fail(TG_ERR_FORMAT, "tg_graph_html: svg holds no <svg element");
    struct page P = {
        .out = out, .o = opts, .names = opts ? opts->names : NULL, .tr = trace, .root = root};
    P.max_values = opts && opts->max_values > 0 ? opts->max_values : 64;
    P.max_check = opts && opts->max_check > 0 ? opts->max_check : 16;
    enum tg_status st = tg__graph_build(&P.g, root);
    if (st) return st;
    for (int64_t i = 0; i < trace->n_steps; i++)
        if (tg__graph_find(&P.g, trace->steps[i].node) < 0) {
            tg__graph_free(&P.g);
            return tg__fail(TG_ERR_MISMATCH,
                            "tg_graph_html: trace step %lld is not a node of root's graph",
                            (long long)i + 1);
        }
    st = put_page(&P, svg);
    tg__graph_free(&P.g);
    if (st) return st;
    if (ferror(out)) return tg__fail(TG_ERR_IO, "tg_graph_html: writing the page failed");
    return TG_OK;
}
