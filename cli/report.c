/*
 * cli/report.c - the training report of `tapegrad train --report FILE.html`.
 *
 * Every chart is inline SVG drawn here: axes with ticks and labels, one
 * <g data-series="..."> per curve with a <circle> per epoch (a <title> on each
 * gives its value on hover), a legend. Nothing is fetched: the page works from
 * a file:// URL, on a phone (the charts scale to the width) and in print.
 */
#include "report.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "mlpio.h"

static const char prog[] = "tapegrad train";

struct report {
    int cap, n_epochs, n_layers; /* epochs recorded: 0 .. n_epochs - 1 */
    int64_t sizes[MLP_MAX_LAYERS + 1];
    bool relu, classify;
    char *title, *about;
    double *train_loss, *train_acc, *test_loss, *test_acc; /* (cap) */
    double *grad, *ratio, *dead;                           /* (cap * n_layers) */
    float *w_first, *w_last;                               /* all weights, layer by layer */
    int64_t n_weights;
    bool have_first;
    int64_t *confusion; /* (C * C): [true][predicted] */
    int64_t classes;
    FILE *out; /* opened by report_new: a path that cannot be written fails first */
    char *path;
};

static const char *const palette[] = {"#1864ab", "#d9480f", "#2b8a3e", "#862e9c",
                                      "#e67700", "#0b7285", "#c2255c", "#5c940d"};

static double *nans(int n)
{
    double *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    for (int i = 0; p && i < n; i++) p[i] = NAN;
    return p;
}

struct report *report_new(const char *path, int max_epochs, const int64_t *sizes, int n_sizes,
                          bool relu, bool classify, const char *title, const char *about)
{
    struct report *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    if (!(r->out = fopen(path, "w"))) {
        fprintf(stderr, "%s: cannot write %s: %s\n", prog, path, strerror(errno));
        free(r);
        return NULL;
    }
    r->path = strdup(path);
    r->cap = max_epochs;
    r->n_layers = n_sizes - 1;
    memcpy(r->sizes, sizes, (size_t)n_sizes * sizeof *sizes);
    r->relu = relu;
    r->classify = classify;
    r->classes = sizes[n_sizes - 1];
    for (int k = 0; k < r->n_layers; k++) r->n_weights += sizes[k] * sizes[k + 1];
    int nl = max_epochs * r->n_layers;
    r->title = strdup(title);
    r->about = strdup(about);
    r->train_loss = nans(max_epochs), r->train_acc = nans(max_epochs);
    r->test_loss = nans(max_epochs), r->test_acc = nans(max_epochs);
    r->grad = nans(nl), r->ratio = nans(nl), r->dead = nans(nl);
    r->w_first = malloc((size_t)r->n_weights * sizeof(float));
    r->w_last = malloc((size_t)r->n_weights * sizeof(float));
    if (!r->path || !r->title || !r->about || !r->train_loss || !r->train_acc || !r->test_loss ||
        !r->test_acc || !r->grad || !r->ratio || !r->dead || !r->w_first || !r->w_last) {
        report_free(r);
        return NULL;
    }
    return r;
}

void report_free(struct report *r)
{
    if (!r) return;
    if (r->out) fclose(r->out);
    free(r->path), free(r->title), free(r->about);
    free(r->train_loss), free(r->train_acc), free(r->test_loss), free(r->test_acc);
    free(r->grad), free(r->ratio), free(r->dead);
    free(r->w_first), free(r->w_last), free(r->confusion);
    free(r);
}

void report_epoch(struct report *r, int e, double train_loss, double train_acc, double test_loss,
                  double test_acc)
{
    if (e < 0 || e >= r->cap) return;
    r->train_loss[e] = train_loss, r->train_acc[e] = train_acc;
    r->test_loss[e] = test_loss, r->test_acc[e] = test_acc;
    if (e + 1 > r->n_epochs) r->n_epochs = e + 1;
}

