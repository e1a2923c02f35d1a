// OpenBLAS's CBLAS and LAPACKE (whose LAPACK calls bind to OpenBLAS's LAPACK).
#ifndef SSM_COPENBLAS_SHIM_H
#define SSM_COPENBLAS_SHIM_H

// Complex LAPACKE types as plain structs: Swift has no `double _Complex`.
#define LAPACK_COMPLEX_STRUCTURE 1
#include <cblas.h>
#include <lapacke.h>

/// OpenBLAS's build description ("OpenBLAS 0.3.21 DYNAMIC_ARCH ...").
static inline const char *ssm_openblas_config(void) { return openblas_get_config(); }
static inline int ssm_openblas_threads(void) { return openblas_get_num_threads(); }
static inline void ssm_openblas_set_threads(int threads) { openblas_set_num_threads(threads); }

/// The kernel family OpenBLAS chose at load time ("Prescott", "SkylakeX", ...).
static inline const char *ssm_openblas_core(void) { return openblas_get_corename(); }

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/// OpenBLAS 0.3.21 (Debian 12) does not know this VM's CPU model and falls back to its SSE3
/// "Prescott" kernels: dgemm at a fifth of the speed of the AVX-512 kernels the CPU supports
/// (measured: 1024³ dgemm, one thread, 15.7 vs 73 GFLOP/s). The core is chosen when the library
/// loads, from OPENBLAS_CORETYPE, so the only fix from inside the process is to set that and
/// execute the program again, once. Nothing happens when OPENBLAS_CORETYPE is already set (a
/// user's choice is kept), when detection worked, or when the CPU lacks AVX2. Returns only if no
/// re-execution took place (or it failed).
static inline void ssm_openblas_select_core(char *const argv[]) {
    if (getenv("OPENBLAS_CORETYPE") != NULL) return;
    if (strcmp(openblas_get_corename(), "Prescott") != 0) return;
    __builtin_cpu_init();
    const char *core = __builtin_cpu_supports("avx512f") ? "SkylakeX"
                     : __builtin_cpu_supports("avx2") ? "Haswell" : NULL;
    if (core == NULL) return;
    setenv("OPENBLAS_CORETYPE", core, 1);
    execv("/proc/self/exe", argv);
}

#endif
