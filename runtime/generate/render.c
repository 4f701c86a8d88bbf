/*
 * render.c -- the template engine: translates C-with-Lua templates into Lua
 * chunks and runs them in a sandboxed Lua state with memory, instruction,
 * output and time budgets.
 *
 * Nothing a template does may run unbounded.  Lua code is counted by the
 * count hook; finalizers, which run with hooks off, cannot be set (the
 * sandbox's setmetatable refuses __gc); the library functions that loop in
 * C are wrapped to charge their work to the instruction budget before they
 * run (pattern matching is estimated at its backtracking worst case); and
 * a wall-clock limit, checked by the hook and by the allocator, stops the
 * rest: single instructions that copy or compare long strings.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "core/core.h"
#include "generate/render.h"

#define HOOK_STEP 1000                 /* instructions between budget checks */
#define TEMPLATE_FILE_MAX ((size_t)1 << 20)
#define REGISTRY_ROOT "sepconv.root"   /* the root environment */
#define REGISTRY_MODULES "sepconv.modules" /* import() results by name */
#define CLOCK_EVERY 256                /* allocations between clock checks */
#define CLOCK_BIG ((size_t)1 << 20)    /* an allocation this big checks at once */
#define BYTES_PER_INSTRUCTION 64       /* string.rep's charge for its copying */
#define WHERE_MAX (LUA_IDSIZE + 32)    /* "chunk:line: " */
#define WHERE_EVERY 8                  /* hooks between noting the line */

/* Everything one render owns; reached from Lua through the extra space. */
typedef struct render_state {
    const render_request *request;
    lua_State *L;
    size_t memory_used;
    int64_t instructions_left;
    bool out_of_instructions, out_of_output, out_of_time, out_of_memory;
    struct timespec deadline;
    unsigned allocations, hooks;
    char where[WHERE_MAX];  /* the template line last seen running */
    int depth;              /* include() and import() nesting */
    const char *chain[RENDER_INCLUDE_DEPTH_MAX];
    char *out;
    size_t length, capacity;
    sepconv_status status;  /* a callback's failure */
    sepconv_error *error;
} render_state;

/* The state behind a Lua state. */
static render_state *state_of(lua_State *L)
{
    return *(render_state **)lua_getextraspace(L);
}

/* Defaults for a render's budgets. */
render_limits render_default_limits(void)
{
    return (render_limits){.memory_bytes = (size_t)256 << 20,
                           .instructions = INT64_C(500000000),
                           .output_bytes = (size_t)4 << 20,
                           .milliseconds = RENDER_DEFAULT_MILLISECONDS};
}

/* ------------------------------------------------------------ translation */

/* A growable byte buffer for the translator. */
typedef struct buffer {
    char *data;
    size_t length, capacity;
    bool failed;
} buffer;

/* Appends bytes; remembers an allocation failure. */
static void buffer_add(buffer *b, const char *bytes, size_t count)
{
    if (b->failed)
        return;
    if (b->length + count + 1 > b->capacity) {
        size_t grown = b->capacity ? b->capacity : 1024;
        while (grown < b->length + count + 1)
            grown *= 2;
        char *data = realloc(b->data, grown);
        if (!data) {
            b->failed = true;
            return;
        }
        b->data = data;
        b->capacity = grown;
    }
    memcpy(b->data + b->length, bytes, count);
    b->length += count;
    b->data[b->length] = '\0';
}

/* Appends C text as the body of a Lua string literal. */
static void buffer_add_quoted(buffer *b, const char *text, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        unsigned char c = (unsigned char)text[i];
        char escaped[8];
        if (c == '\\' || c == '"') {
            escaped[0] = '\\';
            escaped[1] = (char)c;
            buffer_add(b, escaped, 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(escaped, sizeof escaped, "\\%03u", c);
            buffer_add(b, escaped, 4);
        } else {
            buffer_add(b, (const char *)&text[i], 1);
        }
    }
}

/* Finds the '}' closing "${" at text[0]; skips Lua strings; -1 if none. */
static long closing_brace(const char *text, size_t count)
{
    int depth = 1; /* text[0] is the '{' */
    char quote = 0;
    for (size_t i = 1; i < count; i++) {
        char c = text[i];
        if (quote) {
            if (c == '\\')
                i++;
            else if (c == quote)
                quote = 0;
        } else if (c == '"' || c == '\'') {
            quote = c;
        } else if (c == '{') {
            depth++;
        } else if (c == '}' && --depth == 0) {
            return (long)i;
        }
    }
    return -1;
}

/* Translates one C line into an _emit(...) call. */
static sepconv_status translate_text_line(buffer *b, const char *name, size_t number,
                                          const char *line, size_t count,
                                          bool newline, sepconv_error *error)
{
    buffer_add(b, "_emit(\"", 7);
    size_t start = 0;
    for (size_t i = 0; i < count; i++) {
        if (line[i] != '$')
            continue;
        if (i + 1 < count && line[i + 1] == '$') { /* "$$" is a '$' */
            buffer_add_quoted(b, line + start, i + 1 - start);
            start = i + 2;
            i++;
            continue;
        }
        if (i + 1 >= count || line[i + 1] != '{')
            continue;
        long close = closing_brace(line + i + 1, count - i - 1);
        if (close < 0)
            return sepconv_fail(error, SEPCONV_TEMPLATE,
                                "%s:%zu: '${' is not closed on its line", name,
                                number);
        if (close == 1)
            return sepconv_fail(error, SEPCONV_TEMPLATE,
                                "%s:%zu: '${}' holds no expression", name, number);
        buffer_add_quoted(b, line + start, i - start);
        buffer_add(b, "\", (", 4);
        buffer_add(b, line + i + 2, (size_t)close - 1);
        buffer_add(b, "), \"", 4);
        i += (size_t)close + 1;
        start = i + 1;
    }
    buffer_add_quoted(b, line + start, count - start);
    if (newline)
        buffer_add(b, "\\n", 2);
    buffer_add(b, "\")", 2);
    return SEPCONV_OK;
}