void report_layer(struct report *r, int e, int k, double grad_norm, double ratio, double dead)
{
    if (e < 0 || e >= r->cap || k < 0 || k >= r->n_layers) return;
    r->grad[e * r->n_layers + k] = grad_norm;
    r->ratio[e * r->n_layers + k] = ratio;
    r->dead[e * r->n_layers + k] = dead;
}

int report_weights(struct report *r, const struct tg_nn_mlp *mlp)
{
    float *dst = r->have_first ? r->w_last : r->w_first;
    for (int k = 0, off = 0; k < r->n_layers; k++) {
        const struct tg_tensor *W = tg_nn_mlp_weight(mlp, k);
        int64_t n = tg_tensor_numel(W);
        if (!W || n != r->sizes[k] * r->sizes[k + 1]) return CLI_FAIL;
        memcpy(dst + off, tg_tensor_data(W), (size_t)n * sizeof(float));
        off += (int)n;
    }
    if (!r->have_first) memcpy(r->w_last, r->w_first, (size_t)r->n_weights * sizeof(float));
    r->have_first = true;
    return CLI_OK;
}

/* ---- drawing ---- */

enum { CW = 640, CH = 300, ML = 72, MR = 16, MT = 30, MB = 48 };

struct axis {
    double lo, hi;
    bool log;
};

static double axis_pos(const struct axis *a, double v, double p0, double p1)
{
    double t = a->log ? (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo))
                      : (v - a->lo) / (a->hi - a->lo);
    return p0 + t * (p1 - p0);
}

static double nice_step(double range)
{
    double raw = range / 5, p = pow(10, floor(log10(raw))), m = raw / p;
    return p * (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10);
}

/* Widens a to whole tick steps (linear) or decades (log). */
static void axis_fit(struct axis *a)
{
    if (a->log) {
        a->lo = pow(10, floor(log10(a->lo)));
        a->hi = pow(10, ceil(log10(a->hi)));
        if (a->hi <= a->lo) a->hi = a->lo * 10;
        return;
    }
    if (a->hi - a->lo < 1e-12 * fmax(1, fabs(a->hi))) a->lo -= 0.5, a->hi += 0.5;
    double s = nice_step(a->hi - a->lo);
    a->lo = floor(a->lo / s) * s;
    a->hi = ceil(a->hi / s) * s;
}

static void put_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else if (*s == '"')
            fputs("&quot;", f);
        else
            fputc(*s, f);
    }
}

static void svg_open(FILE *f, const char *chart, const char *title, int w, int h)
{
    fprintf(f,
            "<svg data-chart=\"%s\" viewBox=\"0 0 %d %d\" style=\"max-width:%dpx\" "
            "role=\"img\" aria-label=\"",
            chart, w, h, w > 720 ? 720 : w);
    put_text(f, title);
    fprintf(f, "\" xmlns=\"http://www.w3.org/2000/svg\">\n");
}

