/*
 * cmd_tune.c -- `sepconv tune SPEC|FILE`: sweeps the schedule space of each
 * layer, shows progress, ranks the candidates, appends them to the log.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define BUDGET_MAX (7 * 24 * 3600.0) /* a week */
/* Seconds of --budget kept for what follows the last layer: joining the
 * compile thread, freeing, printing the table. */
#define EXIT_RESERVE 0.05

/* How progress is shown: a redrawn bar on a terminal, lines otherwise. */
typedef struct progress_view {
    bool tty, quiet;
    bool open; /* a bar is drawn without its newline yet */
    double budget; /* this layer's share of --budget; 0: none */
    const char *label;
} progress_view;

/* Shows one step of a sweep on stderr. */
static void show_progress(void *context, const sepconv_tune_progress *p)
{
    progress_view *view = context;
    if (view->quiet)
        return;
    double eta = p->done ? p->elapsed_seconds / (double)p->done * (double)(p->total - p->done)
                         : 0.0;
    if (view->budget > 0 && eta > view->budget - p->elapsed_seconds)
        eta = view->budget > p->elapsed_seconds ? view->budget - p->elapsed_seconds : 0.0;
    char best[96] = "none yet";
    if (p->best)
        snprintf(best, sizeof best, "%.3fx of default", p->best->ratio);
    bool ok = strcmp(p->last->status, "ok") == 0;
    if (view->tty) {
        int width = 24, filled = p->total ? (int)(width * p->done / p->total) : width;
        fprintf(stderr, "\r%-8s [%.*s%.*s] %zu/%zu  ETA %3.0fs  best %s   ", view->label,
                filled, "########################", width - filled,
                "........................", p->done, p->total, eta, best);
        view->open = p->done != p->total;
        if (!view->open)
            fputc('\n', stderr);
    } else if (ok) { /* this candidate's own ratio, then the best apart */
        fprintf(stderr, "%s %zu/%zu ok %s: ratio %.3fx of default; best so far %s\n",
                view->label, p->done, p->total, p->last->schedule, p->last->ratio, best);
    } else {
        fprintf(stderr, "%s %zu/%zu failed %s; best so far %s\n", view->label, p->done,
                p->total, p->last->schedule, best);
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
    printf("%s: %s\n  default %.3f ms, reference %.2f ms, %zu candidates (%zu failed, "
           "%zu pruned)", name, r->baseline.spec, r->baseline.median_ms, r->reference_ms,
           r->count, failed, r->pruned);
    if (r->not_tried)
        printf(", %zu not tried: the budget was spent", r->not_tried);
    printf("\n");
    if (r->count > failed)
        printf("  %4s %8s %10s %7s %8s %10s %9s  %s\n", "rank", "ratio", "median ms",
               "spread", "GFLOP/s", "vs default", "vs ref", "schedule");
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
            if (missing || sepconv_backend_parse(value, &kernel->backend, NULL) != SEPCONV_OK)
                return cli_usage("tune", "--backend takes tcc or cc");
            kernel->backend_given = true;
        } else if (cli_option(argc, argv, &i, "--threads", &value, &missing)) {
            if (missing || !cli_number(value, 0, 1024, &number))
                return cli_usage("tune", "--threads takes 0 (every usable CPU) to 1024");
            o->kernel.threads = (int)number;
        } else if (cli_option(argc, argv, &i, "--trials", &value, &missing)) {
            if (missing || !cli_number(value, 1, 1 << 30, &number))
                return cli_usage("tune", "--trials takes a count of at least 1");
            o->trials = number;
        } else if (cli_option(argc, argv, &i, "--budget", &value, &missing)) {
            if (missing || !cli_seconds(value, BUDGET_MAX, &o->budget_seconds))
                return cli_usage("tune", "--budget takes seconds, more than 0 and at most "
                                 "%.0f, not '%s'", BUDGET_MAX, value ? value : "");
        } else if (cli_option(argc, argv, &i, "--strategy", &value, &missing)) {
            if (missing || (strcmp(value, "grid") && strcmp(value, "random") &&
                            strcmp(value, "guided")))
                return cli_usage("tune", "--strategy takes guided, random or grid");
            o->strategy = strcmp(value, "grid") == 0     ? SEPCONV_STRATEGY_GRID
                          : strcmp(value, "random") == 0 ? SEPCONV_STRATEGY_RANDOM
                                                         : SEPCONV_STRATEGY_GUIDED;
        } else if (strcmp(argv[i], "--sequential") == 0) {
            o->sequential = 1;
        } else if (cli_option(argc, argv, &i, "--seed", &value, &missing)) {
            if (missing || !cli_number(value, 0, INT64_MAX, &number))
                return cli_usage("tune", "--seed takes a whole number >= 0");
            o->seed = (uint64_t)number;
        } else if (cli_option(argc, argv, &i, "--shard", &value, &missing)) {
            if (missing || !parse_shard(value, &o->shard, &o->shards))
                return cli_usage("tune", "--shard takes I/N with 0 <= I < N");
        } else if (cli_option(argc, argv, &i, "--only", &value, &missing)) {
            if (missing)
                return cli_usage("tune", "--only takes an op (conv, dw, pw, sep) or a "
                                 "layer's name");
            *only = value;
        } else if (cli_option(argc, argv, &i, "--top", &value, &missing)) {
            if (missing || !cli_number(value, 1, 1000, &number))
                return cli_usage("tune", "--top takes 1..1000");
            *top = (int)number;
        } else if (cli_is_option(argv[i])) {
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

/* The totals of a run over its layers. */
typedef struct run_totals {
    double best, baseline, reference;
    size_t tuned, untuned;
} run_totals;

/* Reports a layer left untuned (the budget ran out before it, or while
 * its default schedule was built): in the table or as a JSON object. */
static void print_untuned(const char *name, const sepconv_layer *layer, const char *what,
                          const char *reason, bool json, int printed)
{
    char spec[512] = "";
    sepconv_layer_format(layer, spec, sizeof spec, NULL);
    if (json) {
        printf("%s{\"name\":", printed ? "," : "");
        cli_json_string(stdout, name);
        printf(",\"spec\":");
        cli_json_string(stdout, spec);
        printf(",\"tuned\":false,\"reason\":");
        char text[SEPCONV_MESSAGE_MAX + 128];
        snprintf(text, sizeof text, "%s: %s", what, reason);
        cli_json_string(stdout, text);
        printf("}");
    } else {
        printf("%s: %s\n  %s: %s\n", name, spec, what, reason);
    }
}

/* Prints one tuned layer's result as a JSON object. */
static void print_json_layer(const char *name, const sepconv_tune_result *result,
                             const sepconv_tune_record *best, int printed)
{
    printf("%s{\"name\":", printed ? "," : "");
    cli_json_string(stdout, name);
    printf(",\"spec\":");
    cli_json_string(stdout, result->baseline.spec);
    printf(",\"tuned\":true,\"default_ms\":%.4f,\"reference_ms\":%.3f,\"candidates\":%zu,"
           "\"not_tried\":%zu,\"pruned\":%zu,\"best\":", result->baseline.median_ms,
           result->reference_ms, result->count, result->not_tried, result->pruned);
    if (best)
        printf("{\"schedule\":\"%s\",\"ratio\":%.4f,\"median_ms\":%.4f}}", best->schedule,
               best->ratio, best->ratio * result->baseline.median_ms);
    else
        printf("null}");
}

/* Tunes the selected layers within the budget: each layer gets an equal
 * share of the time left, and once it is spent the rest are not tried. */
static int tune_layers(const sepconv_model *model, const char *only,
                       sepconv_tune_options *options, progress_view *view, int top,
                       bool json, double deadline, run_totals *totals)
{
    size_t left = 0;
    for (size_t i = 0; i < model->count; i++)
        left += cli_layer_selected(&model->layers[i], only);
    double budget = options->budget_seconds;
    int printed = 0;
    for (size_t i = 0; i < model->count; i++) {
        const sepconv_layer *layer = &model->layers[i];
        if (!cli_layer_selected(layer, only))
            continue;
        char name[64], reason[SEPCONV_MESSAGE_MAX + 64];
        snprintf(name, sizeof name, "%s", layer->name[0] ? layer->name : sepconv_op_name(layer->op));
        double remaining = deadline - sepconv_seconds();
        if (budget > 0 && remaining <= 0) {
            snprintf(reason, sizeof reason, "the budget of %g s was spent before it", budget);
            print_untuned(name, layer, "not tried", reason, json, printed++);
            totals->untuned++;
            left--;
            continue;
        }
        if (budget > 0)
            options->budget_seconds = remaining / (double)left;
        view->budget = options->budget_seconds;
        left--;
        view->label = name;
        sepconv_tune_result result;
        sepconv_error error;
        double started = sepconv_seconds();
        sepconv_status status = sepconv_tune_layer(layer, options, &result, &error);
        if (view->open) /* the budget stopped the bar short of its end */
            fputc('\n', stderr);
        view->open = false;
        if (status == SEPCONV_LIMIT && budget > 0 &&
            (sepconv_seconds() - started >= options->budget_seconds ||
             strstr(error.message, "the budget of"))) { /* its share ran out */
            snprintf(reason, sizeof reason, "%s", error.message);
            print_untuned(name, layer, "not tuned", reason, json, printed++);
            totals->untuned++;
            continue;
        }
        if (status != SEPCONV_OK) {
            if (json)
                printf("]}\n"); /* keep standard output valid JSON */
            return cli_fail("tune", &error);
        }
        const sepconv_tune_record *best = result.count && strcmp(result.records[0].status, "ok") == 0
                                              ? &result.records[0] : NULL;
        double ratio = best && best->ratio < 1.0 ? best->ratio : 1.0;
        totals->best += ratio * result.baseline.median_ms;
        totals->baseline += result.baseline.median_ms;
        totals->reference += result.reference_ms;
        totals->tuned++;
        if (json)
            print_json_layer(name, &result, best, printed);
        else
            print_ranking(name, &result, top);
        printed++;
        sepconv_tune_result_free(&result);
    }
    return CLI_OK;
}

/* Entry point of `sepconv tune`. */
static int tune_run(int argc, char **argv)
{
    double started = sepconv_seconds(); /* --budget counts from here */
    cli_input input = {0};
    sepconv_tune_options options = sepconv_tune_defaults();
    cli_kernel_options kernel = cli_kernel_defaults();
    const char *only = NULL;
    int top = 5;
    bool json = false;
    progress_view view = {isatty(STDERR_FILENO) != 0, false, false, 0.0, ""};
    int code = parse_options(argc, argv, &input, &options, &kernel, &only, &top, &json,
                             &view);
    if (code != CLI_OK)
        return code;
    if (cli_target_resolve(&kernel, false, "tune") != CLI_OK)
        return CLI_FAILURE;
    cli_kernel_apply(&kernel, &options.kernel);
    options.kernel.backend = cli_backend(&kernel);
    options.log_path = kernel.log_path;
    options.progress = show_progress;
    options.progress_context = &view;
    code = cli_kernel_check(&kernel, options.kernel.backend, NULL, "tune");
    if (code != CLI_OK)
        return code;
    sepconv_error error;
    sepconv_model model;
    if (cli_input_load(&input, &model, &error) != SEPCONV_OK)
        return cli_input_fail("tune", &input, &error);
    code = cli_only_check(&model, &input, only, "tune");
    run_totals totals = {0};
    double budget = options.budget_seconds;
    if (code == CLI_OK && json)
        printf("{\"layers\":[");
    if (code == CLI_OK)
        code = tune_layers(&model, only, &options, &view, top, json,
                           started + options.budget_seconds - EXIT_RESERVE, &totals);
    if (code == CLI_OK && json)
        printf("],\"best_total_ms\":%.4f,\"default_total_ms\":%.4f,\"reference_total_ms\":%.3f,"
               "\"untuned_layers\":%zu}\n",
               totals.best, totals.baseline, totals.reference, totals.untuned);
    else if (code == CLI_OK && totals.tuned > 1)
        printf("total: best %.3f ms, default %.3f ms (%.2fx), reference %.1f ms (%.1fx)%s\n",
               totals.best, totals.baseline, totals.baseline / totals.best, totals.reference,
               totals.reference / totals.best, totals.untuned ? " over the tuned layers" : "");
    if (code == CLI_OK && totals.untuned)
        fprintf(stderr, "sepconv tune: %zu of %zu layers not tuned within the budget of "
                        "%g s; raise --budget or use --only\n", totals.untuned,
                totals.untuned + totals.tuned, budget);
    sepconv_model_free(&model);
    return code;
}

const cli_command cli_tune_command = {
    "tune", "search the schedule space for the fastest verified kernel", tune_run,
    "usage: sepconv tune SPEC|FILE [--backend tcc|cc] [--target T] [--threads N]\n"
    "                    [--trials N | --budget SECONDS]\n"
    "                    [--strategy guided|random|grid] [--seed S] [--sequential]\n"
    "                    [--shard I/N] [--log FILE] [--only OP|NAME]\n"
    "                    [--max-source SIZE] [--cc-timeout S] [--top K] [--quiet]\n"
    "                    [--json]\n\n"
    "Compiles, verifies and times each candidate schedule of each layer,\n"
    "interleaved with the default schedule so that the ratio between them\n"
    "holds on a noisy machine, and appends one record per candidate to the\n"
    "tuning log (default ~/.cache/sepconv/tuning.jsonl).  Candidates that fail\n"
    "to compile or verify are recorded as failed and never chosen.  Then\n"
    "'sepconv gen SPEC --schedule best' and the API's \"auto\" schedule use it.\n"
    "The backend is tcc unless --backend cc is given, the target auto (records\n"
    "name the instruction set it resolved to) unless --target is given,\n"
    "as for gen, jit and 'log best'.\n\n"
    "  --trials N       at most N candidates per layer (default: all)\n"
    "  --budget S       wall-clock bound on the whole run: each layer gets an\n"
    "                   equal share of the time left, compiles are stopped when\n"
    "                   it runs out, and the candidates and layers left are\n"
    "                   reported as not tried\n"
    "  --strategy       guided (default: for sep the log's best dw and pw\n"
    "                   composed first, then by an analytic estimate, every 4th\n"
    "                   candidate random), random (seeded, --seed S) or grid\n"
    "                   (space order); each draws only distinct schedules that\n"
    "                   the source-size budget accepts ('sepconv schedules')\n"
    "  --sequential     compile each candidate after the last is timed (by\n"
    "                   default the next ones compile on another core)\n"
    "  --shard I/N      only candidates k with k mod N = I: run N shards on\n"
    "                   different cores or machines, then 'sepconv log merge'\n"
    "  --only OP|NAME   with a FILE: only the layers of that op or name\n"
    "  --max-source SIZE  refuse candidates with more C than SIZE (suffix K, M\n"
    "                   or G; default 512K with cc, the generator's with tcc)\n"
    "  --cc-timeout S   stop a cc compile after S seconds (the budget may cut it\n"
    "                   shorter)\n"
    "  --top K          rows of the ranked table per layer (default 5)\n"
    "  --quiet          no progress (on a terminal: a bar; otherwise: one line\n"
    "                   per candidate with its ratio and the best so far)\n\n"
    "example: sepconv tune examples/mobilenet_v1.layers --only sep --backend cc \\\n"
    "           --strategy random --trials 12\n"};
