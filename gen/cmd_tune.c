/*
 * cmd_tune.c -- `sepconv tune SPEC|FILE`: sweeps the schedule space of each
 * layer, shows progress, ranks the candidates, appends them to the log.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* How progress is shown: a redrawn bar on a terminal, lines otherwise. */
typedef struct progress_view {
    bool tty, quiet;
    const char *label;
} progress_view;

/* Shows one step of a sweep on stderr. */
static void show_progress(void *context, const sepconv_tune_progress *p)
{
    const progress_view *view = context;
    if (view->quiet)
        return;
    double eta = p->done ? p->elapsed_seconds / (double)p->done * (double)(p->total - p->done)
                         : 0.0;
    char best[96] = "none yet";
    if (p->best)
        snprintf(best, sizeof best, "%.3fx of default", p->best->ratio);
    if (view->tty) {
        int width = 24, filled = p->total ? (int)(width * p->done / p->total) : width;
        fprintf(stderr, "\r%-8s [%.*s%.*s] %zu/%zu  ETA %3.0fs  best %s   ", view->label,
                filled, "########################", width - filled,
                "........................", p->done, p->total, eta, best);
        if (p->done == p->total)
            fputc('\n', stderr);
    } else {
        fprintf(stderr, "%s %zu/%zu %s %s %s\n", view->label, p->done, p->total,
                strcmp(p->last->status, "ok") == 0 ? "ok" : "failed", p->last->schedule,
                best);
    }
    fflush(stderr);
}

/* Prints a layer's ranked table: the top `top` candidates and failures. */
static void print_ranking(const char *name, const sepconv_tune_result *r, int top)
{
    double flops = 2.0 * (double)r->macs;
    size_t failed = 0;
    for (size_t i = 0; i < r->count; i++)
        failed += strcmp(r->records[i].status, "ok") != 0;
    printf("%s: %s\n  default %.3f ms, reference %.2f ms, %zu candidates (%zu failed)\n",
           name, r->baseline.spec, r->baseline.median_ms, r->reference_ms, r->count, failed);
    printf("  %4s %8s %10s %7s %8s %10s %9s  %s\n", "rank", "ratio", "median ms", "spread",
           "GFLOP/s", "vs default", "vs ref", "schedule");
    for (size_t i = 0; i < r->count && (int)i < top; i++) {
        const sepconv_tune_record *c = &r->records[i];
        if (strcmp(c->status, "ok") != 0)
            break;
        /* the ratio was measured interleaved with the default in this run */
        double median = c->ratio * r->baseline.median_ms;
        printf("  %4zu %7.3fx %10.3f %6.1f%% %8.2f %9.2fx %8.1fx  %s\n", i + 1, c->ratio,
               median, c->spread * 100, flops / (median * 1e-3) / 1e9, 1.0 / c->ratio,
               r->reference_ms / median, c->schedule);
    }
    for (size_t i = 0; i < r->count; i++)
        if (strcmp(r->records[i].status, "ok") != 0) {
            printf("  failed: %s: %.160s\n", r->records[i].schedule, r->records[i].error);
            break; /* one example; the log has them all */
        }
}

/* Parses --shard I/N. */
static bool parse_shard(const char *text, int *shard, int *shards)
{
    long long i = 0, n = 0;
    char first[32], second[32];
    const char *slash = text ? strchr(text, '/') : NULL;
    if (!slash || (size_t)(slash - text) >= sizeof first || strlen(slash + 1) >= sizeof second)
        return false;
    snprintf(first, sizeof first, "%.*s", (int)(slash - text), text);
    snprintf(second, sizeof second, "%s", slash + 1);
    if (!cli_number(first, 0, 1 << 20, &i) || !cli_number(second, 1, 1 << 20, &n) || i >= n)
        return false;
    *shard = (int)i;
    *shards = (int)n;
    return true;
}

