// Process-level runtime settings for the executables.
#ifndef SSM_CRUNTIME_SHIM_H
#define SSM_CRUNTIME_SHIM_H

#include <malloc.h>

/// glibc returns every freed block above the mmap threshold (128 KiB at first) to the kernel and
/// maps it again on the next allocation; tensors of a few MB churn through that, and the page
/// faults cost as much as the arithmetic. Raising the thresholds keeps freed memory in the heap.
static inline void ssm_retain_freed_memory(void) {
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    mallopt(M_TOP_PAD, 64 << 20);
}

#endif