/* Translates template text into a Lua chunk, line for line. */
sepconv_status render_translate(const char *name, const char *text, char **lua,
                                size_t *length, sepconv_error *error)
{
    buffer b = {0};
    size_t number = 0;
    const char *p = text;
    sepconv_status status = SEPCONV_OK;
    while (*p && status == SEPCONV_OK) {
        number++;
        size_t count = strcspn(p, "\n");
        bool newline = p[count] == '\n';
        size_t visible = count;
        if (visible > 0 && p[visible - 1] == '\r')
            visible--;
        size_t indent = strspn(p, " \t");
        if (indent < visible && p[indent] == '$' &&
            !(indent + 1 < visible && (p[indent + 1] == '{' || p[indent + 1] == '$')))
            buffer_add(&b, p + indent + 1, visible - indent - 1); /* Lua line */
        else
            status = translate_text_line(&b, name, number, p, visible, newline,
                                         error);
        buffer_add(&b, "\n", 1);
        p += count + (newline ? 1 : 0);
    }
    if (status == SEPCONV_OK && b.failed)
        status = sepconv_fail(error, SEPCONV_NOMEM, "out of memory translating %s",
                              name);
    if (status != SEPCONV_OK) {
        free(b.data);
        return status;
    }
    if (!b.data)
        buffer_add(&b, "", 0);
    if (b.failed)
        return sepconv_fail(error, SEPCONV_NOMEM, "out of memory translating %s",
                            name);
    *lua = b.data;
    *length = b.length;
    return SEPCONV_OK;
}

/* ------------------------------------------------------------ the sandbox */

/* The render's time limit in milliseconds (0 asks for the default). */
static int64_t time_limit(const render_state *s)
{
    int64_t ms = s->request->limits.milliseconds;
    return ms > 0 ? ms : RENDER_DEFAULT_MILLISECONDS;
}

/* Whether the render's wall-clock time is up. */
static bool past_deadline(const render_state *s)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > s->deadline.tv_sec ||
           (now.tv_sec == s->deadline.tv_sec && now.tv_nsec >= s->deadline.tv_nsec);
}

/* Writes "chunk:line: " of the innermost Lua function at stack level
 * `level` or above into `where`; empty if no Lua function is running.
 * Reads the stack only: it neither allocates nor raises errors. */
static void find_location(lua_State *L, int level, char *where, size_t capacity)
{
    lua_Debug frame;
    where[0] = '\0';
    for (; lua_getstack(L, level, &frame); level++)
        if (lua_getinfo(L, "Sl", &frame) && frame.currentline > 0) {
            snprintf(where, capacity, "%s:%d: ", frame.short_src, frame.currentline);
            return;
        }
}

/* The Lua allocator: plain malloc under a cap on the total, refusing to
 * grow once the time is up. */
static void *sandbox_alloc(void *context, void *block, size_t old_size,
                           size_t new_size)
{
    render_state *s = context;
    size_t old = block ? old_size : 0;
    if (new_size == 0) {
        free(block);
        s->memory_used -= old;
        return NULL;
    }
    if (new_size > old) {
        if (!s->out_of_time && (++s->allocations % CLOCK_EVERY == 0 ||
                                new_size - old >= CLOCK_BIG))
            s->out_of_time = past_deadline(s);
        bool over = new_size - old > s->request->limits.memory_bytes - s->memory_used;
        if (over || s->out_of_time) {
            s->out_of_memory |= over;
            /* a fresh block is never the Lua stack in mid-move: safe to read
             * the stack for the line (else the hook's last one stands) */
            if (!block && s->L)
                find_location(s->L, 0, s->where, sizeof s->where);
            return NULL; /* Lua raises its memory error; we name the cause */
        }
    }
    void *grown = realloc(block, new_size);
    if (!grown && new_size <= old)
        grown = block; /* Lua counts on shrinking never failing: keep it */
    if (grown) {
        s->memory_used = s->memory_used - old + new_size;
    } else if (new_size > old && !block && s->L) { /* within the cap, malloc said no */
        find_location(s->L, 0, s->where, sizeof s->where);
    }
    return grown;
}

/* Raises an error at the innermost template line (luaL_error would name
 * the caller of the running function when called from a hook). */
static int raise_here(lua_State *L, const char *format, ...)
{
    char where[WHERE_MAX];
    find_location(L, 0, where, sizeof where);
    lua_pushstring(L, where);
    va_list arguments;
    va_start(arguments, format);
    lua_pushvfstring(L, format, arguments);
    va_end(arguments);
    lua_concat(L, 2);
    return lua_error(L);
}

/* Raises the budget error at the current template line. */
static int budget_error(lua_State *L, render_state *s, const char *detail)
{
    s->out_of_instructions = true;
    return raise_here(L, "the template ran past its budget of %I instructions%s",
                      (lua_Integer)s->request->limits.instructions, detail);
}

/* The count hook: stops a template that runs past its instruction budget
 * or its time, and remembers where it is for a later memory error. */
