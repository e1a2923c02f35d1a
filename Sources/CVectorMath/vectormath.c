#include "vectormath.h"
#include <immintrin.h>
#include <string.h>

// libmvec's entry points (x86_64 vector function ABI: b = SSE, d = AVX2, e = AVX-512).
__m128d _ZGVbN2v_exp(__m128d);
__m128d _ZGVbN2v_log1p(__m128d);
__attribute__((target("avx2"))) __m256d _ZGVdN4v_exp(__m256d);
__attribute__((target("avx2"))) __m256d _ZGVdN4v_log1p(__m256d);
__attribute__((target("avx512f"))) __m512d _ZGVeN8v_exp(__m512d);
__attribute__((target("avx512f"))) __m512d _ZGVeN8v_log1p(__m512d);

int ssm_vector_width(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 512;
    if (__builtin_cpu_supports("avx2")) return 256;
    return 128;
}

// One function per width; the tail is padded with zeros (exp(0) and log1p(0) are finite).
#define SSM_APPLY(name, width, type, load, store, fn)                                   \
    static void name(const double *x, double *y, long n) {                              \
        long i = 0;                                                                     \
        for (; i + width <= n; i += width) store(y + i, fn(load(x + i)));               \
        if (i < n) {                                                                    \
            double in[width] = {0}, out[width];                                         \
            memcpy(in, x + i, (size_t)(n - i) * sizeof(double));                        \
            store(out, fn(load(in)));                                                   \
            memcpy(y + i, out, (size_t)(n - i) * sizeof(double));                       \
        }                                                                               \
    }

SSM_APPLY(exp2, 2, __m128d, _mm_loadu_pd, _mm_storeu_pd, _ZGVbN2v_exp)
SSM_APPLY(log1p2, 2, __m128d, _mm_loadu_pd, _mm_storeu_pd, _ZGVbN2v_log1p)
__attribute__((target("avx2"))) SSM_APPLY(exp4, 4, __m256d, _mm256_loadu_pd, _mm256_storeu_pd, _ZGVdN4v_exp)
__attribute__((target("avx2"))) SSM_APPLY(log1p4, 4, __m256d, _mm256_loadu_pd, _mm256_storeu_pd, _ZGVdN4v_log1p)
__attribute__((target("avx512f"))) SSM_APPLY(exp8, 8, __m512d, _mm512_loadu_pd, _mm512_storeu_pd, _ZGVeN8v_exp)
__attribute__((target("avx512f"))) SSM_APPLY(log1p8, 8, __m512d, _mm512_loadu_pd, _mm512_storeu_pd, _ZGVeN8v_log1p)

void ssm_vector_exp(const double *x, double *y, long n) {
    static int width = 0;
    if (!width) width = ssm_vector_width();
    if (width == 512) exp8(x, y, n); else if (width == 256) exp4(x, y, n); else exp2(x, y, n);
}

void ssm_vector_log1p(const double *x, double *y, long n) {
    static int width = 0;
    if (!width) width = ssm_vector_width();
    if (width == 512) log1p8(x, y, n); else if (width == 256) log1p4(x, y, n); else log1p2(x, y, n);
}

// Adam. The pragma keeps a·b + c as two roundings (no FMA), as Swift computes it; √ and ÷ are
// correctly rounded in every width, so all three variants give the scalar loop's bits.
#pragma clang fp contract(off)

#define SSM_ADAM(name, width, type, load, store, set1, add, sub, mul, div, sqrt)                  \
    static void name(double *theta, double *m, double *v, const double *g, long n, double b1,       \
                     double b2, double lr, double c1, double c2, double eps) {                      \
        const type B1 = set1(b1), A1 = set1(1 - b1), B2 = set1(b2), A2 = set1(1 - b2);                \
        const type LR = set1(lr), C1 = set1(c1), C2 = set1(c2), EPS = set1(eps);                     \
        long i = 0;                                                                                 \
        for (; i + width <= n; i += width) {                                                        \
            type gi = load(g + i);                                                                  \
            type mi = add(mul(B1, load(m + i)), mul(A1, gi));                                        \
            type vi = add(mul(B2, load(v + i)), mul(mul(A2, gi), gi));                               \
            store(m + i, mi);                                                                       \
            store(v + i, vi);                                                                       \
            store(theta + i, sub(load(theta + i), div(mul(LR, div(mi, C1)), add(sqrt(div(vi, C2)), EPS)))); \
        }                                                                                           \
        for (; i < n; i++) {                                                                        \
            m[i] = b1 * m[i] + (1 - b1) * g[i];                                                     \
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];                                              \
            theta[i] -= lr * (m[i] / c1) / (__builtin_sqrt(v[i] / c2) + eps);                       \
        }                                                                                           \
    }

SSM_ADAM(adam2, 2, __m128d, _mm_loadu_pd, _mm_storeu_pd, _mm_set1_pd, _mm_add_pd, _mm_sub_pd, _mm_mul_pd, _mm_div_pd, _mm_sqrt_pd)
__attribute__((target("avx2"))) SSM_ADAM(adam4, 4, __m256d, _mm256_loadu_pd, _mm256_storeu_pd, _mm256_set1_pd, _mm256_add_pd,
                                         _mm256_sub_pd, _mm256_mul_pd, _mm256_div_pd, _mm256_sqrt_pd)
__attribute__((target("avx512f"))) SSM_ADAM(adam8, 8, __m512d, _mm512_loadu_pd, _mm512_storeu_pd, _mm512_set1_pd, _mm512_add_pd,
                                            _mm512_sub_pd, _mm512_mul_pd, _mm512_div_pd, _mm512_sqrt_pd)

void ssm_adam_update(double *theta, double *m, double *v, const double *g, long n,
                     double b1, double b2, double lr, double c1, double c2, double eps) {
    static int width = 0;
    if (!width) width = ssm_vector_width();
    if (width == 512) adam8(theta, m, v, g, n, b1, b2, lr, c1, c2, eps);
    else if (width == 256) adam4(theta, m, v, g, n, b1, b2, lr, c1, c2, eps);
    else adam2(theta, m, v, g, n, b1, b2, lr, c1, c2, eps);
}
