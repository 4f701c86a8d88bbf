/*
 * test_render.c -- the template engine: syntax, error lines, the sandbox,
 * the budgets; and the generator's determinism and size budget.
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "generate/render.h"
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

#define ALARM_SECONDS 30 /* a render that has not ended by then never would */

/* Renders text under `limits` in a child process that SIGALRM kills after
 * ALARM_SECONDS, so a render that never ends fails the test instead of
 * hanging the suite (Check may run without forking); asserts the status
 * and that the message holds `fragment`. */
static void assert_ends(const char *text, render_limits limits, sepconv_status status,
                        const char *fragment)
{
    write_template("t.c.in", text);
    int channel[2];
    ck_assert_int_eq(pipe(channel), 0);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        close(channel[0]);
        signal(SIGALRM, SIG_DFL); /* Check's handler would kill the whole test */
        alarm(ALARM_SECONDS);
        render_request request = {.template_name = "t.c.in",
                                  .template_dir = template_dir, .limits = limits};
        char *out = NULL;
        size_t length = 0;
        sepconv_error error = {0};
        int result = render_template(&request, &out, &length, &error);
        char report[sizeof error.message + 16];
        int size = snprintf(report, sizeof report, "%d %s", result,
                            result == SEPCONV_OK ? out : error.message);
        free(out);
        ssize_t wrote = write(channel[1], report, (size_t)size);
        _exit(wrote == size ? 0 : 1);
    }
    close(channel[1]);
    char report[2048] = "";
    size_t used = 0;
    ssize_t got;
    while ((got = read(channel[0], report + used, sizeof report - 1 - used)) > 0)
        used += (size_t)got;
    report[used] = '\0';
    close(channel[0]);
    int wait_status = 0;
    ck_assert_int_eq(waitpid(child, &wait_status, 0), child);
    ck_assert_msg(!WIFSIGNALED(wait_status), "rendering did not end within %d s: %s",
                  ALARM_SECONDS, text);
    int result = atoi(report);
    const char *message = strchr(report, ' ') ? strchr(report, ' ') + 1 : "";
    ck_assert_msg(result == (int)status, "status %d, expected %d: %s", result, (int)status,
                  message);
    ck_assert_msg(strstr(message, fragment) != NULL, "'%s' lacks '%s'", message, fragment);
}

/* The limits of assert_fails. */
static render_limits small_limits(void)
{
    render_limits limits = render_default_limits();
    limits.instructions = 20000000;
    limits.memory_bytes = (size_t)32 << 20;
    return limits;
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
    /* the error names the line and the sandbox's allowance */
    assert_fails("a\n$local s = ('x'):rep(1e9)\n", SEPCONV_LIMIT,
                 "t.c.in:2: out of memory: ");
    assert_fails("a\n$local s = ('x'):rep(1e9)\n", SEPCONV_LIMIT,
                 "the template sandbox allows 32.0 MiB");
    assert_fails("a\nb\n$local t = {}\n$for i = 1, 1e9 do t[i] = i end\n", SEPCONV_LIMIT,
                 "t.c.in:4: out of memory");
}
END_TEST

START_TEST(finalizers_are_refused)
{
    /* Lua runs __gc with hooks off: an endless one ran inside lua_close */
    assert_ends("$setmetatable({}, {__gc = function() while true do end end})\n",
                small_limits(), SEPCONV_TEMPLATE,
                "t.c.in:1: setmetatable: a metatable with __gc is refused in the template "
                "sandbox");
    /* __gc added afterwards does not make a finalizer */
    assert_ends("$local mt = {}\n$local t = setmetatable({}, mt)\n"
                "$mt.__gc = function() while true do end end\n$t = nil\nok\n",
                small_limits(), SEPCONV_OK, "ok\n");
    /* the real setmetatable still works, and still guards __metatable */
    assert_ends("${setmetatable({}, {__index = {x = 5}}).x}\n", small_limits(), SEPCONV_OK,
                "5\n");
    assert_ends("$local t = setmetatable({}, {__metatable = 1})\n$setmetatable(t, {})\n",
                small_limits(), SEPCONV_TEMPLATE,
                "t.c.in:2: cannot change a protected metatable");
    /* to-be-closed variables run their __close with the hook on */
    assert_ends("a\n$local x <close> = setmetatable({}, {__close = function()\n"
                "$while true do end end})\n",
                small_limits(), SEPCONV_LIMIT, "budget of 20000000 instructions");
}
END_TEST