static void count_hook(lua_State *L, lua_Debug *debug)
{
    (void)debug;
    render_state *s = state_of(L);
    s->instructions_left -= HOOK_STEP;
    if (++s->hooks % WHERE_EVERY == 0)
        find_location(L, 0, s->where, sizeof s->where);
    if (s->instructions_left < 0)
        budget_error(L, s, " (an endless loop?)");
    if (s->out_of_time || past_deadline(s)) {
        s->out_of_time = true;
        find_location(L, 0, s->where, sizeof s->where);
        raise_here(L, "the template ran past its time limit of %I ms",
                   (lua_Integer)time_limit(s));
    }
}

/* Charges `steps` of work done in C to the instruction budget before it is
 * done; raises the budget error if they do not fit. */
static void charge(lua_State *L, double steps, const char *what)
{
    render_state *s = state_of(L);
    if (steps <= (double)s->instructions_left) {
        s->instructions_left -= (int64_t)steps;
        return;
    }
    char detail[128];
    snprintf(detail, sizeof detail, " (%s would take %.3g more steps)", what, steps);
    budget_error(L, s, detail);
}

/* Appends generated text, enforcing the output budget. */
static void output_add(lua_State *L, render_state *s, const char *text,
                       size_t count)
{
    size_t budget = s->request->limits.output_bytes;
    if (count > budget - s->length) {
        s->out_of_output = true;
        luaL_error(L, "the generated source would exceed the size budget of %I "
                      "bytes (%f KiB); use a smaller unroll or raise the budget",
                   (lua_Integer)budget, (lua_Number)budget / 1024.0);
    }
    if (s->length + count + 1 > s->capacity) {
        size_t grown = s->capacity ? s->capacity : 65536;
        while (grown < s->length + count + 1)
            grown *= 2;
        char *data = realloc(s->out, grown);
        if (!data)
            luaL_error(L, "out of memory for the generated source");
        s->out = data;
        s->capacity = grown;
    }
    memcpy(s->out + s->length, text, count);
    s->length += count;
}

/* _emit(...): appends strings and integers to the output. */
static int lua_emit(lua_State *L)
{
    render_state *s = state_of(L);
    int count = lua_gettop(L);
    for (int i = 1; i <= count; i++) {
        char number[64];
        size_t length = 0;
        const char *text = NULL;
        int type = lua_type(L, i);
        if (type == LUA_TSTRING) {
            text = lua_tolstring(L, i, &length);
        } else if (type == LUA_TNUMBER && lua_isinteger(L, i)) {
            length = (size_t)snprintf(number, sizeof number, "%lld",
                                      (long long)lua_tointeger(L, i));
            text = number;
        } else if (type == LUA_TNUMBER) {
            lua_Number value = lua_tonumber(L, i);
            lua_Integer whole;
            if (!lua_numbertointeger(value, &whole) || (lua_Number)whole != value)
                return luaL_error(L, "cannot interpolate the non-integer %f; "
                                     "write f(x) for a float literal", value);
            length = (size_t)snprintf(number, sizeof number, "%lld",
                                      (long long)whole);
            text = number;
        } else {
            return luaL_error(L, "cannot interpolate a %s value", luaL_typename(L, i));
        }
        output_add(L, s, text, length);
    }
    return 0;
}

/* Whether a template name is a plain file name (no path tricks). */
static bool plain_name(const char *name)
{
    if (!name[0] || name[0] == '.' || strlen(name) > 128)
        return false;
    for (const char *p = name; *p; p++)
        if (!(('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') ||
              ('0' <= *p && *p <= '9') || *p == '_' || *p == '-' || *p == '.'))
            return false;
    return true;
}

/* Pushes the text of a template (embedded or from the directory) and its
 * chunk name; raises a Lua error if there is none. */
static void push_template(lua_State *L, const char *name)
{
    render_state *s = state_of(L);
    if (!plain_name(name))
        luaL_error(L, "'%s' is not a template name (letters, digits, '_', "
                      "'-', '.'; no directories)", name);
    if (s->request->template_text && strcmp(name, s->request->template_name) == 0) {
        lua_pushstring(L, s->request->template_text);
        lua_pushfstring(L, "@%s", name);
        return;
    }
    /* a template directory overrides the built-in templates it holds */
    const char *dir = s->request->template_dir;
    if (dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        char *text = NULL;
        size_t length = 0;
        sepconv_error error;
        sepconv_status status = sepconv_read_file(path, TEMPLATE_FILE_MAX, "template",
                                                  &text, &length, &error);
        if (status == SEPCONV_OK) {
            lua_pushlstring(L, text, length);
            free(text);
            lua_pushfstring(L, "@%s", path);
            return;
        }
        if (status != SEPCONV_IO || access(path, F_OK) == 0) {
            lua_pushstring(L, error.message);
            lua_error(L);
        }
    }
    for (size_t i = 0; i < render_embedded_count; i++)
        if (strcmp(render_embedded_templates[i].name, name) == 0) {
            lua_pushstring(L, render_embedded_templates[i].text);
            lua_pushfstring(L, "@templates/%s", name);
            return;
        }
    luaL_error(L, "no template named '%s'%s%s", name, dir ? " in " : " is built in",
               dir ? dir : "");
}

/* Loads template `name` (translated unless it is a .lua module) as a
 * function whose _ENV is the table at `env`. */
static void load_template(lua_State *L, const char *name, int env)
{
    env = lua_absindex(L, env);
    push_template(L, name);
    const char *chunkname = lua_tostring(L, -1);
    size_t length = 0;
    const char *text = lua_tolstring(L, -2, &length);
    size_t name_length = strlen(name);
    bool module = name_length > 4 && strcmp(name + name_length - 4, ".lua") == 0;
    char *lua = NULL;
    size_t lua_length = length;
    sepconv_error error;
    if (!module && render_translate(chunkname + 1, text, &lua, &lua_length,
                                    &error) != SEPCONV_OK) {
        lua_pushstring(L, error.message);
        lua_error(L);
    }
    int loaded = luaL_loadbufferx(L, module ? text : lua, lua_length, chunkname, "t");
    free(lua);
    if (loaded != LUA_OK)
        lua_error(L);
    lua_pushvalue(L, env);
    lua_setupvalue(L, -2, 1); /* the chunk's only upvalue is _ENV */
    lua_replace(L, -3);       /* function over the text */
    lua_pop(L, 1);            /* the chunk name */
}

