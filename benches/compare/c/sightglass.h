/* The sightglass benchmark interface for the native builds of the comparison
 * (benches/compare): bench_start() and bench_end() read the monotonic clock, and
 * bench_end() prints the measured nanoseconds on standard error as "bench-ns N", which the
 * compare binary reads and removes. BLACK_BOX keeps a value alive. */
#ifndef COMPARE_SIGHTGLASS_H
#define COMPARE_SIGHTGLASS_H
#include <stdio.h>
#include <time.h>

static struct timespec sightglass_start_time;

static inline void bench_start(void) {
    clock_gettime(CLOCK_MONOTONIC, &sightglass_start_time);
}

static inline void bench_end(void) {
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    long long ns = (long long)(end.tv_sec - sightglass_start_time.tv_sec) * 1000000000LL +
                   (end.tv_nsec - sightglass_start_time.tv_nsec);
    fprintf(stderr, "bench-ns %lld\n", ns);
}

#define BLACK_BOX(x) __asm__ volatile("" : : "r"(&(x)) : "memory")
#endif
