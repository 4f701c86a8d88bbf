/*
 * test_layer.c -- the layer spec: every key, defaults, derived sizes, the
 * canonical form's round trip, every rejection, model files.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests.h"

/* Asserts that `spec` is refused with a message containing `fragment`. */
static void assert_refused(const char *spec, const char *fragment)
{
    char message[SEPCONV_MESSAGE_MAX];
    refuse_layer(spec, message, sizeof message);
    ck_assert_msg(strstr(message, fragment) != NULL,
                  "'%s': message '%s' lacks '%s'", spec, message, fragment);
}

START_TEST(defaults_of_a_minimal_sep)
{
    sepconv_layer l = parse_layer("df=112 m=32 n=64 dk=3");
    ck_assert_int_eq(l.op, SEPCONV_OP_SEP);
    ck_assert_int_eq(l.batch, 1);
    ck_assert_int_eq(l.stride, 1);
    ck_assert_int_eq(l.dilation, 1);
    ck_assert_int_eq(l.multiplier, 1);
    ck_assert_int_eq(l.padding, SEPCONV_PAD_SAME);
    ck_assert_int_eq(l.layout, SEPCONV_LAYOUT_NHWC);
    ck_assert_int_eq(l.bias, 0);
    ck_assert_int_eq(l.dw_act, SEPCONV_ACT_NONE);
    ck_assert_int_eq(l.pw_act, SEPCONV_ACT_NONE);
    ck_assert_int_eq(l.out_h, 112);
    ck_assert_int_eq(l.out_w, 112);
    ck_assert_int_eq(l.pad_top, 1);
    ck_assert_int_eq(l.pad_bottom, 1);
    ck_assert_int_eq(l.input_elements, 112 * 112 * 32);
    ck_assert_int_eq(l.mid_elements, 112 * 112 * 32);
    ck_assert_int_eq(l.output_elements, 112 * 112 * 64);
    ck_assert_int_eq(l.weight_elements, 9 * 32);
    ck_assert_int_eq(l.pw_weight_elements, 32 * 64);
    ck_assert_int_eq(l.bias_elements, 0);
}
END_TEST

START_TEST(every_key_is_read)
{
    sepconv_layer l = parse_layer(
        "op=dw,name=block-1.a h=9 w=7 m=3 dk=2 batch=4 stride=2 dilation=3 "
        "pad=1:2:3:4 mult=5 layout=nchw bias=1 dw_act=relu6");
    ck_assert_int_eq(l.op, SEPCONV_OP_DW);
    ck_assert_str_eq(l.name, "block-1.a");
    ck_assert_int_eq(l.in_h, 9);
    ck_assert_int_eq(l.in_w, 7);
    ck_assert_int_eq(l.m, 3);
    ck_assert_int_eq(l.kernel, 2);
    ck_assert_int_eq(l.batch, 4);
    ck_assert_int_eq(l.stride, 2);
    ck_assert_int_eq(l.dilation, 3);
    ck_assert_int_eq(l.padding, SEPCONV_PAD_EXPLICIT);
    ck_assert_int_eq(l.pad_top, 1);
    ck_assert_int_eq(l.pad_left, 2);
    ck_assert_int_eq(l.pad_bottom, 3);
    ck_assert_int_eq(l.pad_right, 4);
    ck_assert_int_eq(l.multiplier, 5);
    ck_assert_int_eq(l.layout, SEPCONV_LAYOUT_NCHW);
    ck_assert_int_eq(l.bias, 1);
    ck_assert_int_eq(l.dw_act, SEPCONV_ACT_RELU6);
    /* extent (2-1)*3+1 = 4; h: (9+1+3-4)/2+1 = 5; w: (7+2+4-4)/2+1 = 5 */
    ck_assert_int_eq(l.out_h, 5);
    ck_assert_int_eq(l.out_w, 5);
    ck_assert_int_eq(l.mid_c, 15);
    ck_assert_int_eq(l.out_c, 15);
    ck_assert_int_eq(l.weight_elements, 2 * 2 * 15);
    ck_assert_int_eq(l.bias_elements, 15);
    ck_assert_int_eq(l.output_elements, 4 * 5 * 5 * 15);
}
END_TEST

