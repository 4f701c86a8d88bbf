/*
 * elf_imports.c -- what a 64-bit ELF shared object takes from elsewhere: the
 * symbols it leaves undefined and the libraries it needs, read from its
 * section headers with every offset bounds-checked, before it is loaded.
 */
#include <elf.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "backend/backend.h"

/* The only symbols an object may leave undefined: gcc and clang emit calls
 * to these four on their own, even for freestanding code (clang turns
 * copy loops into memcpy), and they only move and compare memory. */
static const char *const allowed_imports[] = {"memcpy", "memmove", "memset", "memcmp",
                                              NULL};

/* Whether an undefined symbol is one of the allowed four. */
static bool allowed_import(const char *name)
{
    for (const char *const *allowed = allowed_imports; *allowed; allowed++)
        if (strcmp(name, *allowed) == 0)
            return true;
    return false;
}

/* Whether [offset, offset+size) lies inside `length` bytes. */
static bool inside(uint64_t offset, uint64_t size, size_t length)
{
    return offset <= length && size <= length - offset;
}

/* A section header of an ELF image, bounds-checked. */
static bool section(const char *bytes, size_t length, const Elf64_Ehdr *header,
                    unsigned index, Elf64_Shdr *out)
{
    if (index >= header->e_shnum)
        return false;
    memcpy(out, bytes + header->e_shoff + (uint64_t)index * sizeof *out, sizeof *out);
    return inside(out->sh_offset, out->sh_type == SHT_NOBITS ? 0 : out->sh_size, length);
}

/* A NUL-terminated name at `offset` of a string table, or NULL. */
static const char *table_name(const char *bytes, const Elf64_Shdr *strings, uint64_t offset)
{
    if (offset >= strings->sh_size)
        return NULL;
    const char *name = bytes + strings->sh_offset + offset;
    return memchr(name, '\0', strings->sh_size - offset) ? name : NULL;
}

/* Looks in one dynamic symbol table or dynamic section for what the object
 * takes from elsewhere: an undefined symbol or a needed library. */
static bool section_import(const char *bytes, size_t length, const Elf64_Ehdr *header,
                           const Elf64_Shdr *table, char *name, size_t capacity)
{
    Elf64_Shdr strings;
    if (!section(bytes, length, header, table->sh_link, &strings))
        return snprintf(name, capacity, "(a damaged string table)"), true;
    size_t entry = table->sh_type == SHT_DYNSYM ? sizeof(Elf64_Sym) : sizeof(Elf64_Dyn);
    for (uint64_t at = 0; at + entry <= table->sh_size; at += entry) {
        const char *found = NULL;
        if (table->sh_type == SHT_DYNSYM) {
            Elf64_Sym symbol;
            memcpy(&symbol, bytes + table->sh_offset + at, sizeof symbol);
            if (symbol.st_shndx == SHN_UNDEF && symbol.st_name != 0) {
                found = table_name(bytes, &strings, symbol.st_name);
                if (!found)
                    found = "(a damaged symbol name)";
                else if (allowed_import(found))
                    found = NULL;
            }
        } else {
            Elf64_Dyn dynamic;
            memcpy(&dynamic, bytes + table->sh_offset + at, sizeof dynamic);
            if (dynamic.d_tag == DT_NEEDED)
                found = table_name(bytes, &strings, dynamic.d_un.d_val);
        }
        if (found && found[0]) {
            snprintf(name, capacity, "%s", found);
            return true;
        }
    }
    return false;
}

/* Whether a shared object imports anything (a symbol it leaves undefined,
 * a library it needs) or is not an object we can read; names it. */
bool sepconv_elf_imports(const char *bytes, size_t length, char *name, size_t capacity)
{
    Elf64_Ehdr header;
    if (length < sizeof header)
        return snprintf(name, capacity, "(not an ELF object)"), true;
    memcpy(&header, bytes, sizeof header);
    if (memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 ||
        header.e_ident[EI_CLASS] != ELFCLASS64 || header.e_shentsize != sizeof(Elf64_Shdr) ||
        header.e_shnum == 0 ||
        !inside(header.e_shoff, (uint64_t)header.e_shnum * sizeof(Elf64_Shdr), length))
        return snprintf(name, capacity, "(not a 64-bit ELF object with sections)"), true;
    for (unsigned i = 0; i < header.e_shnum; i++) {
        Elf64_Shdr table;
        if (!section(bytes, length, &header, i, &table))
            return snprintf(name, capacity, "(a damaged section)"), true;
        if ((table.sh_type == SHT_DYNSYM || table.sh_type == SHT_DYNAMIC) &&
            section_import(bytes, length, &header, &table, name, capacity))
            return true;
    }
    return false;
}