/* The frame, ticks and labels of a chart with x = epochs 1..n. */
static void axes(FILE *f, const struct axis *x, const struct axis *y, const char *xlabel,
                 const char *ylabel, bool integer_x)
{
    int x0 = ML, x1 = CW - MR, y0 = CH - MB, y1 = MT;
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" class=\"frame\"/>\n", x0, y1,
            x1 - x0, y0 - y1);
    if (y->log) {
        for (double v = y->lo; v <= y->hi * 1.0001; v *= 10) {
            double p = axis_pos(y, v, y0, y1);
            fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>", x0, x1,
                    p, p);
            fprintf(f, "<text x=\"%d\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%.0e</text>\n",
                    x0 - 4, p + 4, v);
        }
    } else {
        double s = nice_step(y->hi - y->lo);
        for (int i = 0; y->lo + i * s <= y->hi + s / 2; i++) {
            double v = y->lo + i * s, p = axis_pos(y, v, y0, y1);
            fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>", x0, x1,
                    p, p);
            fprintf(f, "<text x=\"%d\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%.4g</text>\n",
                    x0 - 4, p + 4, fabs(v) < s * 1e-9 ? 0.0 : v);
        }
    }
    double s = integer_x ? fmax(1, nice_step(x->hi - x->lo)) : nice_step(x->hi - x->lo);
    if (integer_x) s = fmax(1, round(s));
    double start = integer_x ? ceil(x->lo) : ceil(x->lo / s) * s;
    for (int i = 0; start + i * s <= x->hi + s * 1e-9; i++) {
        double v = start + i * s;
        if (fabs(v) < s * 1e-9) v = 0; /* not -5.55e-17 */
        double p = axis_pos(x, v, x0, x1);
        fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" class=\"tickmark\"/>", p, p,
                y0, y0 + 4);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%.4g</text>\n",
                p, y0 + 16, v);
    }
    fprintf(f, "<text class=\"axis-label\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">",
            (x0 + x1) / 2, CH - 8);
    put_text(f, xlabel);
    fprintf(f,
            "</text>\n<text class=\"axis-label\" transform=\"translate(16 %d) rotate(-90)\" "
            "text-anchor=\"middle\">",
            (y0 + y1) / 2);
    put_text(f, ylabel);
    fputs("</text>\n", f);
}

struct series {
    char name[64];
    const double *v; /* v[e * stride] for epoch e */
    int stride;
};

/* A line chart of per-epoch series. */
static void line_chart(FILE *f, const char *chart, const char *title, const char *ylabel,
                       const struct series *s, int ns, int n, bool log_y, bool unit)
{
    double lo = 0, hi = 1;
    bool any = false;
    for (int i = 0; i < ns; i++)
        for (int e = 0; e < n; e++) {
            double v = s[i].v[e * s[i].stride];
            if (!isfinite(v) || (log_y && v <= 0)) continue;
            if (!any || v < lo) lo = v;
            if (!any || v > hi) hi = v;
            any = true;
        }
    if (!any) lo = log_y ? 1 : 0, hi = log_y ? 10 : 1;
    if (unit) lo = 0, hi = 1;
    struct axis ya = {lo, hi, log_y}, xa = {n > 1 ? 1 : 0, n > 1 ? n : 2, false};
    if (!unit) axis_fit(&ya);
    svg_open(f, chart, title, CW, CH);
    axes(f, &xa, &ya, "epoch", ylabel, true);
    double lx = ML + 8;
    for (int i = 0; i < ns; i++) {
        const char *c = palette[i % 8];
        fprintf(f, "<g data-series=\"");
        put_text(f, s[i].name);
        fprintf(f,
                "\" class=\"series\" stroke=\"%s\" fill=\"%s\">\n<polyline fill=\"none\" "
                "points=\"",
                c, c);
        for (int e = 0; e < n; e++) {
            double v = s[i].v[e * s[i].stride];
            if (isfinite(v) && (!log_y || v > 0))
                fprintf(f, "%.1f,%.1f ", axis_pos(&xa, e + 1, ML, CW - MR),
                        axis_pos(&ya, v, CH - MB, MT));
        }
        fputs("\"/>\n", f);
        for (int e = 0; e < n; e++) {
            double v = s[i].v[e * s[i].stride];
            if (!isfinite(v) || (log_y && v <= 0)) continue;
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\"><title>",
                    axis_pos(&xa, e + 1, ML, CW - MR), axis_pos(&ya, v, CH - MB, MT));
            put_text(f, s[i].name);
            fprintf(f, ", epoch %d: %.6g</title></circle>\n", e + 1, v);
        }
        fprintf(f, "<text x=\"%.0f\" y=\"%d\" class=\"legend\" stroke=\"none\">", lx, MT - 10);
        put_text(f, s[i].name);
        lx += 7.0 * (double)strlen(s[i].name) + 24;
        fputs("</text>\n</g>\n", f);
    }
    fputs("</svg>\n", f);
}