START_TEST(ops_conv_and_pw)
{
    sepconv_layer conv = parse_layer("op=conv df=224 m=3 n=32 dk=3 stride=2 act=relu");
    ck_assert_int_eq(conv.out_h, 112);
    ck_assert_int_eq(conv.weight_elements, 3 * 3 * 3 * 32);
    ck_assert_int_eq(conv.conv_act, SEPCONV_ACT_RELU);
    sepconv_layer pw = parse_layer("op=pw df=1 m=1024 n=1000 bias=1 act=relu");
    ck_assert_int_eq(pw.kernel, 1);
    ck_assert_int_eq(pw.out_h, 1);
    ck_assert_int_eq(pw.weight_elements, 1024 * 1000);
    ck_assert_int_eq(pw.bias_elements, 1000);
    ck_assert_int_eq(pw.pw_act, SEPCONV_ACT_RELU);
    sepconv_layer explicit_dk = parse_layer("op=pw df=4 m=2 n=2 dk=1");
    ck_assert_int_eq(explicit_dk.kernel, 1);
}
END_TEST

START_TEST(activations_per_stage)
{
    sepconv_layer both = parse_layer("df=8 m=4 n=4 dk=3 act=relu6");
    ck_assert_int_eq(both.dw_act, SEPCONV_ACT_RELU6);
    ck_assert_int_eq(both.pw_act, SEPCONV_ACT_RELU6);
    sepconv_layer over = parse_layer("df=8 m=4 n=4 dk=3 pw_act=none act=relu");
    ck_assert_int_eq(over.dw_act, SEPCONV_ACT_RELU);
    ck_assert_int_eq(over.pw_act, SEPCONV_ACT_NONE);
    sepconv_layer dw_only = parse_layer("df=8 m=4 n=4 dk=3 dw_act=relu");
    ck_assert_int_eq(dw_only.dw_act, SEPCONV_ACT_RELU);
    ck_assert_int_eq(dw_only.pw_act, SEPCONV_ACT_NONE);
}
END_TEST

START_TEST(padding_modes)
{
    /* same: out = ceil(in/stride); extra padding at the bottom/right */
    sepconv_layer same = parse_layer("op=dw df=112 m=1 dk=3 stride=2");
    ck_assert_int_eq(same.out_h, 56);
    ck_assert_int_eq(same.pad_top, 0);
    ck_assert_int_eq(same.pad_bottom, 1);
    sepconv_layer same5 = parse_layer("op=dw df=7 m=1 dk=5 stride=1");
    ck_assert_int_eq(same5.pad_top, 2);
    ck_assert_int_eq(same5.pad_bottom, 2);
    ck_assert_int_eq(same5.out_h, 7);
    sepconv_layer valid = parse_layer("op=dw df=7 m=1 dk=3 pad=valid stride=2");
    ck_assert_int_eq(valid.out_h, 3);
    ck_assert_int_eq(valid.pad_top + valid.pad_left, 0);
    sepconv_layer one = parse_layer("op=dw df=5 m=1 dk=3 pad=2");
    ck_assert_int_eq(one.pad_top, 2);
    ck_assert_int_eq(one.pad_right, 2);
    ck_assert_int_eq(one.out_h, 7);
    /* kernel larger than the input, made possible by padding */
    sepconv_layer big = parse_layer("op=dw df=2 m=1 dk=5");
    ck_assert_int_eq(big.out_h, 2);
    ck_assert_int_eq(big.pad_top, 2);
    ck_assert_int_eq(big.pad_bottom, 2);
}
END_TEST

/* The canonical form of `spec` must parse to a layer printing the same. */
static void assert_round_trip(const char *spec)
{
    sepconv_layer first = parse_layer(spec);
    char canonical[1024], again[1024];
    ck_assert_int_eq(sepconv_layer_format(&first, canonical, sizeof canonical, NULL),
                     SEPCONV_OK);
    sepconv_layer second = parse_layer(canonical);
    ck_assert_int_eq(sepconv_layer_format(&second, again, sizeof again, NULL),
                     SEPCONV_OK);
    ck_assert_str_eq(canonical, again);
    ck_assert_int_eq(memcmp(&first, &second, sizeof first), 0);
}