START_TEST(patterns_are_bounded)
{
    /* backtracking runs in C, where the count hook never fires */
    assert_ends("$string.find(string.rep(\"a\",60), string.rep(\"a-\",40)..\"b\")\n",
                small_limits(), SEPCONV_TEMPLATE,
                "t.c.in:1: pattern too complex for the template sandbox: 40 quantifiers, "
                "at most 32");
    /* string methods reach the same functions through the metatable */
    assert_ends("x\n$local r = (\"a\"):rep(60):find((\"a-\"):rep(40)..\"b\")\n",
                small_limits(), SEPCONV_TEMPLATE, "t.c.in:2: pattern too complex");
    /* fewer quantifiers, still a worst case far past the bound */
    const char *const calls[] = {"find", "match", "gmatch", "gsub"};
    for (int i = 0; i < 4; i++) {
        char text[256];
        snprintf(text, sizeof text, "$local r = (\"a\"):rep(60):%s((\"a*\"):rep(12)..\"b\"%s)\n",
                 calls[i], i == 3 ? ", \"\"" : "");
        assert_ends(text, small_limits(), SEPCONV_TEMPLATE,
                    "steps, at most 100000000 (12 quantifiers)");
    }
    /* the bound follows the subject: short runs of a class backtrack little */
    assert_ends("${tostring((\"ab\"):rep(2000):find((\"a*b*\"):rep(3)..\"c\"))}\n",
                small_limits(), SEPCONV_OK, "nil\n");
    /* ordinary patterns work */
    assert_ends("${(\"a, b,c\"):gsub(\",%s*\", \";\")} ${(\"k=v\"):match(\"^(%w+)=\")} "
                "${string.find(\"x.y\", \".\", 1, true)}\n",
                small_limits(), SEPCONV_OK, "a;b;c k 2\n");
    /* the matching is paid for from the instruction budget */
    assert_ends("$local s = (\"a\"):rep(1000)\n$while true do s:find(\"a*b\") end\n",
                small_limits(), SEPCONV_LIMIT,
                "t.c.in:2: the template ran past its budget of 20000000 instructions "
                "(string.find would take");
    /* errors inside the matcher carry the template line */
    assert_ends("a\n${(\"x\"):find(\"%\")}\n", small_limits(), SEPCONV_TEMPLATE,
                "t.c.in:2: malformed pattern (ends with '%')");
    assert_ends("${string.find(nil)}\n", small_limits(), SEPCONV_TEMPLATE,
                "t.c.in:1: bad argument #1 to 'string.find' (string expected, got nil)");
}
END_TEST

START_TEST(library_loops_are_charged)
{
    /* loops in C that allocate nothing, so no budget stopped them */
    assert_ends("${string.rep(\"\", math.maxinteger)}x\n", small_limits(), SEPCONV_OK,
                "x\n");
    assert_ends("$table.move({}, 1, 1e15, 1)\n", small_limits(), SEPCONV_LIMIT,
                "t.c.in:1: the template ran past its budget of 20000000 instructions "
                "(table.move would take 1e+15 more steps)");
    assert_ends("$local t = setmetatable({}, {__len = function() return 1e15 end})\n"
                "$table.insert(t, 1, 0)\n",
                small_limits(), SEPCONV_LIMIT, "t.c.in:2: the template ran past its budget");
    assert_ends("$local t = setmetatable({}, {__len = function() return 1e15 end})\n"
                "$table.remove(t, 1)\n",
                small_limits(), SEPCONV_LIMIT, "(table.remove would take");
    assert_ends("${table.concat(setmetatable({}, {__index = table.concat}), '', 1, "
                "math.maxinteger)}\n",
                small_limits(), SEPCONV_LIMIT, "(table.concat would take 9.22e+18");
    /* the functions themselves still work */
    assert_ends("$local t = {1, 2, 3}\n$table.insert(t, 1, 0)\n$table.remove(t)\n"
                "$table.sort(t, function(a, b) return a > b end)\n"
                "${table.concat(table.move(t, 1, 3, 2, {9}), ',')} ${select('#', "
                "table.unpack(t))} ${('ab'):rep(3, '-')}\n",
                small_limits(), SEPCONV_OK, "9,2,1,0 3 ab-ab-ab\n");
}
END_TEST

