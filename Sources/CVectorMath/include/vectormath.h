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
/// One Adam step over n parameters, in place, in IEEE double arithmetic without contraction (each
/// +, ×, ÷ and √ rounded once, in the order written), so it equals the scalar loop to the last bit:
///   m = b1·m + (1−b1)·g;  v = b2·v + ((1−b2)·g)·g;  θ = θ − (lr·(m/c1)) / (√(v/c2) + eps).
void ssm_adam_update(double *theta, double *m, double *v, const double *g, long n,
                     double b1, double b2, double lr, double c1, double c2, double eps);
/// 512, 256 or 128: the vector width in bits the functions use on this CPU.
int ssm_vector_width(void);

#endif