START_TEST(canonical_round_trip)
{
    assert_round_trip("df=112 m=32 n=64 dk=3");
    assert_round_trip("op=dw name=x h=9 w=7 m=3 dk=2 batch=4 stride=2 dilation=3 "
                      "pad=1:2:3:4 mult=5 layout=nchw bias=1 act=relu6");
    assert_round_trip("op=conv df=5 m=2 n=3 dk=3 pad=1 act=relu");
    assert_round_trip("op=pw df=7 m=8 n=9 stride=2 pad=valid bias=1");
    assert_round_trip("op=sep df=9 m=3 n=4 dk=3 dw_act=relu6 pw_act=relu mult=2");
    assert_round_trip("op=sep df=9 m=3 n=4 dk=3 dw_act=relu pw_act=relu");
}
END_TEST

START_TEST(canonical_text)
{
    sepconv_layer l = parse_layer("n=64 m=32 df=112 dk=3 act=relu6 bias=1");
    char text[512];
    ck_assert_int_eq(sepconv_layer_format(&l, text, sizeof text, NULL), SEPCONV_OK);
    ck_assert_str_eq(text, "op=sep df=112 m=32 n=64 dk=3 batch=1 stride=1 "
                           "dilation=1 mult=1 pad=same layout=nhwc bias=1 act=relu6");
    char tiny[8];
    sepconv_error error;
    ck_assert_int_eq(sepconv_layer_format(&l, tiny, sizeof tiny, &error),
                     SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "does not fit"));
}
END_TEST

START_TEST(rejects_unknown_and_malformed_tokens)
{
    assert_refused("df=8 m=4 n=4 dk=3 colour=red", "unknown key 'colour'");
    assert_refused("df=8 m=4 n=4 dk=3 banana", "not a key=value token");
    assert_refused("df=8 m=4 n=4 dk=3 =3", "not a key=value token");
    assert_refused("df=8 m=4 m=5 n=4 dk=3", "'m' is given twice");
    assert_refused("", "empty spec");
    assert_refused(" , ", "empty spec");
    assert_refused("op=fft df=8 m=4 n=4 dk=3", "op=fft is not valid");
    assert_refused("layout=nwhc df=8 m=4 n=4 dk=3", "expected nhwc | nchw");
    assert_refused("act=gelu df=8 m=4 n=4 dk=3", "expected none | relu | relu6");
    assert_refused("bias=2 df=8 m=4 n=4 dk=3", "bias=2 is out of range");
    assert_refused("name=a/b df=8 m=4 n=4 dk=3", "name=a/b is not valid");
}
END_TEST

START_TEST(rejects_missing_keys)
{
    assert_refused("m=4 n=4 dk=3", "missing key 'h'");
    assert_refused("h=4 m=4 n=4 dk=3", "missing key 'w'");
    assert_refused("df=8 n=4 dk=3", "missing key 'm'");
    assert_refused("df=8 m=4 dk=3", "missing key 'n'");
    assert_refused("df=8 m=4 n=4", "missing key 'dk'");
    assert_refused("op=conv df=8 m=4 n=4", "missing key 'dk'");
    assert_refused("df=8 h=8 m=4 n=4 dk=3", "either df");
}
END_TEST

START_TEST(rejects_bad_numbers)
{
    const char *keys[] = {"df", "m", "n", "dk", "batch", "stride", "dilation", "mult"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *bad[] = {"0", "-3", "abc", "1.5", "", "99999999999999999999",
                             "2147483648"};
        for (size_t j = 0; j < sizeof bad / sizeof bad[0]; j++) {
            char spec[256], expected[64];
            /* put the bad key first so it is the one the parser meets */
            snprintf(spec, sizeof spec, "%s=%s df=8 m=4 n=4 dk=3", keys[i], bad[j]);
            snprintf(expected, sizeof expected, "%s=%s", keys[i], bad[j]);
            assert_refused(spec, expected);
            assert_refused(spec, "1..2147483647");
        }
    }
    assert_refused("pad=-1 df=8 m=4 n=4 dk=3", "0..2147483647");
    assert_refused("pad=1:2 df=8 m=4 n=4 dk=3", "has 2 sides");
    assert_refused("pad=1:2:3:4:5 df=8 m=4 n=4 dk=3", "T:L:B:R");
    assert_refused("pad=x df=8 m=4 n=4 dk=3", "pad=x is not an integer");
}
END_TEST

