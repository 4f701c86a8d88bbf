/*
 * log/log.h -- the tuning log as the kernel reads it (the schedule a record
 * chose for a layer) and as the CLI writes it to a stream.  Not installed.
 */
#ifndef SEPCONV_LOG_H
#define SEPCONV_LOG_H

#include <stdio.h>

#include "layer/schedule.h"

/* The log's tuned schedule for the layer and options, else the default with *found = 0. */
sepconv_status sepconv_log_schedule(const sepconv_layer *layer,
                                    const sepconv_kernel_options *options, const char *log_path,
                                    sepconv_schedule *schedule, int *found,
                                    sepconv_error *error);

/* Writes every record of a log as its line to an open stream. */
sepconv_status sepconv_log_write_stream(FILE *out, const sepconv_tune_log *log,
                                        sepconv_error *error);

#endif /* SEPCONV_LOG_H */
