/*
 * cli/htmlpage.c - the interactive page of a graph, laid out by Graphviz.
 *
 * The DOT goes to a temporary file and `dot -Tsvg FILE` runs through popen; its
 * output is embedded by tg_graph_html, whose script finds the nodes by the
 * titles t0, t1, ... that tg_graph_dot gives them. Graphviz is a tool found at
 * run time, not a library dependency: without it the page uses the library's
 * own layered layout and a note says so.
 */
#include "htmlpage.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads all of f into a malloc'd NUL-ended buffer, or NULL. */
static char *slurp(FILE *f)
{
    size_t n = 0, room = 1 << 16;
    char *buf = malloc(room);
    while (buf) {
        size_t got = fread(buf + n, 1, room - n - 1, f);
        n += got;
        if (got == 0) break;
        if (room - n < 4096) {
            char *b = realloc(buf, room * 2);
            if (!b) {
                free(buf);
                return NULL;
            }
            buf = b;
            room *= 2;
        }
    }
    if (buf) buf[n] = 0;
    return buf;
}

char *htmlpage_dot_svg(const char *dot_text, const char **why)
{
    char tmp[] = "/tmp/tapegrad-graph-XXXXXX";
    int fd = mkstemp(tmp);
    *why = "cannot create a temporary file";
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "w");
    bool ok = f && fputs(dot_text, f) >= 0;
    if (f ? fclose(f) : close(fd)) ok = false;
    char *svg = NULL;
    if (ok) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "dot -Tsvg '%s' 2>/dev/null", tmp);
        FILE *p = popen(cmd, "r");
        svg = p ? slurp(p) : NULL;
        int st = p ? pclose(p) : -1;
        *why = st == 127 << 8 ? "Graphviz's dot is not on PATH" : "dot -Tsvg failed";
        if (st != 0 || !svg || !strstr(svg, "<svg")) {
            free(svg);
            svg = NULL;
        }
    }
    unlink(tmp);
    return svg;
}

/* The graph's DOT as a string, through a memory stream. */
static char *dot_text(struct tg_tensor *root, const struct tg_graph_names *names)
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (!m) return NULL;
    struct tg_graph_dot_options o = {names, 0, NULL};
    enum tg_status st = tg_graph_dot(root, m, &o);
    if (fclose(m) || st) {
        free(text);
        return NULL;
    }
    return text;
}

/* docs/backprop.md of the source tree when it is there (a build run from its
 * tree), else the relative path a page beside a checkout finds. */
static void docs_url(char *buf, size_t size)
{
#ifdef TG_SOURCE_DIR
    char path[4096];
    snprintf(path, sizeof path, "%s/docs/backprop.md", TG_SOURCE_DIR);
    if (access(path, R_OK) == 0) {
        snprintf(buf, size, "file://%s", path);
        return;
    }
#endif
    snprintf(buf, size, "docs/backprop.md");
}

int htmlpage_write(const char *prog, const char *path, struct tg_tensor *root,
                   const struct tg_trace *trace, const struct tg_graph_names *names,
                   const char *title)
{
    char *dot = dot_text(root, names), *svg = NULL;
    if (!dot) {
        fprintf(stderr, "%s: --html: %s\n", prog, tg_last_error());
        return 1;
    }
    const char *why = NULL;
    svg = htmlpage_dot_svg(dot, &why);
    free(dot);
    if (!svg) fprintf(stderr, "%s: note: %s; the page uses tapegrad's own layout\n", prog, why);
    char docs[4200];
    docs_url(docs, sizeof docs);
    struct tg_graph_html_options o = {.names = names, .title = title, .svg = svg, .docs_url = docs};
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "%s: cannot write '%s'\n", prog, path);
        free(svg);
        return 1;
    }
    enum tg_status st = tg_graph_html(root, trace, f, &o);
    free(svg);
    if (fclose(f) || st) {
        fprintf(stderr, "%s: writing the page to '%s' failed: %s\n", prog, path,
                st ? tg_last_error() : "I/O error");
        return 1;
    }
    return 0;
}
