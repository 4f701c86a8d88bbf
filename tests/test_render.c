/*
 * test_render.c -- the template engine: syntax, error lines, the sandbox,
 * the budgets; and the generator's determinism and size budget.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "render.h"
#include "tests.h"

static char template_dir[64];

/* Writes `text` as template `name` in a fresh directory. */
static void write_template(const char *name, const char *text)
{
    if (!template_dir[0]) {
        snprintf(template_dir, sizeof template_dir, "/tmp/sepconv-templates-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(template_dir));
    }
    char path[256];
    snprintf(path, sizeof path, "%s/%s", template_dir, name);
    FILE *file = fopen(path, "w");
    ck_assert_ptr_nonnull(file);
    fputs(text, file);
    fclose(file);
}

/* Renders template text with `limits`; returns the status, fills out/error. */
static sepconv_status render_text(const char *text, render_limits limits, char **out,
                                  sepconv_error *error)
{
    write_template("t.c.in", text);
    render_request request = {.template_name = "t.c.in", .template_dir = template_dir,
                              .limits = limits};
    size_t length = 0;
    *out = NULL;
    return render_template(&request, out, &length, error);
}

/* Renders text that must succeed and compares the output. */
static void assert_renders(const char *text, const char *expected)
{
    char *out = NULL;
    sepconv_error error = {0};
    ck_assert_msg(render_text(text, render_default_limits(), &out, &error) == SEPCONV_OK,
                  "%s", error.message);
    ck_assert_str_eq(out, expected);
    free(out);
}

/* Renders text that must fail with `status` and a message holding `fragment`. */
static void assert_fails(const char *text, sepconv_status status, const char *fragment)
{
    char *out = NULL;
    sepconv_error error = {0};
    render_limits limits = render_default_limits();
    limits.instructions = 20000000;
    limits.memory_bytes = (size_t)32 << 20;
    ck_assert_int_eq(render_text(text, limits, &out, &error), status);
    ck_assert_ptr_null(out);
    ck_assert_msg(strstr(error.message, fragment) != NULL, "'%s' lacks '%s'",
                  error.message, fragment);
}

START_TEST(interpolation_and_control_flow)
{
    assert_renders("int x = ${1 + 2};\n", "int x = 3;\n");
    assert_renders("a${'b'}c${4 // 2}d\n", "abc2d\n");
    assert_renders("${6 / 3}\n", "2\n"); /* a whole float prints as an integer */
    assert_renders("$for i = 1, 3 do\nx${i};\n$end\n", "x1;\nx2;\nx3;\n");
    assert_renders("  $if false then\nno\n  $else\nyes\n  $end\n", "yes\n");
    assert_renders("$local t = {a = {1, 2}}\n${t.a[2]} ${#t.a}\n", "2 2\n");
    assert_renders("cost: $$5 and $${x}\n", "cost: $5 and ${x}\n");
    assert_renders("${(\"}\")}\n", "}\n"); /* a brace inside a Lua string */
    assert_renders("no newline at the end", "no newline at the end");
    assert_renders("$local function f(n)\nf(${n})\n$end\n$f(1) f(2)\n", "f(1)\nf(2)\n");
    assert_renders("\"quoted\" \\ back\tslash\n", "\"quoted\" \\ back\tslash\n");
}
END_TEST

START_TEST(include_and_import)
{
    write_template("part.c.in", "[${value}]\n");
    write_template("helpers.lua", "return {twice = function(x) return 2 * x end}\n");
    assert_renders("$include(\"part.c.in\", {value = 7})\n"
                   "${import(\"helpers.lua\").twice(21)}\n",
                   "[7]\n42\n");
    assert_fails("$include(\"../etc/passwd\")\n", SEPCONV_TEMPLATE,
                 "is not a template name");
    assert_fails("$include(\"missing.c.in\")\n", SEPCONV_TEMPLATE,
                 "no template named 'missing.c.in' in /tmp/sepconv-templates-");
}
END_TEST

START_TEST(errors_carry_the_template_line)
{
    char expected[256];
    assert_fails("line 1\nline 2\n${nothing.here}\n", SEPCONV_TEMPLATE, "t.c.in:3:");
    assert_fails("line 1\nline 2\n${nothing.here}\n", SEPCONV_TEMPLATE,
                 "attempt to index a nil value (global 'nothing')");
    snprintf(expected, sizeof expected, "%s/t.c.in:2: '${' is not closed", template_dir);
    assert_fails("ok\nbad ${1 + \n", SEPCONV_TEMPLATE, expected);
    assert_fails("$for i = 1, 2 do\n", SEPCONV_TEMPLATE, "'end' expected");
    assert_fails("a\nb\n$error('custom failure')\n", SEPCONV_TEMPLATE,
                 "t.c.in:3: custom failure");
    assert_fails("x\n${1.5}\n", SEPCONV_TEMPLATE, "t.c.in:2: cannot interpolate the non-integer");
    assert_fails("${nil}\n", SEPCONV_TEMPLATE, "cannot interpolate a nil value");
    assert_fails("${{}}\n", SEPCONV_TEMPLATE, "cannot interpolate a table value");
    assert_fails("${}\n", SEPCONV_TEMPLATE, "holds no expression");
    /* in an included template, the included file's own line */
    write_template("broken.c.in", "fine\nfine\n${1 + nil}\n");
    assert_fails("$include(\"broken.c.in\")\n", SEPCONV_TEMPLATE, "broken.c.in:3:");
}
END_TEST

START_TEST(sandbox_refuses_the_outside_world)
{
    const char *const forbidden[] = {"io", "os", "require", "load", "dofile",
                                     "loadfile", "debug", "package", "collectgarbage",
                                     "pcall", "xpcall", "coroutine", "print", "_G"};
    for (size_t i = 0; i < sizeof forbidden / sizeof forbidden[0]; i++) {
        char text[128], fragment[128];
        snprintf(text, sizeof text, "$assert(%s == nil, 'reachable: %s')\nok\n",
                 forbidden[i], forbidden[i]);
        assert_renders(text, "ok\n");
        snprintf(text, sizeof text, "${%s.x}\n", forbidden[i]);
        snprintf(fragment, sizeof fragment, "(global '%s')", forbidden[i]);
        assert_fails(text, SEPCONV_TEMPLATE, fragment);
    }
    /* string.dump is gone even through the strings' shared metatable */
    assert_renders("${tostring(string.dump)} ${tostring(('').dump)}\n", "nil nil\n");
    assert_renders("${tostring(getmetatable('').__index.dump)}\n", "nil\n");
    /* math.random would make generation non-deterministic */
    assert_renders("${tostring(math.random)}\n", "nil\n");
    /* what templates do need is there */
    assert_renders("${string.format('%02d', 7)} ${table.concat({1, 2}, ',')} "
                   "${math.max(3, 9)} ${utf8.char(65)}\n",
                   "07 1,2 9 A\n");
}
END_TEST

START_TEST(instruction_budget_stops_endless_loops)
{
    assert_fails("a\n$while true do end\n", SEPCONV_LIMIT, "t.c.in:2:");
    assert_fails("a\n$while true do end\n", SEPCONV_LIMIT, "budget of 20000000 instructions");
    /* a loop that emits forever stops at the output or instruction budget */
    char *out = NULL;
    sepconv_error error;
    render_limits limits = render_default_limits();
    limits.instructions = 1000000000;
    ck_assert_int_eq(render_text("$while true do\nspin\n$end\n", limits, &out, &error),
                     SEPCONV_LIMIT);
    ck_assert_ptr_nonnull(strstr(error.message, "size budget of 4194304 bytes"));
}
END_TEST

START_TEST(memory_budget_stops_hogs)
{
    assert_fails("$local s = string.rep('x', 1 << 30)\n", SEPCONV_LIMIT,
                 "more than its 33554432 bytes of Lua memory");
    assert_fails("$local t = {}\n$for i = 1, 1e9 do t[i] = i end\n", SEPCONV_LIMIT,
                 "Lua memory");
}
END_TEST

START_TEST(output_budget)
{
    char *out = NULL;
    sepconv_error error;
    render_limits limits = render_default_limits();
    limits.output_bytes = 100;
    ck_assert_int_eq(render_text("$for i = 1, 50 do\n0123456789\n$end\n", limits, &out,
                                 &error), SEPCONV_LIMIT);
    ck_assert_ptr_nonnull(strstr(error.message, "t.c.in:2: the generated source would "
                                                "exceed the size budget of 100 bytes"));
}
END_TEST

START_TEST(translation_is_line_for_line)
{
    const char *text = "a\n$local x = 1\nb ${x}\n\n$-- comment\nc\n";
    char *lua = NULL;
    size_t length = 0;
    ck_assert_int_eq(render_translate("t", text, &lua, &length, NULL), SEPCONV_OK);
    int lines = 0;
    for (size_t i = 0; i < length; i++)
        lines += lua[i] == '\n';
    ck_assert_int_eq(lines, 6);
    ck_assert_ptr_nonnull(strstr(lua, "_emit(\"b \", (x), \"\\n\")"));
    free(lua);
}
END_TEST

/* Generates a layer with the default schedule and options. */
static sepconv_status generate(const char *spec, const char *schedule_text,
                               const sepconv_generate_options *options,
                               sepconv_source *source, sepconv_error *error)
{
    sepconv_layer layer = parse_layer(spec);
    sepconv_schedule schedule;
    ck_assert_int_eq(sepconv_schedule_parse(schedule_text, &layer,
                                            SEPCONV_TARGET_PORTABLE, &schedule, error),
                     SEPCONV_OK);
    return sepconv_generate(&layer, &schedule, options, source, error);
}

START_TEST(generation_is_deterministic)
{
    sepconv_source a, b;
    sepconv_error error;
    const char *spec = "op=sep df=9 m=5 n=7 dk=3 stride=2 bias=1 act=relu6";
    ck_assert_int_eq(generate(spec, "", NULL, &a, &error), SEPCONV_OK);
    ck_assert_int_eq(generate(spec, "", NULL, &b, &error), SEPCONV_OK);
    ck_assert_uint_eq(a.code_length, b.code_length);
    ck_assert_int_eq(memcmp(a.code, b.code, a.code_length), 0);
    ck_assert_int_eq(memcmp(a.header, b.header, a.header_length), 0);
    ck_assert_str_eq(a.symbol, b.symbol);
    /* the header comment names the generator, template, spec and schedule */
    ck_assert_ptr_nonnull(strstr(a.code, "Generated by sepconv " SEPCONV_VERSION
                                         " from templates/separable_fused.c.in"));
    ck_assert_ptr_nonnull(strstr(a.code, "layer:     op=sep df=9 m=5 n=7 dk=3"));
    ck_assert_ptr_nonnull(strstr(a.code, "schedule:  channel_block=16,tile_w=2,"));
    ck_assert_ptr_nonnull(strstr(a.code, "reproduce: sepconv gen 'op=sep df=9"));
    /* another schedule gives another symbol */
    sepconv_source c;
    ck_assert_int_eq(generate(spec, "fuse=0", NULL, &c, &error), SEPCONV_OK);
    ck_assert_str_ne(a.symbol, c.symbol);
    ck_assert_ptr_nonnull(strstr(c.code, "templates/separable.c.in"));
    sepconv_source_free(&a);
    sepconv_source_free(&b);
    sepconv_source_free(&c);
}
END_TEST

START_TEST(size_budget_refuses_before_rendering)
{
    sepconv_source source;
    sepconv_error error;
    /* a fully unrolled 112x112 layer is far past 4 MiB: refused at once */
    ck_assert_int_eq(generate("op=sep df=112 m=32 n=64 dk=3", "unroll=full", NULL,
                              &source, &error), SEPCONV_LIMIT);
    ck_assert_ptr_nonnull(strstr(error.message, "over the source-size budget of "
                                                "4194304 bytes (4.0 MiB)"));
    ck_assert_ptr_nonnull(strstr(error.message, "would be at least"));
    ck_assert_ptr_null(source.code);
    /* the same layer looped is small */
    ck_assert_int_eq(generate("op=sep df=112 m=32 n=64 dk=3", "", NULL, &source, &error),
                     SEPCONV_OK);
    ck_assert_uint_lt(source.code_length, 200000);
    sepconv_source_free(&source);
    /* a budget set by the caller applies, whether met by the estimate or
     * while rendering */
    sepconv_generate_options options = {.source_budget = 20000};
    ck_assert_int_eq(generate("op=dw df=8 m=4 dk=3", "unroll=full", &options, &source,
                              &error), SEPCONV_LIMIT);
    ck_assert_ptr_nonnull(strstr(error.message, "20000 bytes"));
}
END_TEST

START_TEST(budget_is_exact)
{
    /* the early estimate must never refuse a kernel that fits: a budget of
     * exactly the real size passes, one byte less fails (while rendering) */
    const char *specs[] = {"op=dw df=10 m=20 dk=3", "op=sep df=7 m=9 n=20 dk=5",
                           "op=pw df=9 m=5 n=40", "op=conv df=6 m=3 n=8 dk=3",
                           "op=dw df=2 m=3 dk=7", "op=sep df=5 m=1 n=1 dk=7 pad=9"};
    const char *unrolls[] = {"unroll=none", "unroll=row", "unroll=full",
                             "unroll=full,tile_w=8", "unroll=row,pixel_block=8"};
    for (int s = 0; s < 6; s++)
        for (int u = 0; u < 5; u++) {
            if (u == 3 && strstr(specs[s], "op=pw"))
                continue; /* pw has no tile_w */
            if (u == 4 && !strstr(specs[s], "op=pw") && !strstr(specs[s], "op=sep"))
                continue; /* only pw and sep have pixel_block */
            sepconv_source source;
            sepconv_error error;
            sepconv_generate_options huge = {.source_budget = (size_t)1 << 30};
            ck_assert_int_eq(generate(specs[s], unrolls[u], &huge, &source, &error),
                             SEPCONV_OK);
            sepconv_generate_options exact = {.source_budget = source.code_length};
            sepconv_source again;
            ck_assert_msg(generate(specs[s], unrolls[u], &exact, &again, &error) ==
                              SEPCONV_OK, "%s %s: %s", specs[s], unrolls[u], error.message);
            sepconv_source_free(&again);
            sepconv_generate_options tight = {.source_budget = source.code_length - 1};
            ck_assert_int_eq(generate(specs[s], unrolls[u], &tight, &again, &error),
                             SEPCONV_LIMIT);
            sepconv_source_free(&source);
        }
}
END_TEST

START_TEST(template_directory_override)
{
    /* a user's copy of the templates dir, one of them broken */
    write_template("depthwise.c.in", "line one\n${undefined_helper()}\n");
    sepconv_source source;
    sepconv_error error;
    sepconv_generate_options options = {.template_dir = template_dir};
    ck_assert_int_eq(generate("op=dw df=4 m=2 dk=3", "", &options, &source, &error),
                     SEPCONV_TEMPLATE);
    char expected[256];
    snprintf(expected, sizeof expected, "%s/depthwise.c.in:2: attempt to call a nil "
                                        "value (global 'undefined_helper')", template_dir);
    ck_assert_str_eq(error.message, expected);
    /* the environment variable does the same */
    setenv("SEPCONV_TEMPLATE_DIR", template_dir, 1);
    ck_assert_int_eq(generate("op=dw df=4 m=2 dk=3", "", NULL, &source, &error),
                     SEPCONV_TEMPLATE);
    unsetenv("SEPCONV_TEMPLATE_DIR");
    ck_assert_int_eq(generate("op=dw df=4 m=2 dk=3", "", NULL, &source, &error),
                     SEPCONV_OK);
    sepconv_source_free(&source);
}
END_TEST

START_TEST(bad_names_and_schedules)
{
    sepconv_source source;
    sepconv_error error;
    sepconv_generate_options options = {.name = "1bad-name"};
    ck_assert_int_eq(generate("op=dw df=4 m=2 dk=3", "", &options, &source, &error),
                     SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "not a C identifier"));
    sepconv_layer layer = parse_layer("op=dw df=4 m=2 dk=3");
    sepconv_schedule schedule;
    ck_assert_int_eq(sepconv_schedule_parse("oc_block=8", &layer, SEPCONV_TARGET_PORTABLE,
                                            &schedule, &error), SEPCONV_INVALID);
    ck_assert_str_eq(error.message, "op=dw has no schedule knob 'oc_block' (its knobs: "
                                    "channel_block, tile_w, unroll)");
    ck_assert_int_eq(sepconv_schedule_parse("channel_block=4", &layer, SEPCONV_TARGET_AVX2,
                                            &schedule, &error), SEPCONV_INVALID);
    ck_assert_str_eq(error.message, "channel_block=4 is not valid for target avx2 "
                                    "(expected 8 | 16 | 32 | 64)");
    ck_assert_int_eq(sepconv_schedule_parse("unroll=sideways", &layer,
                                            SEPCONV_TARGET_PORTABLE, &schedule, &error),
                     SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "none | row | full"));
    ck_assert_int_eq(sepconv_schedule_parse("unroll=row,unroll=full", &layer,
                                            SEPCONV_TARGET_PORTABLE, &schedule, &error),
                     SEPCONV_INVALID);
    ck_assert_int_eq(sepconv_schedule_parse("unroll=row tile_w=4", &layer,
                                            SEPCONV_TARGET_PORTABLE, &schedule, &error),
                     SEPCONV_OK);
    char text[128];
    ck_assert_int_eq(sepconv_schedule_format(&schedule, text, sizeof text, NULL), SEPCONV_OK);
    ck_assert_str_eq(text, "channel_block=16,tile_w=4,unroll=row");
}
END_TEST

Suite *render_suite(void)
{
    Suite *suite = suite_create("render");
    TCase *engine = tcase_create("engine");
    tcase_set_timeout(engine, 120);
    tcase_add_test(engine, interpolation_and_control_flow);
    tcase_add_test(engine, include_and_import);
    tcase_add_test(engine, errors_carry_the_template_line);
    tcase_add_test(engine, sandbox_refuses_the_outside_world);
    tcase_add_test(engine, instruction_budget_stops_endless_loops);
    tcase_add_test(engine, memory_budget_stops_hogs);
    tcase_add_test(engine, output_budget);
    tcase_add_test(engine, translation_is_line_for_line);
    suite_add_tcase(suite, engine);
    TCase *generator = tcase_create("generate");
    tcase_set_timeout(generator, 120);
    tcase_add_test(generator, generation_is_deterministic);
    tcase_add_test(generator, size_budget_refuses_before_rendering);
    tcase_add_test(generator, budget_is_exact);
    tcase_add_test(generator, template_directory_override);
    tcase_add_test(generator, bad_names_and_schedules);
    suite_add_tcase(suite, generator);
    return suite;
}