/* Enters an included or imported template: refuses to nest deeper than
 * RENDER_INCLUDE_DEPTH_MAX (a template that includes itself would run out
 * of C stack) and names the chain that got there. */
static void enter_template(lua_State *L, const char *name)
{
    render_state *s = state_of(L);
    if (s->depth < RENDER_INCLUDE_DEPTH_MAX) {
        s->chain[s->depth++] = name;
        return;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, s->request->template_name);
    bool again = strcmp(name, s->request->template_name) == 0;
    for (int i = 0; i < s->depth; i++) {
        luaL_addstring(&b, " -> ");
        luaL_addstring(&b, s->chain[i]);
        again |= strcmp(name, s->chain[i]) == 0;
    }
    luaL_addstring(&b, " -> ");
    luaL_addstring(&b, name);
    luaL_pushresult(&b);
    luaL_error(L, "include depth over %d: %s%s%s%s", RENDER_INCLUDE_DEPTH_MAX,
               lua_tostring(L, -1), again ? "; does " : "", again ? name : "",
               again ? " include itself?" : "");
}

/* Leaves an included or imported template. */
static void leave_template(lua_State *L)
{
    state_of(L)->depth--;
}

/* include(name [, params]): renders another template in place, with the
 * params as its globals over the root environment. */
static int lua_include(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    enter_template(L, name);
    lua_newtable(L); /* the include's environment */
    if (lua_istable(L, 2)) {
        lua_pushnil(L);
        while (lua_next(L, 2)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_settable(L, -4);
        }
    }
    lua_newtable(L); /* its metatable: fall back on the root */
    lua_getfield(L, LUA_REGISTRYINDEX, REGISTRY_ROOT);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    load_template(L, name, -1);
    lua_call(L, 0, 0);
    leave_template(L);
    return 0;
}

/* import(name): runs a Lua module once per render and returns its value. */
static int lua_import(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, REGISTRY_MODULES);
    if (lua_getfield(L, -1, name) != LUA_TNIL)
        return 1;
    lua_pop(L, 1);
    enter_template(L, name);
    lua_getfield(L, LUA_REGISTRYINDEX, REGISTRY_ROOT);
    load_template(L, name, -1);
    lua_remove(L, -2);
    lua_call(L, 0, 1);
    leave_template(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, name);
    return 1;
}

/* ------------------------------------------- library functions that loop in C */

/* Whether byte c is in Lua's class %`letter` (%a, %d, ...: an upper-case
 * letter is the complement; any other character stands for itself). */
static bool escape_matches(int c, int letter)
{
    bool in;
    switch (tolower(letter)) {
    case 'a': in = isalpha(c); break;
    case 'c': in = iscntrl(c); break;
    case 'd': in = isdigit(c); break;
    case 'g': in = isgraph(c); break;
    case 'l': in = islower(c); break;
    case 'p': in = ispunct(c); break;
    case 's': in = isspace(c); break;
    case 'u': in = isupper(c); break;
    case 'w': in = isalnum(c); break;
    case 'x': in = isxdigit(c); break;
    default: return letter == c;
    }
    return isupper(letter) ? !in : in;
}

/* Whether byte c is in the set "[...]" from `p` (its '[') to `close` (its
 * ']'), with Lua's rules: '^' first negates, "x-y" is a range, "%x" a
 * class or an escaped character. */
static bool set_matches(int c, const char *p, const char *close)
{
    bool in = true;
    p++;
    if (p < close && *p == '^') {
        in = false;
        p++;
    }
    for (; p < close; p++) {
        if (*p == '%' && p + 1 < close) {
            p++;
            if (escape_matches(c, (unsigned char)*p))
                return in;
        } else if (p + 2 < close && p[1] == '-') {
            if ((unsigned char)p[0] <= c && c <= (unsigned char)p[2])
                return in;
            p += 2;
        } else if ((unsigned char)*p == c) {
            return in;
        }
    }
    return !in;
}

/* One past the single-character class at `p` ('.', "%x", "[set]" or a
 * character); NULL where the pattern is malformed (Lua will say how). */
static const char *class_end(const char *p, const char *end)
{
    if (*p == '%')
        return p + 1 < end ? p + 2 : NULL;
    if (*p != '[')
        return p + 1;
    p++;
    if (p < end && *p == '^')
        p++;
    do { /* the first character, even ']', is in the set */
        if (p >= end)
            return NULL;
        if (*p++ == '%' && p < end)
            p++;
    } while (p >= end || *p != ']');
    return p + 1;
}

/* Whether byte c matches the single-character class from p to ep. */
static bool class_matches(int c, const char *p, const char *ep)
{
    switch (*p) {
    case '.': return true;
    case '%': return escape_matches(c, (unsigned char)p[1]);
    case '[': return set_matches(c, p, ep - 1);
    default: return (unsigned char)*p == c;
    }
}

/* The longest run of subject bytes in a class: how far one quantifier on
 * it can reach, so how many ways it can backtrack. */
