/*
 * jit_example.c -- builds one layer's kernel at run time through the
 * libsepconv API and uses it: describe, create (generate + compile with the
 * embedded tcc + verify), set the weights once, run.
 *
 *   cc jit_example.c $(pkg-config --cflags --libs sepconv) -o jit_example
 */
#include <stdio.h>
#include <stdlib.h>

#include <sepconv.h>

int main(void)
{
    sepconv_error error;
    sepconv_layer layer;
    /* MobileNet v1's 7th block: 14x14x512, 3x3 depthwise, 512 -> 512 */
    if (sepconv_layer_parse("op=sep df=14 m=512 n=512 dk=3 bias=1 act=relu6", &layer,
                            &error) != SEPCONV_OK) {
        fprintf(stderr, "layer: %s\n", error.message);
        return 1;
    }

    sepconv_kernel_options options = sepconv_kernel_defaults(); /* tcc, verified */
    options.threads = 0;                                         /* every core */
    sepconv_kernel *kernel = NULL;
    if (sepconv_kernel_create(&layer, &options, &kernel, &error) != SEPCONV_OK) {
        fprintf(stderr, "create: %s\n", error.message);
        return 1;
    }
    const sepconv_kernel_info *info = sepconv_kernel_get_info(kernel);
    printf("%s: generated in %.2f ms, compiled in %.2f ms, verified in %.1f ms\n",
           info->symbol, info->generate_seconds * 1e3, info->compile_seconds * 1e3,
           info->verify_seconds * 1e3);

    /* weights in the layout's convention (nhwc: dw [3][3][512][1], pw [512][512]) */
    sepconv_buffers buffers;
    if (sepconv_buffers_alloc(&layer, &buffers, &error) != SEPCONV_OK) {
        fprintf(stderr, "buffers: %s\n", error.message);
        sepconv_kernel_free(kernel);
        return 1;
    }
    sepconv_buffers_fill_random(&layer, &buffers, 2026);
    sepconv_tensors tensors = sepconv_buffers_tensors(&buffers);
    int status = sepconv_kernel_set_weights(kernel, &tensors, &error) != SEPCONV_OK ||
                 sepconv_kernel_run(kernel, buffers.input, buffers.output, &error) != SEPCONV_OK;
    if (status)
        fprintf(stderr, "run: %s\n", error.message);
    else
        printf("output[0..3] = %.4f %.4f %.4f %.4f\n", buffers.output[0],
               buffers.output[1], buffers.output[2], buffers.output[3]);
    sepconv_buffers_free(&buffers);
    sepconv_kernel_free(kernel);
    return status;
}
