/*
 * engine/rule.c - the backward rule of a recorded node, in the names of its
 * own tensors.
 *
 * A descriptor's `vjp` text (or, when its rule depends on the node's
 * parameters, the text its `rule` callback writes) names the operands with
 * fixed letters listed in `operands` ("a b -> y"). The trace, the DOT labels
 * and tg_graph_rule print it with those letters replaced by the names of the
 * node's own inputs and of the node, so that a rule never shows a letter that
 * the user's expression also uses for something else ("db += dy * a" for
 * v1 = w * b read as "db += dv1 * w; dw += dv1 * b"... as it should).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include "graph-impl.h"

const char *tg__rule_operands(const struct tg_op_desc *d)
{
    if (d->operands) return d->operands;
    return d->arity == 1 ? "x -> y" : d->arity == 2 ? "a b -> y" : "-> y";
}

void tg__rule_template(const struct tg_tensor *n, char *buf, size_t size)
{
    if (!size) return;
    if (n->desc->rule)
        n->desc->rule(n, buf, size);
    else
        snprintf(buf, size, "%s", n->desc->vjp);
    buf[size - 1] = '\0';
}

/* Output with snprintf's contract: counts every byte, writes what fits. */
struct sink {
    char *buf;
    size_t size, len;
};

static void put(struct sink *s, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++, s->len++)
        if (s->len + 1 < s->size) s->buf[s->len] = p[i];
}

/* Word k of section sec of spec ("a b -> y ; p"): 0 the inputs, 1 the output,
 * 2 the parameters. Its start and length in *w, *len; false when there is none. */
static bool spec_word(const char *spec, int sec, int k, const char **w, size_t *len)
{
    int at = 0, i = 0;
    for (const char *p = spec; *p;) {
        while (*p == ' ') p++;
        if (!*p) break;
        size_t n = strcspn(p, " ");
        if (n == 2 && !strncmp(p, "->", 2)) {
            at = 1;
            i = 0;
        } else if (n == 1 && *p == ';') {
            at = 2;
            i = 0;
        } else if (at == sec && i++ == k) {
            *w = p;
            *len = n;
            return true;
        }
        p += n;
    }
    return false;
}

struct names {
    const char *spec;
    int n_in;
    const char *const *in;
    const char *out;
    int n_params;
    const double *params;
};

/* The replacement of template word (w, n), or NULL when it is not an operand:
 * *grad is set when the word is d<operand>; a parameter's value goes to num. */
static const char *rename_word(const struct names *nm, const char *w, size_t n, bool *grad,
                               char num[32])
{
    const char *o;
    size_t olen;
    for (int k = 0; k < nm->n_params && spec_word(nm->spec, 2, k, &o, &olen); k++)
        if (olen == n && !strncmp(o, w, n)) {
            snprintf(num, 32, "%.6g", nm->params[k]);
            *grad = false;
            return num;
        }
    for (int g = 0; g < 2; g++) {
        const char *word = w + g;
        size_t len = n - (size_t)g;
        if (g && (n < 2 || w[0] != 'd')) break;
        for (int k = 0; k < nm->n_in && spec_word(nm->spec, 0, k, &o, &olen); k++)
            if (olen == len && !strncmp(o, word, len) && nm->in && nm->in[k]) {
                *grad = g;
                return nm->in[k];
            }
        if (nm->out && spec_word(nm->spec, 1, 0, &o, &olen) && olen == len &&
            !strncmp(o, word, len)) {
            *grad = g;
            return nm->out;
        }
    }
    return NULL;
}

int tg__rule_render(const char *tmpl, const char *spec, int n_names, const char *const *in_names,
                    const char *out_name, int n_params, const double *params, char *buf,
                    size_t size)
{
    struct sink s = {buf, size, 0};
    const struct names nm = {spec, n_names, in_names, out_name, params ? n_params : 0, params};
    const char *p = tmpl;
    while (*p) {
        bool start = isalpha((unsigned char)*p) &&
                     (p == tmpl || !(isalnum((unsigned char)p[-1]) || p[-1] == '_'));
        if (!start) {
            put(&s, p++, 1);
            continue;
        }
        size_t n = 0;
        while (isalnum((unsigned char)p[n])) n++;
        bool grad = false;
        char num[32];
        const char *r = rename_word(&nm, p, n, &grad, num);
        if (r) {
            put(&s, "d", grad);
            put(&s, r, strlen(r));
        } else {
            put(&s, p, n);
        }
        p += n;
    }
    if (size) buf[s.len < size ? s.len : size - 1] = '\0';
    return (int)s.len;
}

int tg_graph_rule(const struct tg_tensor *node, const char *const *in_names, const char *out_name,
                  char *buf, size_t size)
{
    if (!node) return (void)tg__null_input("tg_graph_rule", "node"), -1;
    if (!buf && size) return (void)tg__fail(TG_ERR_NULL, "tg_graph_rule: buf is NULL"), -1;
    if (tg__check_live("tg_graph_rule", "node", node)) return -1;
    if (!node->desc) {
        tg__fail(TG_ERR_STATE, "tg_graph_rule: node is a leaf or a constant, not an op result");
        return -1;
    }
    char tmpl[TG_RULE_MAX];
    tg__rule_template(node, tmpl, sizeof tmpl);
    double params[TG_MAX_OP_PARAMS];
    int n_params = node->desc->params ? node->desc->params(node, params) : 0;
    return tg__rule_render(tmpl, tg__rule_operands(node->desc), (int)node->n_in, in_names, out_name,
                           in_names ? n_params : 0, params, buf, size);
}