static size_t longest_run(const char *subject, size_t n, const char *p, const char *ep)
{
    size_t best = 0, run = 0;
    for (size_t i = 0; i < n; i++) {
        run = class_matches((unsigned char)subject[i], p, ep) ? run + 1 : 0;
        if (run > best)
            best = run;
    }
    return best;
}

/* What a pattern costs on a subject, worst case. */
typedef struct pattern_cost {
    double steps;
    int quantifiers;  /* '*', '+', '-', '?' */
} pattern_cost;

/* Bounds the steps of Lua's backtracking matcher: per start position, a
 * search tree that branches at each quantifier, one way more than the
 * longest subject run of its class at '*', '+' or '-' (counting the run
 * first), 2 ways at '?'; every path does each other item at most once,
 * "%b" and back-references a scan of the subject each. */
static pattern_cost pattern_estimate(const char *subject, size_t n, const char *p,
                                     size_t m, bool anchors)
{
    const char *end = p + m;
    pattern_cost cost = {0, 0};
    bool anchored = anchors && p < end && *p == '^';
    p += anchored;
    const char *spans[RENDER_PATTERN_QUANTIFIERS_MAX][2]; /* NULL: a '?' */
    double items = 0, scans = 0, quantified = 0;
    while (p < end) {
        items++;
        if (*p == '(') {
            p += p + 1 < end && p[1] == ')' ? 2 : 1;
            continue;
        }
        if (*p == ')' || (*p == '$' && p + 1 == end)) {
            p++;
            continue;
        }
        if (*p == '%' && p + 1 < end && p[1] == 'b') {
            if (end - p < 4)
                break;
            p += 4;
            scans++;
            continue;
        }
        if (*p == '%' && p + 1 < end && p[1] == 'f') {
            p += 2;
            const char *ep = p < end && *p == '[' ? class_end(p, end) : NULL;
            if (!ep)
                break;
            p = ep;
            continue;
        }
        if (*p == '%' && p + 1 < end && isdigit((unsigned char)p[1])) {
            p += 2;
            scans++;
            continue;
        }
        const char *ep = class_end(p, end);
        if (!ep)
            break;
        char quantifier = ep < end ? *ep : 0;
        if (quantifier == '*' || quantifier == '+' || quantifier == '-' ||
            quantifier == '?') {
            if (cost.quantifiers < RENDER_PATTERN_QUANTIFIERS_MAX) {
                spans[cost.quantifiers][0] = quantifier == '?' ? NULL : p;
                spans[cost.quantifiers][1] = ep;
                quantified += quantifier != '?';
            }
            cost.quantifiers++;
            ep++;
        }
        p = ep;
    }
    if (cost.quantifiers > RENDER_PATTERN_QUANTIFIERS_MAX)
        return cost;
    double starts = anchored ? 1 : (double)n + 1;
    /* finding the runs scans the subject once per quantifier */
    double scanning = quantified * (double)n, nodes = 1, work = 0;
    for (int i = 0; i < cost.quantifiers; i++) {
        double ways = 2;
        if (spans[i][0]) {
            cost.steps = scanning + starts * (work + nodes * (items + scans * (double)n));
            if (cost.steps > RENDER_PATTERN_STEPS_MAX)
                return cost;
            ways = (double)longest_run(subject, n, spans[i][0], spans[i][1]) + 1;
        }
        work += nodes * 2 * ways; /* counting the run, then trying each way */
        nodes *= ways;
    }
    cost.steps = scanning + starts * (work + nodes * (items + scans * (double)n));
    return cost;
}

/* Whether a pattern has no magic characters (string.find then searches
 * for it as plain text). */
static bool plain_text(const char *p, size_t m)
{
    for (size_t i = 0; i < m; i++)
        if (strchr("^$*+?.([%-", p[i]) && p[i] != '\0')
            return false;
    return true;
}

/* The steps of a plain search: memchr over the subject, and a comparison
 * of the rest of the needle at each occurrence of its first byte. */
static double plain_steps(const char *subject, size_t n, const char *p, size_t m)
{
    if (m <= 1 || m > n)
        return (double)n + 1;
    double occurrences = 0;
    const char *at = subject, *last = subject + (n - m);
    while (at <= last && (at = memchr(at, p[0], (size_t)(last - at) + 1)) != NULL) {
        occurrences++;
        at++;
    }
    return (double)n + occurrences * (double)(m - 1);
}

/* Calls the wrapped library function (upvalue 1) with this call's
 * arguments and returns its results. */
static int call_original(lua_State *L)
{
    int count = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, count, LUA_MULTRET);
    return lua_gettop(L);
}

/* Checks and charges the matching a pattern function is about to do
 * (`plain`: string.find's search for plain text).  Arguments it cannot
 * read are left for the function to refuse. */
static void check_pattern(lua_State *L, const char *what, bool anchors, bool plain)
{
    if (!lua_isstring(L, 1) || !lua_isstring(L, 2))
        return;
    size_t n = 0, m = 0;
    const char *subject = lua_tolstring(L, 1, &n);
    const char *p = lua_tolstring(L, 2, &m);
    if (plain) {
        charge(L, plain_steps(subject, n, p, m), what);
        return;
    }
    pattern_cost cost = pattern_estimate(subject, n, p, m, anchors);
    if (cost.quantifiers > RENDER_PATTERN_QUANTIFIERS_MAX)
        luaL_error(L, "pattern too complex for the template sandbox: %d quantifiers, "
                      "at most %d", cost.quantifiers, RENDER_PATTERN_QUANTIFIERS_MAX);
    if (cost.steps > RENDER_PATTERN_STEPS_MAX) {
        char steps[32];
        snprintf(steps, sizeof steps, "%.3g", cost.steps);
        luaL_error(L, "pattern too complex for the template sandbox: on this %I-byte "
                      "subject it could take over %s steps, at most %I (%d quantifiers)",
                   (lua_Integer)n, steps, (lua_Integer)RENDER_PATTERN_STEPS_MAX,
                   cost.quantifiers);
    }
    charge(L, cost.steps, what);
}