START_TEST(rejects_keys_an_op_cannot_use)
{
    assert_refused("op=dw df=8 m=4 n=4 dk=3", "'n' does not apply to op=dw");
    assert_refused("op=pw df=8 m=4 n=4 dk=3", "dk=3 does not apply to op=pw");
    assert_refused("op=pw df=8 m=4 n=4 dilation=2", "does not apply to op=pw");
    assert_refused("op=pw df=8 m=4 n=4 mult=2", "mult=2 does not apply to op=pw");
    assert_refused("op=conv df=8 m=4 n=4 dk=3 mult=2", "does not apply to op=conv");
    assert_refused("op=conv df=8 m=4 n=4 dk=3 dw_act=relu", "'dw_act' does not apply");
    assert_refused("op=dw df=8 m=4 dk=3 pw_act=relu", "'pw_act' does not apply");
    assert_refused("op=pw df=8 m=4 n=4 dw_act=relu", "'dw_act' does not apply");
}
END_TEST

START_TEST(rejects_kernel_larger_than_padded_input)
{
    assert_refused("op=dw df=3 m=1 dk=5 pad=valid", "larger than the padded input");
    assert_refused("op=dw df=3 m=1 dk=5 pad=0", "height 3 (3 + pad 0+0)");
    assert_refused("op=dw h=9 w=3 m=1 dk=3 dilation=2 pad=valid", "width 3");
    assert_refused("op=conv df=4 m=1 n=1 dk=3 dilation=2 pad=0:0:0:0", "extent 5");
}
END_TEST

START_TEST(rejects_overflowing_sizes)
{
    sepconv_error error;
    sepconv_layer layer;
    /* 2^31-1 squared times 2^31-1 channels: elements overflow 64 bits */
    ck_assert_int_eq(sepconv_layer_parse("op=dw df=2147483647 m=2147483647 dk=1",
                                         &layer, &error), SEPCONV_OVERFLOW);
    ck_assert_ptr_nonnull(strstr(error.message, "input tensor"));
    ck_assert_ptr_nonnull(strstr(error.message, "batch*h*w*m"));
    /* elements fit (2^31 * 2^31 = 2^62) but bytes (x4) do not */
    ck_assert_int_eq(sepconv_layer_parse("op=dw h=2147483647 w=2147483647 m=2 "
                                         "dk=1", &layer, &error), SEPCONV_OVERFLOW);
    ck_assert_ptr_nonnull(strstr(error.message, "bytes"));
    /* weights alone overflow: dk*dk*m*n */
    ck_assert_int_eq(sepconv_layer_parse("op=conv df=1 m=2147483647 n=2147483647 "
                                         "dk=2147483647 pad=same",
                                         &layer, &error), SEPCONV_OVERFLOW);
    ck_assert_ptr_nonnull(strstr(error.message, "dk*dk*m*n"));
    /* the intermediate tensor of sep */
    ck_assert_int_eq(sepconv_layer_parse("op=sep df=65536 m=2 n=1 dk=1 "
                                         "mult=2147483647", &layer, &error),
                     SEPCONV_OVERFLOW);
    ck_assert_ptr_nonnull(strstr(error.message, "m*mult"));
}
END_TEST

START_TEST(enum_names)
{
    ck_assert_str_eq(sepconv_op_name(SEPCONV_OP_SEP), "sep");
    ck_assert_str_eq(sepconv_layout_name(SEPCONV_LAYOUT_NCHW), "nchw");
    ck_assert_str_eq(sepconv_activation_name(SEPCONV_ACT_RELU6), "relu6");
    ck_assert_str_eq(sepconv_status_name(SEPCONV_OVERFLOW), "overflow");
}
END_TEST

