/*
 * fuzz_template.c -- the template engine on arbitrary templates: every run
 * ends in output or an error, within the instruction, memory, output and
 * time budgets; nothing escapes the sandbox.
 */
#include <stdlib.h>
#include <string.h>

#include "generate/render.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    render_request request = {.template_name = "fuzz.c.in", .template_text = text,
                              .limits = {.memory_bytes = (size_t)16 << 20,
                                         .instructions = 2000000,
                                         .output_bytes = (size_t)1 << 16,
                                         .milliseconds = 5000}};
    char *out = NULL;
    size_t length = 0;
    sepconv_error error;
    if (render_template(&request, &out, &length, &error) == SEPCONV_OK) {
        if (length > request.limits.output_bytes || strlen(out) > length)
            abort();
        free(out);
    } else if (error.message[0] == '\0') {
        abort();
    }
    free(text);
    return 0;
}
