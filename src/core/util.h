/* Small helpers every layer uses: container_of, array size, per-thread counters. */
#ifndef FERRY_CORE_UTIL_H
#define FERRY_CORE_UTIL_H
#include <stddef.h>
#include <stdint.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/*
 * Counters are written by exactly one worker thread and read by the stats thread.
 * A relaxed load + store (not an atomic read-modify-write) keeps the hot path free of
 * locked instructions while giving the reader untorn values.
 */
#define CTR_ADD(c, n) __atomic_store_n(&(c), __atomic_load_n(&(c), __ATOMIC_RELAXED) + (n), __ATOMIC_RELAXED)
#define CTR_GET(c) __atomic_load_n(&(c), __ATOMIC_RELAXED)

#endif