START_TEST(model_text)
{
    sepconv_model model;
    sepconv_error error;
    const char *text = "# a comment\n\n"
                       "op=conv df=8 m=3 n=4 dk=3   # trailing comment\n"
                       "   \n"
                       "op=sep df=8 m=4 n=8 dk=3\r\n";
    ck_assert_int_eq(sepconv_model_parse(text, "t", &model, &error), SEPCONV_OK);
    ck_assert_uint_eq(model.count, 2);
    ck_assert_int_eq(model.layers[0].op, SEPCONV_OP_CONV);
    ck_assert_int_eq(model.layers[1].n, 8);
    sepconv_model_free(&model);
    ck_assert_ptr_null(model.layers);

    ck_assert_int_eq(sepconv_model_parse("op=sep df=8 m=4 n=8 dk=3\n\nop=dw df=8\n",
                                         "net.layers", &model, &error),
                     SEPCONV_INVALID);
    ck_assert_str_eq(error.message,
                     "net.layers:3: missing key 'm' (input channels M, 1..2147483647)");
    ck_assert_ptr_null(model.layers);
    ck_assert_int_eq(sepconv_model_parse("# nothing\n", "empty", &model, &error),
                     SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "no layers"));
}
END_TEST

START_TEST(model_files)
{
    sepconv_model model;
    sepconv_error error;
    ck_assert_int_eq(sepconv_model_load("/nonexistent/x.layers", &model, &error),
                     SEPCONV_IO);
    ck_assert_ptr_nonnull(strstr(error.message, "/nonexistent/x.layers: cannot open"));
    char path[] = "/tmp/sepconv-test-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char text[] = "op=dw df=4 m=2 dk=3\nop=dw df=4 m=2 dk=3 bias=7\n";
    ck_assert_int_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    ck_assert_int_eq(sepconv_model_load(path, &model, &error), SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, ":2: bias=7 is out of range"));
    unlink(path);
}
END_TEST

/* A layer's tensors: a page or more starts a page (input and output then
 * share their offset within a page, whatever malloc does), smaller ones a
 * cache line; all zeroed. */
START_TEST(buffers_are_placed_and_zeroed)
{
    sepconv_layer layer = parse_layer("op=sep df=14 m=64 n=32 dk=3 bias=1");
    sepconv_buffers b;
    ck_assert_int_eq(sepconv_buffers_alloc(&layer, &b, NULL), SEPCONV_OK);
    ck_assert_uint_eq((uintptr_t)b.input % 4096, 0);      /* 14*14*64 floats */
    ck_assert_uint_eq((uintptr_t)b.output % 4096, 0);     /* 14*14*32 */
    ck_assert_uint_eq((uintptr_t)b.pw_weights % 4096, 0); /* 64*32 = 2048 floats */
    ck_assert_uint_eq((uintptr_t)b.weights % 64, 0);      /* 576 floats */
    ck_assert_uint_eq((uintptr_t)b.bias % 64, 0);
    for (int64_t i = 0; i < layer.output_elements; i++)
        ck_assert(b.output[i] == 0.0f);
    for (int64_t i = 0; i < layer.input_elements; i++)
        ck_assert(b.input[i] == 0.0f);
    sepconv_buffers_free(&b);
}
END_TEST

Suite *layer_suite(void)
{
    Suite *suite = suite_create("layer");
    TCase *c = tcase_create("spec");
    tcase_add_test(c, defaults_of_a_minimal_sep);
    tcase_add_test(c, every_key_is_read);
    tcase_add_test(c, ops_conv_and_pw);
    tcase_add_test(c, activations_per_stage);
    tcase_add_test(c, padding_modes);
    tcase_add_test(c, canonical_round_trip);
    tcase_add_test(c, canonical_text);
    tcase_add_test(c, rejects_unknown_and_malformed_tokens);
    tcase_add_test(c, rejects_missing_keys);
    tcase_add_test(c, rejects_bad_numbers);
    tcase_add_test(c, rejects_keys_an_op_cannot_use);
    tcase_add_test(c, rejects_kernel_larger_than_padded_input);
    tcase_add_test(c, rejects_overflowing_sizes);
    tcase_add_test(c, enum_names);
    tcase_add_test(c, model_text);
    tcase_add_test(c, model_files);
    tcase_add_test(c, buffers_are_placed_and_zeroed);
    suite_add_tcase(suite, c);
    return suite;
}
