// Convolution and matmul kernels (diffuse/nn/conv2d.hpp, gemm.hpp) against this core's FMA peak and, when
// oneDNN is installed, oneDNN's convolution on the same shapes in the same run. Shapes are those of
// google/ddpm-cifar10-32's U-Net; every benchmark reports GFLOP/s (counter "flops", 2 flops per MAC).
//
//   OMP_NUM_THREADS=1 build/benchmarks/bench_conv2d --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// OMP_NUM_THREADS=1 keeps oneDNN (OpenMP runtime) on one thread, like ours (diffuse's default is one thread).
// On AVX-512F CPUs our kernels use 512-bit FMAs; DIFFUSE_KERNEL_ISA=avx2_fma measures the 256-bit kernels.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include "diffuse/core/parallel.hpp"
#include "diffuse/nn/conv2d.hpp"
#include "diffuse/nn/gemm.hpp"

#ifdef DIFFUSE_BENCH_DNNL
#include <dnnl.hpp>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace {

struct conv_shape {
    const char* name;
    std::size_t cin, cout, k, stride, h, w;
    diffuse::nn::padding2d pad;
};

// The U-Net's convolutions (3×3 "same" unless noted).
const conv_shape shapes[] = {
    {"3x3_128to128_32x32", 128, 128, 3, 1, 32, 32, {1, 1, 1, 1}},
    {"3x3_256to256_16x16", 256, 256, 3, 1, 16, 16, {1, 1, 1, 1}},
    {"3x3_256to256_8x8", 256, 256, 3, 1, 8, 8, {1, 1, 1, 1}},
    {"3x3_256to256_4x4", 256, 256, 3, 1, 4, 4, {1, 1, 1, 1}},
    {"3x3_128to256_16x16", 128, 256, 3, 1, 16, 16, {1, 1, 1, 1}},
    {"3x3_3to128_32x32_conv_in", 3, 128, 3, 1, 32, 32, {1, 1, 1, 1}},
    {"3x3_128to3_32x32_conv_out", 128, 3, 3, 1, 32, 32, {1, 1, 1, 1}},
    {"3x3s2_128to128_32x32_down", 128, 128, 3, 2, 32, 32, {0, 0, 1, 1}},
    {"1x1_384to256_16x16", 384, 256, 1, 1, 16, 16, {0, 0, 0, 0}},
};

std::vector<float> random_vector(std::size_t n, unsigned seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> v(n);
    for (auto& x : v) x = u(gen);
    return v;
}

double conv_flops(const conv_shape& s, std::size_t batch) {
    const std::size_t ho = (s.h + s.pad.top + s.pad.bottom - s.k) / s.stride + 1;
    const std::size_t wo = (s.w + s.pad.left + s.pad.right - s.k) / s.stride + 1;
    return 2.0 * double(batch * ho * wo) * double(s.cout) * double(s.k * s.k * s.cin);
}

