/*
 * replay.c -- runs a fuzz target once on each file given (seed corpora and
 * kept crashes), without libFuzzer: `make test` replays them all, so every
 * crash ever found stays a regression test.
 */
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        FILE *file = fopen(argv[i], "rb");
        if (!file) {
            fprintf(stderr, "replay: cannot open %s\n", argv[i]);
            return 1;
        }
        unsigned char *data = malloc(1 << 20);
        size_t size = data ? fread(data, 1, 1 << 20, file) : 0;
        fclose(file);
        LLVMFuzzerTestOneInput(data, size);
        free(data);
    }
    printf("replayed %d inputs\n", argc - 1);
    return 0;
}