/* Parses the options of `sepconv tune`; returns CLI_OK or the usage code. */
static int parse_options(int argc, char **argv, cli_input *input, sepconv_tune_options *o,
                         cli_kernel_options *kernel, const char **only, int *top, bool *json,
                         progress_view *view)
{
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        bool missing = false;
        long long number = 0;
        int parsed = cli_kernel_option(argc, argv, &i, kernel, "tune");
        if (parsed < 0)
            return CLI_USAGE;
        if (parsed > 0)
            continue;
        if (strcmp(argv[i], "--json") == 0) {
            *json = true;
        } else if (strcmp(argv[i], "--quiet") == 0) {
            view->quiet = true;
        } else if (cli_option(argc, argv, &i, "--backend", &value, &missing)) {
            if (missing || sepconv_backend_parse(value, &o->kernel.backend, NULL) != SEPCONV_OK)
                return cli_usage("tune", "--backend takes tcc or cc");
        } else if (cli_option(argc, argv, &i, "--threads", &value, &missing)) {
            if (missing || !cli_number(value, 0, 1024, &number))
                return cli_usage("tune", "--threads takes 0 (every core) to 1024");
            o->kernel.threads = (int)number;
        } else if (cli_option(argc, argv, &i, "--trials", &value, &missing)) {
            if (missing || !cli_number(value, 1, 1 << 30, &number))
                return cli_usage("tune", "--trials takes a count of at least 1");
            o->trials = number;
        } else if (cli_option(argc, argv, &i, "--budget", &value, &missing)) {
            char *end = NULL;
            o->budget_seconds = value ? strtod(value, &end) : 0;
            if (missing || !end || *end || !(o->budget_seconds > 0))
                return cli_usage("tune", "--budget takes seconds (> 0)");
        } else if (cli_option(argc, argv, &i, "--strategy", &value, &missing)) {
            if (missing || (strcmp(value, "grid") && strcmp(value, "random")))
                return cli_usage("tune", "--strategy takes grid or random");
            o->strategy = value[0] == 'g' ? SEPCONV_STRATEGY_GRID : SEPCONV_STRATEGY_RANDOM;
        } else if (cli_option(argc, argv, &i, "--seed", &value, &missing)) {
            if (missing || !cli_number(value, 0, INT64_MAX, &number))
                return cli_usage("tune", "--seed takes a whole number >= 0");
            o->seed = (uint64_t)number;
        } else if (cli_option(argc, argv, &i, "--shard", &value, &missing)) {
            if (missing || !parse_shard(value, &o->shard, &o->shards))
                return cli_usage("tune", "--shard takes I/N with 0 <= I < N");
        } else if (cli_option(argc, argv, &i, "--only", &value, &missing)) {
            if (missing)
                return cli_usage("tune", "--only takes an op: conv, dw, pw or sep");
            *only = value;
        } else if (cli_option(argc, argv, &i, "--top", &value, &missing)) {
            if (missing || !cli_number(value, 1, 1000, &number))
                return cli_usage("tune", "--top takes 1..1000");
            *top = (int)number;
        } else if (argv[i][0] == '-') {
            return cli_usage("tune", "unknown option '%s'", argv[i]);
        } else if (!cli_input_add(input, argv[i])) {
            return cli_usage("tune", "give one spec or one model file, not '%s' too", argv[i]);
        }
    }
    if (!input->file && !input->spec[0])
        return cli_usage("tune", "missing SPEC or FILE");
    if (o->trials && o->budget_seconds)
        return cli_usage("tune", "give --trials or --budget, not both");
    return CLI_OK;
}