#if defined(__x86_64__) || defined(__i386__)
// 12 independent chains of a = a·b + c: enough in flight to fill both FMA pipes (latency 4–5 cycles).
// The inputs come through memory and the chains are written out one by one, so nothing can be folded.
__attribute__((target("avx2,fma"), noinline)) void fma_peak_loop(std::size_t iters, const float* in, float* out) {
    __m256 a0 = _mm256_loadu_ps(in), a1 = _mm256_add_ps(a0, a0), a2 = _mm256_add_ps(a1, a0),
           a3 = _mm256_add_ps(a2, a0), a4 = _mm256_add_ps(a3, a0), a5 = _mm256_add_ps(a4, a0),
           a6 = _mm256_add_ps(a5, a0), a7 = _mm256_add_ps(a6, a0), a8 = _mm256_add_ps(a7, a0),
           a9 = _mm256_add_ps(a8, a0), a10 = _mm256_add_ps(a9, a0), a11 = _mm256_add_ps(a10, a0);
    const __m256 b = _mm256_loadu_ps(in + 8), c = _mm256_loadu_ps(in + 16);
    for (std::size_t it = 0; it < iters; ++it) {
        a0 = _mm256_fmadd_ps(a0, b, c);
        a1 = _mm256_fmadd_ps(a1, b, c);
        a2 = _mm256_fmadd_ps(a2, b, c);
        a3 = _mm256_fmadd_ps(a3, b, c);
        a4 = _mm256_fmadd_ps(a4, b, c);
        a5 = _mm256_fmadd_ps(a5, b, c);
        a6 = _mm256_fmadd_ps(a6, b, c);
        a7 = _mm256_fmadd_ps(a7, b, c);
        a8 = _mm256_fmadd_ps(a8, b, c);
        a9 = _mm256_fmadd_ps(a9, b, c);
        a10 = _mm256_fmadd_ps(a10, b, c);
        a11 = _mm256_fmadd_ps(a11, b, c);
    }
    a0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                       _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    _mm256_storeu_ps(out, _mm256_add_ps(a0, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11))));
}

