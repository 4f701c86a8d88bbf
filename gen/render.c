/*
 * render.c -- the template engine: translates C-with-Lua templates into Lua
 * chunks and runs them in a sandboxed Lua state with memory, instruction
 * and output budgets.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "internal.h"
#include "render.h"

#define HOOK_STEP 10000                /* instructions between budget checks */
#define TEMPLATE_FILE_MAX ((size_t)1 << 20)
#define REGISTRY_ROOT "sepconv.root"   /* the root environment */
#define REGISTRY_MODULES "sepconv.modules" /* import() results by name */

/* Everything one render owns; reached from Lua through the extra space. */
typedef struct render_state {
    const render_request *request;
    size_t memory_used;
    int64_t instructions_left;
    bool out_of_instructions, out_of_output;
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
                           .output_bytes = (size_t)4 << 20};
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

/* The Lua allocator: plain malloc under a cap on the total. */
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
    if (new_size > old &&
        new_size - old > s->request->limits.memory_bytes - s->memory_used)
        return NULL;
    void *grown = realloc(block, new_size);
    if (grown)
        s->memory_used = s->memory_used - old + new_size;
    return grown;
}

/* The count hook: stops a template that runs past its instruction budget. */
static void count_hook(lua_State *L, lua_Debug *debug)
{
    render_state *s = state_of(L);
    s->instructions_left -= HOOK_STEP;
    if (s->instructions_left >= 0)
        return;
    s->out_of_instructions = true;
    lua_Debug where;
    if (lua_getstack(L, 0, &where) && lua_getinfo(L, "Sl", &where) &&
        where.currentline > 0)
        lua_pushfstring(L, "%s:%d: ", where.short_src, where.currentline);
    else
        lua_pushliteral(L, "");
    (void)debug;
    lua_pushfstring(L, "the template ran past its budget of %I instructions "
                       "(an endless loop?)",
                    (lua_Integer)s->request->limits.instructions);
    lua_concat(L, 2);
    lua_error(L);
}

/* Appends generated text, enforcing the output budget. */
static void output_add(lua_State *L, render_state *s, const char *text,
                       size_t count)
{
    size_t budget = s->request->limits.output_bytes;
    if (count > budget - s->length) {
        s->out_of_output = true;
        luaL_error(L, "the generated source would exceed the size budget of %I "
                      "bytes (%I MiB); use a smaller unroll or raise the budget",
                   (lua_Integer)budget, (lua_Integer)(budget >> 20));
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

/* include(name [, params]): renders another template in place, with the
 * params as its globals over the root environment. */
static int lua_include(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
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
    lua_getfield(L, LUA_REGISTRYINDEX, REGISTRY_ROOT);
    load_template(L, name, -1);
    lua_remove(L, -2);
    lua_call(L, 0, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, name);
    return 1;
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
 * that is not deterministic (math.random). */
static void push_root_environment(lua_State *L)
{
    static const char *const base[] = {
        "assert", "error", "ipairs", "next", "pairs", "rawequal", "rawget",
        "rawlen", "rawset", "select", "setmetatable", "getmetatable",
        "tonumber", "tostring", "type", NULL};
    static const luaL_Reg libraries[] = {
        {LUA_GNAME, luaopen_base}, {LUA_STRLIBNAME, luaopen_string},
        {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
        {LUA_UTF8LIBNAME, luaopen_utf8}, {NULL, NULL}};
    for (const luaL_Reg *library = libraries; library->name; library++) {
        luaL_requiref(L, library->name, library->func, 1);
        lua_pop(L, 1);
    }
    /* strings share one metatable whose __index is the real string table */
    lua_getglobal(L, LUA_STRLIBNAME);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    lua_getglobal(L, LUA_MATHLIBNAME);
    lua_pushnil(L);
    lua_setfield(L, -2, "random");
    lua_pushnil(L);
    lua_setfield(L, -2, "randomseed");
    lua_pop(L, 1);

    lua_newtable(L); /* the environment */
    lua_pushglobaltable(L);
    int globals = lua_gettop(L);
    lua_pushvalue(L, -2);
    copy_fields(L, globals, base);
    static const char *const tables[] = {LUA_STRLIBNAME, LUA_TABLIBNAME,
                                         LUA_MATHLIBNAME, LUA_UTF8LIBNAME, NULL};
    copy_fields(L, globals, tables);
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

/* Renders a template in a fresh sandboxed Lua state. */
sepconv_status render_template(const render_request *request, char **text,
                               size_t *length, sepconv_error *error)
{
    if (!request || !request->template_name || !text || !length)
        return sepconv_fail(error, SEPCONV_INVALID, "render: missing arguments");
    render_state s = {.request = request, .status = SEPCONV_OK, .error = error,
                      .instructions_left = request->limits.instructions};
    lua_State *L = lua_newstate(sandbox_alloc, &s);
    if (!L)
        return sepconv_fail(error, SEPCONV_NOMEM, "cannot create a Lua state");
    *(render_state **)lua_getextraspace(L) = &s;
    lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_STEP);
    lua_pushcfunction(L, render_main);
    int result = lua_pcall(L, 0, 0, 0);
    sepconv_status status = s.status;
    if (result != LUA_OK) {
        const char *message = lua_tostring(L, -1);
        if (!message)
            message = "(the error value is not a string)";
        if (result == LUA_ERRMEM)
            status = sepconv_fail(error, SEPCONV_LIMIT,
                                  "%s: the template needed more than its %zu "
                                  "bytes of Lua memory",
                                  request->template_name,
                                  request->limits.memory_bytes);
        else
            status = sepconv_fail(error,
                                  s.out_of_instructions || s.out_of_output
                                      ? SEPCONV_LIMIT : SEPCONV_TEMPLATE,
                                  "%s", message);
    }
    lua_close(L);
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