/* Histograms of the weights of each layer (as fractions of the layer's weights)
 * over bins shared by both snapshots. */
static void histogram(FILE *f, const struct report *r, const float *w, const char *chart,
                      const char *title, double lo, double hi)
{
    enum { BINS = 40 };
    struct axis xa = {lo, hi, false}, ya = {0, 0, false};
    double frac[MLP_MAX_LAYERS][BINS];
    memset(frac, 0, sizeof frac);
    for (int k = 0, off = 0; k < r->n_layers; k++) {
        int64_t n = r->sizes[k] * r->sizes[k + 1];
        for (int64_t i = 0; i < n; i++) {
            int b = (int)floor((w[off + i] - lo) / (hi - lo) * BINS);
            frac[k][b < 0 ? 0 : b >= BINS ? BINS - 1 : b] += 1.0 / (double)n;
        }
        off += (int)n;
        for (int b = 0; b < BINS; b++) ya.hi = fmax(ya.hi, frac[k][b]);
    }
    axis_fit(&ya);
    svg_open(f, chart, title, CW, CH);
    axes(f, &xa, &ya, "weight value", "fraction of the layer's weights", false);
    for (int k = 0; k < r->n_layers; k++) {
        const char *c = palette[k % 8];
        fprintf(
            f,
            "<g data-layer=\"%d\" class=\"hist\" stroke=\"%s\"><polyline fill=\"none\" points=\"",
            k, c);
        for (int b = 0; b < BINS; b++) {
            double xl = axis_pos(&xa, lo + (hi - lo) * b / BINS, ML, CW - MR);
            double xr = axis_pos(&xa, lo + (hi - lo) * (b + 1) / BINS, ML, CW - MR);
            double y = axis_pos(&ya, frac[k][b], CH - MB, MT);
            fprintf(f, "%.1f,%.1f %.1f,%.1f ", xl, y, xr, y);
        }
        fprintf(f,
                "\"/><text x=\"%d\" y=\"%d\" class=\"legend\" stroke=\"none\" fill=\"%s\">layer %d "
                "(%lld&#x2192;%lld)</text></g>\n",
                ML + 8 + 150 * (k % 4), MT - 10, c, k, (long long)r->sizes[k],
                (long long)r->sizes[k + 1]);
    }
    fputs("</svg>\n", f);
}

static int confusion_count(struct report *r, struct tg_nn_mlp *mlp, const struct tg_dataset *ds)
{
    int64_t C = r->classes, n = tg_dataset_len(ds), d = tg_dataset_features(ds), chunk = 1024;
    r->confusion = calloc((size_t)(C * C), sizeof *r->confusion);
    struct tg_tape *T = tg_tape_new();
    if (!r->confusion || !T || tg_tape_no_grad_push(T)) {
        tg_tape_free(T);
        return CLI_FAIL;
    }
    for (int64_t pos = 0; pos < n; pos += chunk) {
        int64_t rows = n - pos < chunk ? n - pos : chunk;
        tg_tape_reset(T);
        struct tg_tensor *X = tg_tape_constant(T, TG_F32, 2, (int64_t[]){rows, d}, NULL);
        struct tg_tensor *y = X ? tg_tape_constant(T, TG_F32, 1, &rows, NULL) : NULL;
        struct tg_tensor *out =
            y && !tg_dataset_batch_into(ds, pos, X, y) ? tg_nn_mlp_forward(mlp, T, X) : NULL;
        if (!out) {
            tg_tape_free(T);
            return CLI_FAIL;
        }
        const float *o = tg_tensor_data(out), *t = tg_tensor_data(y);
        for (int64_t i = 0; i < rows; i++, o += C) {
            int64_t best = 0;
            for (int64_t c = 1; c < C; c++) best = o[c] > o[best] ? c : best;
            int64_t truth = (int64_t)t[i];
            if (truth >= 0 && truth < C) r->confusion[truth * C + best]++;
        }
    }
    tg_tape_free(T);
    return CLI_OK;
}

