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

#endif