/* string.find under the pattern bound. */
static int sandbox_find(lua_State *L)
{
    size_t m = 0;
    const char *p = lua_isstring(L, 2) ? lua_tolstring(L, 2, &m) : NULL;
    check_pattern(L, "string.find", true, lua_toboolean(L, 4) || (p && plain_text(p, m)));
    return call_original(L);
}

/* string.match under the pattern bound. */
static int sandbox_match(lua_State *L)
{
    check_pattern(L, "string.match", true, false);
    return call_original(L);
}

/* string.gmatch under the pattern bound: charged once for all its matches,
 * which together try each start position at most once.  ('^' is a plain
 * character in gmatch.) */
static int sandbox_gmatch(lua_State *L)
{
    check_pattern(L, "string.gmatch", false, false);
    return call_original(L);
}

/* string.gsub under the pattern bound. */
static int sandbox_gsub(lua_State *L)
{
    check_pattern(L, "string.gsub", true, false);
    return call_original(L);
}

/* string.rep: its copying is charged, and an empty result is not built by
 * looping up to n times in C. */
static int sandbox_rep(lua_State *L)
{
    size_t length = 0, separator = 0;
    int ok = 0;
    lua_Integer n = lua_tointegerx(L, 2, &ok);
    if (ok && lua_isstring(L, 1) && (lua_isnoneornil(L, 3) || lua_isstring(L, 3))) {
        lua_tolstring(L, 1, &length);
        if (!lua_isnoneornil(L, 3))
            lua_tolstring(L, 3, &separator);
        if (n > 0 && length + separator == 0) {
            lua_pushliteral(L, "");
            return 1;
        }
        if (n > 0)
            charge(L, (double)n * ((double)length + (double)separator) /
                          BYTES_PER_INSTRUCTION, "string.rep");
    }
    return call_original(L);
}

/* The length of the table argument `index` (through __len), or -1 if it is
 * not a table (the function will refuse it). */
static double table_length(lua_State *L, int index)
{
    if (lua_type(L, index) != LUA_TTABLE)
        return -1;
    return (double)luaL_len(L, index);
}

/* An integer argument, or `otherwise` if absent; NAN if it is not an
 * integer (the function will refuse it). */
static double integer_argument(lua_State *L, int index, double otherwise)
{
    if (lua_isnoneornil(L, index))
        return otherwise;
    int ok = 0;
    lua_Integer value = lua_tointegerx(L, index, &ok);
    return ok ? (double)value : NAN;
}

/* Charges a loop over the elements first..last of a table (none if either
 * is NAN or the range is empty). */
static void charge_range(lua_State *L, double first, double last, const char *what)
{
    if (first <= last)
        charge(L, last - first + 1, what);
}

/* table.move(a1, f, e, t [, a2]): charged per element moved. */
static int sandbox_move(lua_State *L)
{
    charge_range(L, integer_argument(L, 2, NAN), integer_argument(L, 3, NAN), "table.move");
    return call_original(L);
}

/* table.insert(t, [pos,] v): charged per element shifted up. */
static int sandbox_insert(lua_State *L)
{
    if (lua_gettop(L) == 3) {
        double length = table_length(L, 1);
        double pos = integer_argument(L, 2, NAN);
        if (length >= 0 && pos >= 1)
            charge_range(L, pos + 1, length + 1, "table.insert");
    }
    return call_original(L);
}

/* table.remove(t [, pos]): charged per element shifted down. */
static int sandbox_remove(lua_State *L)
{
    double length = table_length(L, 1);
    double pos = integer_argument(L, 2, length);
    if (length >= 0 && pos >= 1)
        charge_range(L, pos + 1, length, "table.remove");
    return call_original(L);
}

/* table.concat(t [, sep [, i [, j]]]): charged per element joined. */
static int sandbox_concat(lua_State *L)
{
    double last = lua_isnoneornil(L, 4) ? table_length(L, 1) : integer_argument(L, 4, NAN);
    charge_range(L, integer_argument(L, 3, 1), last, "table.concat");
    return call_original(L);
}

/* table.unpack(t [, i [, j]]): charged per element pushed (the function
 * refuses more than the Lua stack holds). */
static int sandbox_unpack(lua_State *L)
{
    double last = lua_isnoneornil(L, 3) ? table_length(L, 1) : integer_argument(L, 3, NAN);
    double first = integer_argument(L, 2, 1);
    if (first <= last && last - first < 1e6)
        charge_range(L, first, last, "table.unpack");
    return call_original(L);
}

/* table.sort(t [, comp]): charged n log2 n comparisons (a Lua comp is
 * also counted as it runs). */
static int sandbox_sort(lua_State *L)
{
    double n = table_length(L, 1);
    if (n > 1 && n < 2147483647.0) {
        double log = 1;
        for (double k = n; k > 2; k /= 2)
            log++;
        charge(L, n * log, "table.sort");
    }
    return call_original(L);
}

/* setmetatable without finalizers: Lua runs __gc with hooks off, so one
 * could loop past every budget (and inside lua_close).  Lua marks a table
 * for finalization only here, by a raw __gc in the new metatable, so adding
 * __gc later finalizes nothing. */
static int sandbox_setmetatable(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        bool finalizer = lua_rawget(L, 2) != LUA_TNIL;
        lua_pop(L, 1);
        if (finalizer)
            luaL_error(L, "setmetatable: a metatable with __gc is refused in the template "
                          "sandbox (finalizers run outside the instruction budget)");
    }
    return call_original(L);
}

