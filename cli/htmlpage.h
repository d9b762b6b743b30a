/*
 * cli/htmlpage.h - writing tg_graph_html's page with a Graphviz layout: the
 * graph's DOT (tg_graph_dot) through `dot -Tsvg` when dot is on PATH, else the
 * library's own layered layout. Shared by `tapegrad explain --html` and the
 * examples chain_rule and layer_trace (compiled into each).
 */
#ifndef TG_CLI_HTMLPAGE_H
#define TG_CLI_HTMLPAGE_H

#include <tapegrad/tapegrad.h>

/* Writes the page of root and trace to path. prog prefixes the messages on
 * stderr (a note when dot is missing or fails, the error when writing fails).
 * Returns 0, or 1 after printing why. */
int htmlpage_write(const char *prog, const char *path, struct tg_tensor *root,
                   const struct tg_trace *trace, const struct tg_graph_names *names,
                   const char *title);

/* The SVG `dot -Tsvg` makes of the DOT text dot_text (malloc'd, NUL-ended), or
 * NULL when dot is not on PATH or fails (*why then says which). */
char *htmlpage_dot_svg(const char *dot_text, const char **why);

#endif
