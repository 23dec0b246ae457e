/* Cache prefetch hints for the pipeline (Swift has no prefetch of its own). Header-only: Swift inlines these
 * static inline functions, so each call is one prefetch instruction in the pipeline's machine code. */
#ifndef MPLSGATE_PREFETCH_H
#define MPLSGATE_PREFETCH_H

/* Brings the line at p toward L1 for reading. */
static inline __attribute__((always_inline)) void mg_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

/* Brings the line at p toward L1 for writing (a counter about to be incremented). */
static inline __attribute__((always_inline)) void mg_prefetch_for_write(const void *p) { __builtin_prefetch(p, 1, 3); }

#endif