/* A wrapper and the field it replaces. */
typedef struct wrapper {
    const char *name;
    lua_CFunction function;
} wrapper;

/* Pushes a sandboxed copy of the library table `library` (a global): its
 * fields, the wrapped ones replaced, the `removed` ones left out.  The
 * original table stays in package.loaded, out of the templates' reach,
 * where Lua finds the originals' names for their argument errors. */
static void push_sandboxed_library(lua_State *L, const char *library,
                                   const wrapper *wrappers,
                                   const char *const *removed)
{
    lua_getglobal(L, library);
    int original = lua_gettop(L);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, original)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_settable(L, -4);
    }
    for (const wrapper *w = wrappers; w && w->name; w++) {
        lua_getfield(L, original, w->name);
        lua_pushcclosure(L, w->function, 1);
        lua_setfield(L, -2, w->name);
    }
    for (const char *const *name = removed; name && *name; name++) {
        lua_pushnil(L);
        lua_setfield(L, -2, *name);
    }
    lua_remove(L, original);
}

/* Copies the named fields of the table at `from` into the table on top. */
static void copy_fields(lua_State *L, int from, const char *const *names)
{
    for (const char *const *name = names; *name; name++) {
        lua_getfield(L, from, *name);
        lua_setfield(L, -2, *name);
    }
}

/* Builds the root environment: a whitelist of the base, string, table,
 * math and utf8 libraries, without anything that reaches outside (no io,
 * os, debug, load, require, dofile, string.dump, collectgarbage, pcall) or
 * that is not deterministic (math.random), with the functions that could
 * run unbounded wrapped (see the file comment). */
static void push_root_environment(lua_State *L)
{
    static const char *const base[] = {
        "assert", "error", "ipairs", "next", "pairs", "rawequal", "rawget",
        "rawlen", "rawset", "select", "getmetatable", "tonumber", "tostring",
        "type", NULL};
    static const luaL_Reg libraries[] = {
        {LUA_GNAME, luaopen_base}, {LUA_STRLIBNAME, luaopen_string},
        {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
        {LUA_UTF8LIBNAME, luaopen_utf8}, {NULL, NULL}};
    static const wrapper string_wrappers[] = {
        {"find", sandbox_find}, {"match", sandbox_match}, {"gmatch", sandbox_gmatch},
        {"gsub", sandbox_gsub}, {"rep", sandbox_rep}, {NULL, NULL}};
    static const wrapper table_wrappers[] = {
        {"move", sandbox_move}, {"insert", sandbox_insert}, {"remove", sandbox_remove},
        {"concat", sandbox_concat}, {"unpack", sandbox_unpack}, {"sort", sandbox_sort},
        {NULL, NULL}};
    static const char *const string_removed[] = {"dump", NULL};
    static const char *const math_removed[] = {"random", "randomseed", NULL};
    for (const luaL_Reg *library = libraries; library->name; library++) {
        luaL_requiref(L, library->name, library->func, 1);
        lua_pop(L, 1);
    }
    lua_newtable(L); /* the environment */
    lua_pushglobaltable(L);
    int globals = lua_gettop(L);
    lua_pushvalue(L, -2);
    copy_fields(L, globals, base);
    lua_getfield(L, globals, "setmetatable");
    lua_pushcclosure(L, sandbox_setmetatable, 1);
    lua_setfield(L, -2, "setmetatable");
    /* strings share one metatable: its __index must be the sandbox's table */
    push_sandboxed_library(L, LUA_STRLIBNAME, string_wrappers, string_removed);
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 2);
    lua_setfield(L, -2, LUA_STRLIBNAME);
    push_sandboxed_library(L, LUA_TABLIBNAME, table_wrappers, NULL);
    lua_setfield(L, -2, LUA_TABLIBNAME);
    push_sandboxed_library(L, LUA_MATHLIBNAME, NULL, math_removed);
    lua_setfield(L, -2, LUA_MATHLIBNAME);
    push_sandboxed_library(L, LUA_UTF8LIBNAME, NULL, NULL);
    lua_setfield(L, -2, LUA_UTF8LIBNAME);
    lua_pushcfunction(L, lua_emit);
    lua_setfield(L, -2, "_emit");
    lua_pushcfunction(L, lua_include);
    lua_setfield(L, -2, "include");
    lua_pushcfunction(L, lua_import);
    lua_setfield(L, -2, "import");
    lua_pop(L, 2); /* the copy and the globals; the environment stays */
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, REGISTRY_ROOT);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, REGISTRY_MODULES);
}

/* Whether an error message starts with a position, "chunk:line:". */
static bool has_position(const char *message)
{
    for (const char *colon = strchr(message, ':'); colon; colon = strchr(colon + 1, ':')) {
        if (memchr(message, '\n', (size_t)(colon - message)))
            return false;
        size_t digits = strspn(colon + 1, "0123456789");
        if (digits > 0 && colon[1 + digits] == ':')
            return true;
    }
    return false;
}

/* The message handler: gives every error the template line it happened
 * at (errors raised in C, or with level 0, have none) and turns error
 * values that are not strings into messages (their __tostring is not run:
 * it would be Lua code inside the handler). */
static int message_handler(lua_State *L)
{
    char where[WHERE_MAX];
    find_location(L, 1, where, sizeof where);
    int type = lua_type(L, 1);
    if (type == LUA_TSTRING) {
        const char *message = lua_tostring(L, 1);
        if (!has_position(message))
            lua_pushfstring(L, "%s%s", where, message);
    } else if (type == LUA_TNUMBER) {
        lua_pushvalue(L, 1);
        lua_pushfstring(L, "%serror object is a number: %s", where, lua_tostring(L, -1));
    } else {
        lua_pushfstring(L, "%serror object is a %s value", where, luaL_typename(L, 1));
    }
    return 1;
}