static void confusion_chart(FILE *f, const struct report *r, const char *set)
{
    int64_t C = r->classes;
    int cell = C <= 10 ? 44 : C <= 30 ? 18 : 8, side = (int)C * cell, w = side + 110, h = side + 56;
    char title[96];
    snprintf(title, sizeof title, "confusion matrix on the %s set", set);
    svg_open(f, "confusion", title, w, h);
    for (int64_t t = 0; t < C; t++) {
        int64_t row = 0;
        for (int64_t p = 0; p < C; p++) row += r->confusion[t * C + p];
        for (int64_t p = 0; p < C; p++) {
            int64_t v = r->confusion[t * C + p];
            double share = row ? (double)v / (double)row : 0;
            int x = 80 + (int)p * cell, y = 40 + (int)t * cell;
            fprintf(f,
                    "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" "
                    "fill-opacity=\"%.3f\" class=\"cell\"><title>true %lld, predicted %lld: "
                    "%lld (%.1f%% of class %lld)</title></rect>",
                    x, y, cell, cell, t == p ? "#2b8a3e" : "#c92a2a", 0.08 + 0.92 * share,
                    (long long)t, (long long)p, (long long)v, 100 * share, (long long)t);
            if (cell >= 18)
                fprintf(f,
                        "<text x=\"%d\" y=\"%d\" class=\"count\" text-anchor=\"middle\" "
                        "fill=\"%s\">%lld</text>",
                        x + cell / 2, y + cell / 2 + 4, share > 0.55 ? "#ffffff" : "#1f2328",
                        (long long)v);
            fputc('\n', f);
        }
        if (cell >= 14)
            fprintf(f, "<text x=\"74\" y=\"%d\" class=\"tick\" text-anchor=\"end\">%lld</text>\n",
                    40 + (int)t * cell + cell / 2 + 4, (long long)t);
    }
    for (int64_t p = 0; cell >= 14 && p < C; p++)
        fprintf(f, "<text x=\"%d\" y=\"34\" class=\"tick\" text-anchor=\"middle\">%lld</text>\n",
                80 + (int)p * cell + cell / 2, (long long)p);
    fprintf(f,
            "<text class=\"axis-label\" x=\"%d\" y=\"14\" text-anchor=\"middle\">predicted "
            "class</text>\n<text class=\"axis-label\" transform=\"translate(16 %d) rotate(-90)\" "
            "text-anchor=\"middle\">true class</text>\n</svg>\n",
            80 + side / 2, 40 + side / 2);
}

static const char css[] =
    "body{margin:0 auto;max-width:980px;padding:0 16px 24px;color:#1f2328;font:15px/1.45 "
    "system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif}h1{font-size:1.4em;margin:14px 0 "
    "4px}h2{font-size:1.15em;margin:22px 0 4px}code{font-family:ui-monospace,'DejaVu Sans "
    "Mono',Menlo,monospace;font-size:.9em;overflow-wrap:anywhere}.about{color:#59636e}figure{"
    "margin:6px 0 "
    "12px;break-inside:avoid}figcaption{color:#59636e;font-size:.9em}svg{width:100%;height:auto;"
    "max-width:720px;display:block;font-family:system-ui,Arial,sans-serif}svg .frame{fill:none;"
    "stroke:#8c959f}svg .grid{stroke:#eaeef2}svg .tickmark{stroke:#8c959f}svg .tick{font-size:11px;"
    "fill:#59636e}svg .axis-label{font-size:12px;fill:#1f2328}svg .legend{font-size:12px}svg "
    ".series polyline{stroke-width:2}svg .hist polyline{stroke-width:1.6}svg .count{font-size:"
    "12px}svg .cell{stroke:#ffffff}table{border-collapse:collapse}td,th{border:1px solid #d0d7de;"
    "padding:3px 8px;text-align:right}th{background:#f6f8fa}.note{color:#59636e}"
    "@media (max-width:760px){body{padding:0 8px 16px}h1{font-size:1.2em}figure{overflow-x:auto}"
    "svg[data-chart]{min-width:540px}svg[data-chart=confusion]{min-width:0}}"
    "@media print{body{max-width:none;font-size:11pt}svg{max-width:16cm}h2{break-after:avoid}}";

