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