START_TEST(time_limit_stops_long_instructions)
{
    /* one instruction compares two 4 MiB strings: few instructions, much
     * time; the wall-clock limit stops it */
    render_limits limits = small_limits();
    limits.instructions = INT64_MAX / 2;
    /* under emulation (tests/arm64_check.sh: qemu) line 1 alone takes over
     * a second: the limit scales with Check's timeout multiplier; under
     * valgrind too, where a loaded machine took line 1 past 1 s once (CI
     * of stop 23) */
    int factor = emulation_factor();
    if (under_valgrind() && factor < 4)
        factor = 4;
    limits.milliseconds = 1000 * factor;
    char expected[96];
    snprintf(expected, sizeof expected,
             "t.c.in:2: the template ran past its time limit of %d ms", 1000 * factor);
    assert_ends("$local a, b = ('x'):rep(1 << 22), ('x'):rep(1 << 22)\n"
                "$while true do local same = a == b end\n",
                limits, SEPCONV_LIMIT, expected);
}
END_TEST

START_TEST(every_failure_has_a_template_line)
{
    /* error values that are not strings */
    assert_fails("a\nb\n$error(42)\n", SEPCONV_TEMPLATE,
                 "t.c.in:3: error object is a number: 42");
    assert_fails("a\n$error({})\n", SEPCONV_TEMPLATE, "t.c.in:2: error object is a table value");
    assert_fails("$error(setmetatable({}, {__tostring = function() return 'x' end}))\n",
                 SEPCONV_TEMPLATE, "t.c.in:1: error object is a table value");
    /* a string error without a position (level 0) gets the line */
    assert_fails("a\n$error('no position', 0)\n", SEPCONV_TEMPLATE, "t.c.in:2: no position");
    /* an include of itself stops at the named depth, not a C stack overflow */
    write_template("self.c.in", "x\n$include('self.c.in')\n");
    assert_fails("$include('self.c.in')\n", SEPCONV_TEMPLATE,
                 "self.c.in:2: include depth over 16: t.c.in -> self.c.in -> self.c.in");
    assert_fails("$include('self.c.in')\n", SEPCONV_TEMPLATE,
                 "-> self.c.in; does self.c.in include itself?");
    write_template("ping.c.in", "$include('pong.c.in')\n");
    write_template("pong.c.in", "$include('ping.c.in')\n");
    assert_fails("$include('ping.c.in')\n", SEPCONV_TEMPLATE,
                 "include depth over 16: t.c.in -> ping.c.in -> pong.c.in -> ping.c.in");
    write_template("loop.lua", "return import('loop.lua')\n");
    assert_fails("$import('loop.lua')\n", SEPCONV_TEMPLATE,
                 "loop.lua:1: include depth over 16");
    /* a C stack overflow through library calls gets the line too */
    assert_fails("\n$local function f(s) return (s:gsub('.', f)) end\n$f('ab')\n",
                 SEPCONV_TEMPLATE, "t.c.in:2: C stack overflow");
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

START_TEST(missing_template_directory_is_an_error)
{
    /* a mistyped directory used to give the built-in templates silently */
    sepconv_source source;
    sepconv_error error;
    sepconv_generate_options options = {.template_dir = "/nonexistent/sepconv-templates"};
    ck_assert_int_eq(generate("op=dw df=4 m=2 dk=3", "", &options, &source, &error),
                     SEPCONV_IO);
    ck_assert_str_eq(error.message, "template directory '/nonexistent/sepconv-templates' "
                                    "(from the template_dir option, --templates) cannot "
                                    "be used: No such file or directory");
    ck_assert_ptr_null(source.code);
    /* a file is not a directory */
    write_template("plain-file", "text\n");
    char file[256];
    snprintf(file, sizeof file, "%s/plain-file", template_dir);
    options.template_dir = file;
    ck_assert_int_eq(generate("op=dw df=4 m=2 dk=3", "", &options, &source, &error),
                     SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "is not a directory"));
    ck_assert_ptr_nonnull(strstr(error.message, file));
    /* the environment variable, named as such; restored afterwards */
    const char *saved = getenv("SEPCONV_TEMPLATE_DIR");
    char *copy = saved ? strdup(saved) : NULL;
    setenv("SEPCONV_TEMPLATE_DIR", "/nonexistent/from-env", 1);
    sepconv_status status = generate("op=dw df=4 m=2 dk=3", "", NULL, &source, &error);
    if (copy)
        setenv("SEPCONV_TEMPLATE_DIR", copy, 1);
    else
        unsetenv("SEPCONV_TEMPLATE_DIR");
    free(copy);
    ck_assert_int_eq(status, SEPCONV_IO);
    ck_assert_ptr_nonnull(strstr(error.message, "template directory '/nonexistent/from-env' "
                                                "(from the environment variable "
                                                "SEPCONV_TEMPLATE_DIR)"));
    /* an existing directory without the template still falls back to the
     * built-in one (documented) */
    char empty[64];
    snprintf(empty, sizeof empty, "/tmp/sepconv-empty-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(empty));
    options.template_dir = empty;
    ck_assert_int_eq(generate("op=dw df=4 m=2 dk=3", "", &options, &source, &error),
                     SEPCONV_OK);
    sepconv_source_free(&source);
    rmdir(empty);
}
END_TEST

START_TEST(tcc_reads_only_length_bytes)
{
    /* the bytes after `length` are not the source's, and no NUL follows */
    const char text[] = "int seven(void) { return 7; }\n#error past the length\n";
    size_t length = strlen("int seven(void) { return 7; }\n");
    char *source = malloc(sizeof text - 1);
    ck_assert_ptr_nonnull(source);
    memcpy(source, text, sizeof text - 1); /* no terminating NUL */
    const char *names[] = {"seven"};
    sepconv_code *code = NULL;
    sepconv_error error;
    ck_assert_msg(sepconv_tcc_compile(source, length, SEPCONV_TARGET_PORTABLE, names, 1, &code,
                                      &error) == SEPCONV_OK,
                  "%s", error.message);
    int (*seven)(void) = (int (*)(void))sepconv_code_symbol(code, "seven");
    ck_assert_int_eq(seven(), 7);
    sepconv_code_free(code);
    /* a NUL inside the length would cut the source short: refused */
    source[5] = '\0';
    ck_assert_int_eq(sepconv_tcc_compile(source, length, SEPCONV_TARGET_PORTABLE, names, 1, &code,
                                      &error),
                     SEPCONV_INVALID);
    ck_assert_ptr_null(code);
    ck_assert_ptr_nonnull(strstr(error.message, "NUL byte at offset 5 of its 30 bytes"));
    free(source);
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
    tcase_add_test(engine, finalizers_are_refused);
    tcase_add_test(engine, patterns_are_bounded);
    tcase_add_test(engine, library_loops_are_charged);
    tcase_add_test(engine, time_limit_stops_long_instructions);
    tcase_add_test(engine, every_failure_has_a_template_line);
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
    tcase_add_test(generator, missing_template_directory_is_an_error);
    tcase_add_test(generator, tcc_reads_only_length_bytes);
    suite_add_tcase(suite, generator);
    return suite;
}
