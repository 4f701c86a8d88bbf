/*
 * core/fault.h -- fault injection's controls, for the tests that drive it.
 * Not installed.
 */
#ifndef SEPCONV_FAULT_H
#define SEPCONV_FAULT_H

/* Fault injection, in builds made with -DSEPCONV_FAULT_INJECTION only:
 * the n-th allocation inside libsepconv from now on fails (0 disarms);
 * the count tells how many were made since arming. */
void sepconv_fault_arm(long n);
long sepconv_fault_count(void);

#endif /* SEPCONV_FAULT_H */
