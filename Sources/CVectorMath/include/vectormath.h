// Elementwise exp and log1p over arrays through glibc's vector math library (libmvec), for
// evaluations whose last bits do not feed back into training (importance sampling, test
// log-likelihoods). libmvec's double functions are accurate to a few ulp (glibc documents at most
// 4); the scalar libm is correctly rounded in practice. The widest variant the CPU supports is
// chosen at run time (AVX-512, AVX2, else SSE2), so the build stays baseline x86-64.
#ifndef SSM_VECTORMATH_H
#define SSM_VECTORMATH_H

/// y[i] = exp(x[i]) for i < n; x and y may be the same array.
void ssm_vector_exp(const double *x, double *y, long n);
/// y[i] = log1p(x[i]) for i < n; x and y may be the same array.
void ssm_vector_log1p(const double *x, double *y, long n);
/// 512, 256 or 128: the vector width in bits the functions use on this CPU.
int ssm_vector_width(void);

#endif
