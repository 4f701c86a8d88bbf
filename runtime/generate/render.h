/*
 * render.h -- the template engine: C with Lua woven through it, run in a
 * sandboxed Lua state.  Knows nothing about convolutions or compilers: the
 * caller puts its values into the template's environment and reads results
 * back out of it.
 *
 * Syntax (see templates/README.md):
 *   $ lua code      a line whose first non-blank character is '$' is Lua
 *   ${expr}         inside any other line: the value of a Lua expression
 *   $$              a literal '$'
 *   everything else is C text, emitted as it stands
 */
#ifndef SEPCONV_RENDER_H
#define SEPCONV_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sepconv.h"

struct lua_State;

/* The embedded templates: generated at build time from templates/. */
typedef struct render_embedded {
    const char *name;
    const char *text;
} render_embedded;
extern const render_embedded render_embedded_templates[];
extern const size_t render_embedded_count;

/* What bounds one render.  The instruction budget also pays for the work
 * of the library functions that loop in C (pattern matching, string.rep,
 * table.move/insert/remove/concat/unpack/sort), at one instruction per
 * step; the wall-clock limit stops what is left (a long string compared or
 * copied once per instruction), checked between instructions and at
 * allocations. */
typedef struct render_limits {
    size_t memory_bytes;    /* the Lua state's heap */
    int64_t instructions;   /* Lua VM instructions */
    size_t output_bytes;    /* the generated source (the size budget) */
    int64_t milliseconds;   /* wall-clock time; 0: the default */
} render_limits;

/* Defaults: 256 MiB of Lua heap, 500 million instructions, 4 MiB output,
 * 60 seconds. */
render_limits render_default_limits(void);

/* Bounds of the sandbox that are not budgets: a pattern may have at most
 * RENDER_PATTERN_QUANTIFIERS_MAX quantifiers and take at most
 * RENDER_PATTERN_STEPS_MAX steps (estimated before it runs: the worst case
 * of Lua's backtracking matcher on that subject); include() and import()
 * nest at most RENDER_INCLUDE_DEPTH_MAX deep. */
#define RENDER_PATTERN_QUANTIFIERS_MAX 32
#define RENDER_PATTERN_STEPS_MAX 100000000.0
#define RENDER_INCLUDE_DEPTH_MAX 16
#define RENDER_DEFAULT_MILLISECONDS 60000

/* One render: a top template, where to find templates, and two callbacks
 * that fill the environment (table at `env`) and read it back. */
typedef struct render_request {
    const char *template_name;  /* e.g. "depthwise.c.in" */
    const char *template_dir;   /* NULL: the embedded templates */
    const char *template_dir_origin; /* where template_dir came from, for
                                        errors ("the --templates option") */
    const char *template_text;  /* if set: the top template's text itself */
    render_limits limits;
    bool *over_size_budget;     /* if set: whether the size budget (not
                                   another limit) stopped the render */
    sepconv_status (*fill)(struct lua_State *L, int env, void *context,
                           sepconv_error *error);
    sepconv_status (*collect)(struct lua_State *L, int env, void *context,
                              sepconv_error *error);
    void *context;
} render_request;

/* Renders the template; on success *text is a malloc'd NUL-terminated
 * string of *length bytes that the caller frees. */
sepconv_status render_template(const render_request *request, char **text,
                               size_t *length, sepconv_error *error);

/* Translates template text to the Lua chunk that emits it: one Lua line per
 * template line, so Lua's line numbers are the template's.  Exposed for the
 * tests; the result is malloc'd. */
sepconv_status render_translate(const char *name, const char *text,
                                char **lua, size_t *length, sepconv_error *error);

#endif /* SEPCONV_RENDER_H */