/* Entry point of `sepconv tune`. */
static int tune_run(int argc, char **argv)
{
    cli_input input = {0};
    sepconv_tune_options options = sepconv_tune_defaults();
    cli_kernel_options kernel = cli_kernel_defaults();
    const char *only = NULL;
    int top = 5;
    bool json = false;
    progress_view view = {isatty(STDERR_FILENO) != 0, false, ""};
    int code = parse_options(argc, argv, &input, &options, &kernel, &only, &top, &json,
                             &view);
    if (code != CLI_OK)
        return code;
    options.kernel.target = kernel.target;
    options.kernel.generate = kernel.generate;
    options.log_path = kernel.log_path;
    options.progress = show_progress;
    options.progress_context = &view;
    sepconv_error error;
    sepconv_model model;
    if (cli_input_load(&input, &model, &error) != SEPCONV_OK)
        return cli_fail("tune", &error);
    size_t selected = 0;
    for (size_t i = 0; i < model.count; i++)
        selected += !only || strcmp(only, sepconv_op_name(model.layers[i].op)) == 0;
    if (selected > 1 && options.budget_seconds > 0)
        options.budget_seconds /= (double)selected; /* the budget is for the whole run */
    double best_total = 0, default_total = 0, reference_total = 0;
    if (json)
        printf("{\"layers\":[");
    int printed = 0;
    for (size_t i = 0; i < model.count && code == CLI_OK; i++) {
        const sepconv_layer *layer = &model.layers[i];
        if (only && strcmp(only, sepconv_op_name(layer->op)) != 0)
            continue;
        char name[64];
        snprintf(name, sizeof name, "%s", layer->name[0] ? layer->name : sepconv_op_name(layer->op));
        view.label = name;
        sepconv_tune_result result;
        if (sepconv_tune_layer(layer, &options, &result, &error) != SEPCONV_OK) {
            code = cli_fail("tune", &error);
            break;
        }
        const sepconv_tune_record *best = result.count && strcmp(result.records[0].status, "ok") == 0
                                              ? &result.records[0] : NULL;
        double ratio = best && best->ratio < 1.0 ? best->ratio : 1.0;
        best_total += ratio * result.baseline.median_ms;
        default_total += result.baseline.median_ms;
        reference_total += result.reference_ms;
        if (json) {
            printf("%s{\"name\":\"%s\",\"spec\":\"%s\",\"default_ms\":%.4f,\"reference_ms\":%.3f,"
                   "\"candidates\":%zu,\"best\":", printed ? "," : "", name,
                   result.baseline.spec, result.baseline.median_ms, result.reference_ms,
                   result.count);
            if (best)
                printf("{\"schedule\":\"%s\",\"ratio\":%.4f,\"median_ms\":%.4f}}",
                       best->schedule, best->ratio, best->ratio * result.baseline.median_ms);
            else
                printf("null}");
        } else {
            print_ranking(name, &result, top);
        }
        printed++;
        sepconv_tune_result_free(&result);
    }
    if (code == CLI_OK && json)
        printf("],\"best_total_ms\":%.4f,\"default_total_ms\":%.4f,\"reference_total_ms\":%.3f}\n",
               best_total, default_total, reference_total);
    else if (code == CLI_OK && printed > 1)
        printf("total: best %.3f ms, default %.3f ms (%.2fx), reference %.1f ms (%.1fx)\n",
               best_total, default_total, default_total / best_total, reference_total,
               reference_total / best_total);
    sepconv_model_free(&model);
    return code;
}

const cli_command cli_tune_command = {
    "tune", "search the schedule space for the fastest verified kernel", tune_run,
    "usage: sepconv tune SPEC|FILE [--backend tcc|cc] [--target T] [--threads N]\n"
    "                    [--trials N | --budget SECONDS] [--strategy grid|random]\n"
    "                    [--seed S] [--shard I/N] [--log FILE] [--only OP]\n"
    "                    [--top K] [--quiet] [--json]\n\n"
    "Compiles, verifies and times each candidate schedule of each layer,\n"
    "interleaved with the default schedule so that the ratio between them\n"
    "holds on a noisy machine, and appends one record per candidate to the\n"
    "tuning log (default ~/.cache/sepconv/tuning.jsonl).  Candidates that fail\n"
    "to compile or verify are recorded as failed and never chosen.  Then\n"
    "'sepconv gen SPEC --schedule best' and the API's \"auto\" schedule use it.\n\n"
    "  --trials N       at most N candidates per layer (default: all)\n"
    "  --budget S       stop starting candidates after S seconds (whole run)\n"
    "  --strategy       grid (space order) or random (seeded, --seed S)\n"
    "  --shard I/N      only candidates k with k mod N = I: run N shards on\n"
    "                   different cores or machines, then 'sepconv log merge'\n"
    "  --top K          rows of the ranked table per layer (default 5)\n"
    "  --quiet          no progress (on a terminal: a bar; otherwise: lines)\n\n"
    "example: sepconv tune examples/mobilenet_v1.layers --only sep --backend cc \\\n"
    "           --strategy random --trials 12\n"};