/* The protected body of a render: environment, fill, run, collect. */
static int render_main(lua_State *L)
{
    render_state *s = state_of(L);
    const render_request *request = s->request;
    push_root_environment(L);
    int env = lua_gettop(L);
    if (request->fill) {
        s->status = request->fill(L, env, request->context, s->error);
        if (s->status != SEPCONV_OK)
            return 0;
    }
    load_template(L, request->template_name, env);
    lua_call(L, 0, 0);
    if (request->collect)
        s->status = request->collect(L, env, request->context, s->error);
    return 0;
}

/* Checks that a template directory exists and is a directory: a mistyped
 * one would silently give the built-in templates. */
static sepconv_status check_template_dir(const render_request *request,
                                         sepconv_error *error)
{
    const char *dir = request->template_dir;
    const char *origin = request->template_dir_origin ? request->template_dir_origin
                                                      : "the render request";
    struct stat info;
    if (stat(dir, &info) != 0)
        return sepconv_fail(error, SEPCONV_IO,
                            "template directory '%s' (from %s) cannot be used: %s", dir,
                            origin, strerror(errno));
    if (!S_ISDIR(info.st_mode))
        return sepconv_fail(error, SEPCONV_INVALID,
                            "template directory '%s' (from %s) is not a directory", dir,
                            origin);
    return SEPCONV_OK;
}

/* Fills `error` for a render whose pcall failed with `result`. */
static sepconv_status render_failure(lua_State *L, const render_state *s, int result,
                                     sepconv_error *error)
{
    const render_request *request = s->request;
    /* a memory error has no message handler: the line is the one recorded
     * by the allocator or, failing that, the hook; an error outside any
     * template (in a callback) is the top template's */
    char name[WHERE_MAX];
    snprintf(name, sizeof name, "%s: ", request->template_name);
    const char *where = s->where[0] ? s->where : name;
    if (s->out_of_time && (result == LUA_ERRMEM || result == LUA_ERRERR))
        return sepconv_fail(error, SEPCONV_LIMIT,
                            "%sthe template ran past its time limit of %lld ms", where,
                            (long long)time_limit(s));
    if (result == LUA_ERRMEM && !s->out_of_memory)
        return sepconv_fail(error, SEPCONV_NOMEM,
                            "%sout of memory: the system refused an allocation (%zu bytes "
                            "of Lua memory in use)", where, s->memory_used);
    if (result == LUA_ERRMEM || (result == LUA_ERRERR && s->out_of_memory)) {
        size_t bytes = request->limits.memory_bytes;
        return sepconv_fail(error, SEPCONV_LIMIT,
                            "%sout of memory: the template needed more than its %zu "
                            "bytes of Lua memory (the template sandbox allows %.1f MiB)",
                            where, bytes, (double)bytes / (1 << 20));
    }
    const char *message = lua_tostring(L, -1);
    if (result == LUA_ERRERR || !message)
        return sepconv_fail(error, SEPCONV_TEMPLATE,
                            "%san error happened while reporting an error (%s)", name,
                            message ? message : "no message");
    sepconv_status status = s->out_of_instructions || s->out_of_output || s->out_of_time
                                ? SEPCONV_LIMIT : SEPCONV_TEMPLATE;
    if (has_position(message))
        return sepconv_fail(error, status, "%s", message);
    return sepconv_fail(error, status, "%s%s", name, message);
}

/* Renders a template in a fresh sandboxed Lua state. */
sepconv_status render_template(const render_request *request, char **text,
                               size_t *length, sepconv_error *error)
{
    if (!request || !request->template_name || !text || !length)
        return sepconv_fail(error, SEPCONV_INVALID, "render: missing arguments");
    *text = NULL;
    if (request->template_dir) {
        sepconv_status status = check_template_dir(request, error);
        if (status != SEPCONV_OK)
            return status;
    }
    render_state s = {.request = request, .status = SEPCONV_OK, .error = error,
                      .instructions_left = request->limits.instructions};
    clock_gettime(CLOCK_MONOTONIC, &s.deadline);
    int64_t ms = time_limit(&s);
    s.deadline.tv_sec += (time_t)(ms / 1000);
    s.deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (s.deadline.tv_nsec >= 1000000000L) {
        s.deadline.tv_sec++;
        s.deadline.tv_nsec -= 1000000000L;
    }
    lua_State *L = lua_newstate(sandbox_alloc, &s);
    if (!L)
        return sepconv_fail(error, SEPCONV_NOMEM, "cannot create a Lua state");
    *(render_state **)lua_getextraspace(L) = &s;
    s.L = L;
    lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_STEP);
    lua_pushcfunction(L, message_handler);
    lua_pushcfunction(L, render_main);
    int result = lua_pcall(L, 0, 0, 1);
    sepconv_status status =
        result == LUA_OK ? s.status : render_failure(L, &s, result, error);
    lua_close(L);
    if (request->over_size_budget)
        *request->over_size_budget = status != SEPCONV_OK && s.out_of_output;
    if (status != SEPCONV_OK) {
        free(s.out);
        return status;
    }
    if (!s.out) {
        s.out = malloc(1);
        if (!s.out)
            return sepconv_fail(error, SEPCONV_NOMEM, "out of memory");
    }
    s.out[s.length] = '\0';
    *text = s.out;
    *length = s.length;
    return SEPCONV_OK;
}
