// GSL, linked against OpenBLAS's CBLAS instead of gslcblas.
#ifndef SSM_CGSL_SHIM_H
#define SSM_CGSL_SHIM_H

// gsl_cblas.h and OpenBLAS's cblas.h define CBLAS_TRANSPOSE differently; take OpenBLAS's and
// keep GSL's copy out by defining its include guard.
#include <cblas.h>
#define __GSL_CBLAS_H__

#include <gsl/gsl_errno.h>
#include <gsl/gsl_version.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_vector.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_sf_log.h>
#include <gsl/gsl_sf_gamma.h>
#include <gsl/gsl_sf_bessel.h>
#include <gsl/gsl_sf_erf.h>
#include <gsl/gsl_integration.h>
#include <gsl/gsl_cdf.h>

// Swift 6 rejects direct use of these C globals.
static inline const gsl_rng_type *ssm_gsl_rng_mt19937(void) { return gsl_rng_mt19937; }
static inline const char *ssm_gsl_version(void) { return gsl_version; }

#endif