static void put_table(FILE *f, const struct report *r)
{
    fputs("<table><thead><tr><th>epoch</th><th>train loss</th>", f);
    if (r->classify) fputs("<th>train accuracy</th>", f);
    fputs("<th>test loss</th>", f);
    if (r->classify) fputs("<th>test accuracy</th>", f);
    fputs("</tr></thead><tbody>\n", f);
    for (int e = 0; e < r->n_epochs; e++) {
        fprintf(f, "<tr><td>%d</td><td>%.6f</td>", e + 1, r->train_loss[e]);
        if (r->classify) fprintf(f, "<td>%.2f%%</td>", 100 * r->train_acc[e]);
        if (isfinite(r->test_loss[e]))
            fprintf(f, "<td>%.6f</td>", r->test_loss[e]);
        else
            fputs("<td>&#x2013;</td>", f);
        if (r->classify && isfinite(r->test_acc[e]))
            fprintf(f, "<td>%.2f%%</td>", 100 * r->test_acc[e]);
        else if (r->classify)
            fputs("<td>&#x2013;</td>", f);
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table>\n", f);
}

static void figure(FILE *f, const char *h2)
{
    fprintf(f, "<h2>%s</h2>\n<figure>\n", h2);
}

static void end_figure(FILE *f, const char *caption)
{
    fprintf(f, "<figcaption>%s</figcaption>\n</figure>\n", caption);
}

static void write_page(FILE *f, const struct report *r, const char *set)
{
    int n = r->n_epochs, L = r->n_layers;
    bool test = n > 0 && isfinite(r->test_loss[0]);
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta "
          "name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>tapegrad "
          "training report</title>\n<style>",
          f);
    fputs(css, f);
    fputs("</style>\n</head>\n<body>\n<h1>Training report</h1>\n<p><code>", f);
    put_text(f, r->title);
    fputs("</code></p>\n<p class=\"about\">", f);
    put_text(f, r->about);
    fprintf(f, "; %d epoch%s.</p>\n", n, n == 1 ? "" : "s");
    struct series s[2 * MLP_MAX_LAYERS];
    int ns = 0;
    s[ns++] = (struct series){"train (mean over the epoch's batches)", r->train_loss, 1};
    if (test) s[ns++] = (struct series){"test (after the epoch)", r->test_loss, 1};
    figure(f, "Loss");
    line_chart(f, "loss", "loss per epoch", "mean loss", s, ns, n, false, false);
    end_figure(f, test ? "The training loss is the mean over the epoch's batches while the weights "
                         "moved; the test loss is measured once after the epoch."
                       : "The mean loss over the epoch's batches. DATA has no test set (a folder "
                         "with t10k-* files gives one).");
    if (r->classify) {
        ns = 0;
        s[ns++] = (struct series){"train (mean over the epoch's batches)", r->train_acc, 1};
        if (test) s[ns++] = (struct series){"test (after the epoch)", r->test_acc, 1};
        figure(f, "Accuracy");
        line_chart(f, "accuracy", "accuracy per epoch", "accuracy (fraction right)", s, ns, n,
                   false, true);
        end_figure(f, "The fraction of samples whose largest output is the right class.");
    }
    ns = 0;
    for (int k = 0; k < L; k++) {
        s[ns] = (struct series){"", r->grad + k, L};
        snprintf(s[ns++].name, sizeof s[0].name, "layer %d", k);
    }
    figure(f, "Gradient norms per layer");
    line_chart(f, "grad-norm", "gradient norm per layer", "gradient norm (log scale)", s, ns, n,
               true, false);
    end_figure(f, "The Euclidean norm of each layer's gradient (weight and bias) at the epoch's "
                  "last update. Norms that shrink layer by layer towards the input mean vanishing "
                  "gradients.");
    for (int k = 0; k < L; k++) s[k].v = r->ratio + k;
    figure(f, "Update/weight ratios per layer");
    line_chart(f, "update-ratio", "update/weight ratio per layer",
               "||W_end - W_start|| / ||W_start|| (log)", s, L, n, true, false);
    end_figure(f, "How far each layer's weights moved during the epoch, relative to their size. "
                  "Around 1e-3 per step is a common rule of thumb; much larger is a too large "
                  "learning rate, much smaller a layer that does not learn.");
    if (r->relu && L > 1) {
        for (int k = 0; k < L - 1; k++) s[k].v = r->dead + k;
        figure(f, "Dead ReLU units");
        line_chart(f, "dead-relu", "dead ReLU fraction per hidden layer",
                   "fraction of units never active", s, L - 1, n, false, true);
        end_figure(f, "Hidden units that output 0 on every one of the first 1000 training samples "
                      "after the epoch: they pass no gradient and no longer learn.");
    } else {
        fputs("<h2>Dead ReLU units</h2>\n<p class=\"note\">Not applicable: the hidden layers do "
              "not use ReLU (or there are none).</p>\n",
              f);
    }
    double lo = 0, hi = 0;
    bool any = false;
    for (int64_t i = 0; i < r->n_weights; i++)
        for (int m = 0; m < 2; m++) {
            double v = (m ? r->w_last : r->w_first)[i];
            if (!isfinite(v)) continue;
            if (!any || v < lo) lo = v;
            if (!any || v > hi) hi = v;
            any = true;
        }
    if (hi <= lo) lo -= 1, hi += 1;
    figure(f, "Weights after the first epoch");
    histogram(f, r, r->w_first, "hist-first", "weight histogram after epoch 1", lo, hi);
    end_figure(f, "The distribution of each layer's weights after the first epoch (the same bins "
                  "as the next chart).");
    figure(f, "Weights after the last epoch");
    histogram(f, r, r->w_last, "hist-last", "weight histogram after the last epoch", lo, hi);
    end_figure(f, "The same after the last epoch: how training reshaped the weights.");
    if (r->confusion) {
        char h2[96];
        snprintf(h2, sizeof h2, "Confusion matrix (%s set)", set);
        figure(f, h2);
        confusion_chart(f, r, set);
        end_figure(f, "Row: the true class; column: the predicted one (the largest output). "
                      "Green cells on the diagonal are right; the shade is the share of the "
                      "row.");
    }
    fputs("<h2>Per epoch</h2>\n", f);
    put_table(f, r);
    fputs("<p class=\"note\">Written by <code>tapegrad train --report</code>; see docs/cli.md "
          "(train).</p>\n</body>\n</html>\n",
          f);
}

int report_finish(struct report *r, struct tg_nn_mlp *mlp, const struct tg_dataset *ds,
                  const char *set)
{
    if (r->classify && confusion_count(r, mlp, ds)) {
        fprintf(stderr, "%s: --report: the confusion matrix failed: %s\n", prog, mlp_lib_error());
        return CLI_FAIL;
    }
    write_page(r->out, r, set);
    int bad = fclose(r->out);
    r->out = NULL;
    if (bad) {
        fprintf(stderr, "%s: writing %s failed\n", prog, r->path);
        return CLI_FAIL;
    }
    printf("report written to %s\n", r->path);
    return CLI_OK;
}