void bm_fma_peak(benchmark::State& state) {
    if (diffuse::nn::detected_isa() != diffuse::nn::kernel_isa::avx2_fma) {
        state.SkipWithError("no AVX2+FMA");
        return;
    }
    std::size_t iters = 1 << 16;
    benchmark::DoNotOptimize(iters);
    std::vector<float> in(24, 0.5f), out(8);
    for (std::size_t i = 8; i < 16; ++i) in[i] = 0.999f;
    for (auto _ : state) {
        fma_peak_loop(iters, in.data(), out.data());
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.counters["flops"] = benchmark::Counter(double(iters) * 12 * 8 * 2, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(bm_fma_peak);

// The same with 512-bit FMAs (on AVX-512F CPUs, where the gemm kernels use them).
__attribute__((target("avx512f"), noinline)) void fma512_peak_loop(std::size_t iters, const float* in, float* out) {
    __m512 a[12];
    a[0] = _mm512_loadu_ps(in);
    for (int i = 1; i < 12; ++i) a[i] = _mm512_add_ps(a[i - 1], a[0]);
    const __m512 b = _mm512_loadu_ps(in + 16), c = _mm512_loadu_ps(in + 32);
    for (std::size_t it = 0; it < iters; ++it) {
        a[0] = _mm512_fmadd_ps(a[0], b, c);
        a[1] = _mm512_fmadd_ps(a[1], b, c);
        a[2] = _mm512_fmadd_ps(a[2], b, c);
        a[3] = _mm512_fmadd_ps(a[3], b, c);
        a[4] = _mm512_fmadd_ps(a[4], b, c);
        a[5] = _mm512_fmadd_ps(a[5], b, c);
        a[6] = _mm512_fmadd_ps(a[6], b, c);
        a[7] = _mm512_fmadd_ps(a[7], b, c);
        a[8] = _mm512_fmadd_ps(a[8], b, c);
        a[9] = _mm512_fmadd_ps(a[9], b, c);
        a[10] = _mm512_fmadd_ps(a[10], b, c);
        a[11] = _mm512_fmadd_ps(a[11], b, c);
    }
    for (int i = 1; i < 12; ++i) a[0] = _mm512_add_ps(a[0], a[i]);
    _mm512_storeu_ps(out, a[0]);
}

void bm_fma512_peak(benchmark::State& state) {
    if (!diffuse::nn::detail::avx512_detected()) {
        state.SkipWithError("no AVX-512F");
        return;
    }
    std::size_t iters = 1 << 16;
    benchmark::DoNotOptimize(iters);
    std::vector<float> in(48, 0.5f), out(16);
    for (std::size_t i = 16; i < 32; ++i) in[i] = 0.999f;
    for (auto _ : state) {
        fma512_peak_loop(iters, in.data(), out.data());
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.counters["flops"] = benchmark::Counter(double(iters) * 12 * 16 * 2, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(bm_fma512_peak);
#endif

// Args: shape, batch, algorithm (0 automatic, 1 direct, 2 Winograd).
void bm_conv2d(benchmark::State& state) {
    const conv_shape& s = shapes[state.range(0)];
    const std::size_t batch = std::size_t(state.range(1));
    const auto algo = diffuse::nn::conv_algorithm(state.range(2));
    auto w = random_vector(s.cout * s.cin * s.k * s.k, 1), bias = random_vector(s.cout, 2);
    diffuse::nn::conv2d conv(s.cin, s.cout, s.k, s.stride, s.pad, w, bias, algo);
    state.SetLabel(std::string(s.name) + (conv.uses_winograd(batch, s.h, s.w) ? " winograd" : " direct"));
    auto x = random_vector(batch * s.h * s.w * s.cin, 3);
    std::vector<float> out(batch * conv.out_height(s.h) * conv.out_width(s.w) * s.cout);
    std::vector<float> scratch(conv.scratch_floats(batch, s.h, s.w));
    for (auto _ : state) {
        conv.forward(x.data(), batch, s.h, s.w, out.data(), scratch.data());
        benchmark::ClobberMemory();
    }
    state.counters["flops"] = benchmark::Counter(conv_flops(s, batch), benchmark::Counter::kIsIterationInvariantRate);
}

void conv_args(benchmark::internal::Benchmark* b) {
    for (std::size_t batch : {1, 8})
        for (std::size_t i = 0; i < std::size(shapes); ++i) b->Args({std::int64_t(i), std::int64_t(batch), 0});
}
BENCHMARK(bm_conv2d)->Apply(conv_args);

// Direct against Winograd F(2×2, 3×3) on the stride-1 3×3 shapes (the flops counted as the direct ones').
void conv_algorithm_args(benchmark::internal::Benchmark* b) {
    for (std::size_t batch : {1, 8})
        for (std::size_t i = 0; i < std::size(shapes); ++i)
            if (shapes[i].k == 3 && shapes[i].stride == 1 && shapes[i].cin >= 16 && shapes[i].cout >= 16)
                for (std::int64_t a : {1, 2}) b->Args({std::int64_t(i), std::int64_t(batch), a});
}
BENCHMARK(bm_conv2d)->Name("bm_conv2d_algorithm")->Apply(conv_algorithm_args);

// Ours on 2 threads (diffuse::set_num_threads(2)); CPU time then sums both threads, so this one is timed in
// real time: the counter is the wall-clock rate.
void bm_conv2d_2threads(benchmark::State& state) {
    diffuse::set_num_threads(2);
    bm_conv2d(state);
    diffuse::set_num_threads(1);
}
BENCHMARK(bm_conv2d_2threads)->Args({0, 1, 0})->Args({1, 1, 0})->Args({0, 8, 0})->Args({1, 8, 0})->UseRealTime();

#ifdef DIFFUSE_BENCH_DNNL
// oneDNN's direct convolution: f32, nhwc activations, weights in its preferred layout (format_tag::any).
void bm_conv2d_onednn(benchmark::State& state) {
    using namespace dnnl;
    using tag = memory::format_tag;
    using dt = memory::data_type;
    const conv_shape& s = shapes[state.range(0)];
    const auto batch = memory::dim(state.range(1));
    state.SetLabel(s.name);
    const auto ho = memory::dim((s.h + s.pad.top + s.pad.bottom - s.k) / s.stride + 1);
    const auto wo = memory::dim((s.w + s.pad.left + s.pad.right - s.k) / s.stride + 1);
    const auto ci = memory::dim(s.cin), co = memory::dim(s.cout), k = memory::dim(s.k);
    engine eng(engine::kind::cpu, 0);
    stream strm(eng);
    memory::desc src_md({batch, ci, memory::dim(s.h), memory::dim(s.w)}, dt::f32, tag::nhwc);
    memory::desc dst_md({batch, co, ho, wo}, dt::f32, tag::nhwc);
    memory::desc w_any({co, ci, k, k}, dt::f32, tag::any);
    memory::desc b_md({co}, dt::f32, tag::a);
    convolution_forward::desc d(prop_kind::forward_inference, algorithm::convolution_direct, src_md, w_any, b_md,
                                dst_md, {memory::dim(s.stride), memory::dim(s.stride)},
                                {memory::dim(s.pad.top), memory::dim(s.pad.left)},
                                {memory::dim(s.pad.bottom), memory::dim(s.pad.right)});
    convolution_forward::primitive_desc pd(d, eng);
    auto xv = random_vector(std::size_t(batch) * s.h * s.w * s.cin, 3);
    auto wv = random_vector(s.cout * s.cin * s.k * s.k, 1), bv = random_vector(s.cout, 2);
    std::vector<float> ov(std::size_t(batch * ho * wo * co));
    memory src(src_md, eng, xv.data()), dst(dst_md, eng, ov.data()), bias(b_md, eng, bv.data());
    memory w_user({{co, ci, k, k}, dt::f32, tag::oihw}, eng, wv.data());
    memory w(pd.weights_desc(), eng);
    reorder(w_user, w).execute(strm, w_user, w);
    convolution_forward conv(pd);
    state.SetLabel(std::string(s.name) + " " + pd.impl_info_str());
    for (auto _ : state) {
        conv.execute(strm, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_BIAS, bias}, {DNNL_ARG_DST, dst}});
        strm.wait();
        benchmark::ClobberMemory();
    }
    state.counters["flops"] = benchmark::Counter(conv_flops(s, std::size_t(batch)), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(bm_conv2d_onednn)->Apply(conv_args);
#endif

// Attention products: q·kᵀ (tokens × tokens, K = head dim) and p·v (tokens × head dim, K = tokens),
// with B packed outside the loop; bm_matmul_pack includes packing kᵀ every call, as attention does.
void bm_matmul(benchmark::State& state) {
    const auto M = std::size_t(state.range(0)), N = std::size_t(state.range(1)), K = std::size_t(state.range(2));
    auto a = random_vector(M * K, 1), b = random_vector(K * N, 2);
    std::vector<float> c(M * N);
    diffuse::nn::packed_matrix pb(b.data(), K, N, std::ptrdiff_t(N), 1);
    for (auto _ : state) {
        diffuse::nn::matmul(M, a.data(), K, pb, c.data(), N);
        benchmark::ClobberMemory();
    }
    state.counters["flops"] = benchmark::Counter(2.0 * double(M * N * K), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(bm_matmul)
    ->Args({256, 256, 256})    // 16×16 attention, 256 channels: q·kᵀ
    ->Args({1024, 1024, 128})  // 32×32 attention, head dim 128: q·kᵀ
    ->Args({1024, 128, 1024})  // p·v
    ->Args({256, 768, 256});   // qkv projection at 16×16 (M = pixels, K = channels)

void bm_matmul_pack(benchmark::State& state) {
    const auto M = std::size_t(state.range(0)), N = std::size_t(state.range(1)), K = std::size_t(state.range(2));
    auto a = random_vector(M * K, 1), keys = random_vector(N * K, 2);
    std::vector<float> c(M * N);
    diffuse::nn::packed_matrix pb;
    for (auto _ : state) {
        pb.pack(keys.data(), K, N, 1, std::ptrdiff_t(K));  // B = keysᵀ
        diffuse::nn::matmul(M, a.data(), K, pb, c.data(), N);
        benchmark::ClobberMemory();
    }
    state.counters["flops"] = benchmark::Counter(2.0 * double(M * N * K), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(bm_matmul_pack)->Args({256, 256, 256})->Args({1024, 1024, 128});

}  // namespace
