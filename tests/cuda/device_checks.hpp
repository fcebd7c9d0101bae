#pragma once
// The device-versus-host checks shared by test_cuda_host (the device backend's bodies run on the host,
// DIFFUSE_CUDA_ON_HOST) and test_cuda_gpu (nvcc, a real device): every device primitive on random shapes,
// coefficients and offsets against the host primitive on the same values, bit for bit. No test framework
// here, so nvcc never compiles Catch; each check returns its mismatches as sentences.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/core/lincomb_noise.hpp"
#include "diffuse/cuda/primitives.hpp"

namespace diffuse_device_checks {

using diffuse::memory_space;
template <class T>
using device_buffer = diffuse::space_buffer<T, memory_space::device>;

struct log {
    std::vector<std::string> failures;
    std::size_t checks = 0;
    bool echo = false;  // print each failure when it is recorded (test_cuda_gpu: a run cut short keeps them)
    void fail(std::string what) {
        if (echo) std::printf("FAILED: %s\n", what.c_str());
        failures.push_back(std::move(what));
    }
    // Another log's checks and failures, as if recorded here.
    void absorb(const log& other) {
        checks += other.checks;
        for (const auto& f : other.failures) fail(f);
    }
    template <class T>
    void same_bits(const std::string& what, const std::vector<T>& host, const std::vector<T>& device) {
        ++checks;
        if (host.size() != device.size()) {
            fail(what + ": sizes differ");
            return;
        }
        for (std::size_t i = 0; i < host.size(); ++i)
            if (std::memcmp(&host[i], &device[i], sizeof(T)) != 0) {
                fail(what + ": element " + std::to_string(i) + " is " + std::to_string(double(device[i])) +
                     " on the device and " + std::to_string(double(host[i])) + " on the host");
                return;
            }
    }
    void at_most(const std::string& what, double value, double bound) {
        ++checks;
        if (!(value <= bound)) fail(what + ": " + std::to_string(value) + " > " + std::to_string(bound));
    }
    void same(const std::string& what, std::size_t host, std::size_t device) {
        ++checks;
        if (host != device)
            fail(what + ": " + std::to_string(device) + " on the device, " + std::to_string(host) + " on the host");
    }
};

// A random shape: sometimes empty, sometimes several reduce blocks, sometimes not a multiple of 4.
struct shape {
    std::size_t batch, per_sample, offset;  // offset: elements the device view starts after (alignment)
    [[nodiscard]] std::size_t size() const { return batch * per_sample; }
    [[nodiscard]] std::string name() const {
        return std::to_string(batch) + "x" + std::to_string(per_sample) + "+" + std::to_string(offset);
    }
};

inline shape random_shape(std::mt19937_64& rng) {
    std::uniform_int_distribution<std::size_t> batch(1, 5), small(0, 70), large(4000, 9000), pick(0, 3), offset(0, 2);
    const std::size_t kind = pick(rng);
    return {batch(rng), kind == 0 ? large(rng) : small(rng), offset(rng) == 0 ? std::size_t{1} : std::size_t{0}};
}

template <class T>
std::vector<T> random_values(std::mt19937_64& rng, std::size_t n) {
    std::normal_distribution<double> normal(0.0, 3.0);
    std::vector<T> v(n);
    for (auto& x : v) x = static_cast<T>(normal(rng));
    return v;
}

// A device copy of host values, viewed with the shape's offset (so unaligned views are tested too).
template <class T>
struct on_device {
    device_buffer<T> buffer;
    diffuse::tensor_view<T, memory_space::device> view;
    on_device(const std::vector<T>& values, const shape& s)
        : buffer(values.size() + s.offset), view{buffer.data() + s.offset, s.batch, s.per_sample} {
        diffuse::copy(view, diffuse::tensor_view<const T>{values.data(), s.batch, s.per_sample});
    }
    [[nodiscard]] std::vector<T> to_host() const {
        std::vector<T> out(view.size());
        diffuse::copy(out, diffuse::tensor_view<const T, memory_space::device>(view));
        return out;
    }
};

inline std::vector<double> random_per_sample(std::mt19937_64& rng, std::size_t batch) {
    std::uniform_real_distribution<double> u(-2.0, 2.0);
    std::vector<double> c(batch);
    for (auto& x : c) x = u(rng);
    return c;
}

// A device-callable element-wise function (a product and a difference: exact ops, no contraction).
template <class T>
struct scaled_difference {
    DIFFUSE_HD T operator()(const T& a, const T& b) const { return a * T(0.75) - b; }
};

template <class T>
void check_lincomb(std::mt19937_64& rng, log& out) {
    const shape s = random_shape(rng);
    const auto x0 = random_values<T>(rng, s.size()), x1 = random_values<T>(rng, s.size()),
               x2 = random_values<T>(rng, s.size()), x3 = random_values<T>(rng, s.size());
    const auto c0 = random_per_sample(rng, s.batch), c2 = random_per_sample(rng, s.batch);
    const double c1 = std::uniform_real_distribution<double>(-3, 3)(rng);
    on_device<T> d0(x0, s), d1(x1, s), d2(x2, s), d3(x3, s), dout(std::vector<T>(s.size()), s);
    std::vector<T> host(s.size());
    const auto h = [&](const std::vector<T>& v) { return diffuse::tensor_view<const T>{v.data(), s.batch, s.per_sample}; };
    const diffuse::tensor_view<T> hout{host.data(), s.batch, s.per_sample};
    using diffuse::per_sample;

    diffuse::lincomb(hout, c1, h(x0));
    diffuse::lincomb(dout.view, c1, d0.view);
    out.same_bits("lincomb 1 input " + s.name(), host, dout.to_host());

    diffuse::lincomb(hout, per_sample(c0), h(x0), c1, h(x1));
    diffuse::lincomb(dout.view, per_sample(c0), d0.view, c1, d1.view);
    out.same_bits("lincomb 2 inputs " + s.name(), host, dout.to_host());

    diffuse::lincomb(hout, 0.5, h(x0), per_sample(c2), h(x1), c1, h(x2));
    diffuse::lincomb(dout.view, 0.5, d0.view, per_sample(c2), d1.view, c1, d2.view);
    out.same_bits("lincomb 3 inputs " + s.name(), host, dout.to_host());

    diffuse::lincomb(hout, per_sample(c0), h(x0), -1.25f, h(x1), per_sample(c2), h(x2), c1, h(x3));
    diffuse::lincomb(dout.view, per_sample(c0), d0.view, -1.25f, d1.view, per_sample(c2), d2.view, c1, d3.view);
    out.same_bits("lincomb 4 inputs " + s.name(), host, dout.to_host());

    // out the very same tensor as an input
    std::vector<T> host_in_place = x1;
    diffuse::lincomb(diffuse::tensor_view<T>{host_in_place.data(), s.batch, s.per_sample}, c1, h(x0), 0.5,
                     diffuse::tensor_view<const T>{host_in_place.data(), s.batch, s.per_sample});
    diffuse::lincomb(d1.view, c1, d0.view, 0.5, d1.view);
    out.same_bits("lincomb in place " + s.name(), host_in_place, d1.to_host());

    diffuse::transform(hout, scaled_difference<T>{}, h(x0), h(x2));
    diffuse::transform(dout.view, scaled_difference<T>{}, d0.view, d2.view);
    out.same_bits("transform " + s.name(), host, dout.to_host());

    std::vector<double> lo(s.batch), hi(s.batch);
    for (std::size_t b = 0; b < s.batch; ++b) lo[b] = -std::abs(c0[b]), hi[b] = std::abs(c2[b]) + 0.1;
    diffuse::clamp(hout, h(x3), per_sample(lo), per_sample(hi));
    diffuse::clamp(dout.view, d3.view, per_sample(lo), per_sample(hi));
    out.same_bits("clamp per sample " + s.name(), host, dout.to_host());
    diffuse::clamp(hout, h(x3), -1.0, 0.5f);
    diffuse::clamp(dout.view, d3.view, -1.0, 0.5f);
    out.same_bits("clamp " + s.name(), host, dout.to_host());
}

template <class T>
void check_reductions(std::mt19937_64& rng, log& out) {
    const shape s = random_shape(rng);
    auto x = random_values<T>(rng, s.size());
    const auto y = random_values<T>(rng, s.size());
    on_device<T> dx(x, s), dy(y, s);
    const diffuse::tensor_view<const T> hx{x.data(), s.batch, s.per_sample}, hy{y.data(), s.batch, s.per_sample};
    std::vector<double> host(s.batch), device(s.batch);
    diffuse::sum_squares(hx, host);
    diffuse::sum_squares(dx.view, device);
    out.same_bits("sum_squares " + s.name(), host, device);
    diffuse::dot(hx, hy, host);
    diffuse::dot(dx.view, dy.view, device);
    out.same_bits("dot " + s.name(), host, device);
    if (s.per_sample > 0) {
        diffuse::mean(hx, host);
        diffuse::mean(dx.view, device);
        out.same_bits("mean " + s.name(), host, device);
        diffuse::variance(hx, host);
        diffuse::variance(dx.view, device);
        out.same_bits("variance " + s.name(), host, device);
    }
    out.same("first_non_finite_sample (all finite) " + s.name(), diffuse::first_non_finite_sample(hx),
             diffuse::first_non_finite_sample(dx.view));
    if (s.size() > 0) {
        // NaN or ±Inf in one or two samples: the first of them is the answer
        const std::size_t i = std::uniform_int_distribution<std::size_t>(0, s.size() - 1)(rng);
        const std::size_t k = std::uniform_int_distribution<std::size_t>(i, s.size() - 1)(rng);
        x[k] = std::numeric_limits<T>::quiet_NaN();
        x[i] = (i % 2 == 0 ? 1 : -1) * std::numeric_limits<T>::infinity();
        on_device<T> bad(x, s);
        out.same("first_non_finite_sample " + s.name(), diffuse::first_non_finite_sample(hx),
                 diffuse::first_non_finite_sample(bad.view));
    }
}

template <class T>
void check_noise(std::mt19937_64& rng, log& out) {
    const shape s = random_shape(rng);
    const std::uint64_t seed = rng(), draw = rng() >> 40, first = rng() >> 20;
    const auto x0 = random_values<T>(rng, s.size()), x1 = random_values<T>(rng, s.size());
    const auto c0 = random_per_sample(rng, s.batch), cn = random_per_sample(rng, s.batch);
    on_device<T> d0(x0, s), d1(x1, s), dout(std::vector<T>(s.size()), s);
    std::vector<T> host(s.size());
    const diffuse::tensor_view<T> hout{host.data(), s.batch, s.per_sample};
    const auto h = [&](const std::vector<T>& v) { return diffuse::tensor_view<const T>{v.data(), s.batch, s.per_sample}; };

    diffuse::fill_normal(hout, seed, draw, first);
    diffuse::fill_normal(dout.view, seed, draw, first);
    out.same_bits("fill_normal " + s.name(), host, dout.to_host());

    std::vector<std::uint64_t> ids(s.batch);
    for (auto& id : ids) id = rng() >> 4;
    diffuse::fill_normal(hout, seed, draw, std::span<const std::uint64_t>(ids));
    diffuse::fill_normal(dout.view, seed, draw, std::span<const std::uint64_t>(ids));
    out.same_bits("fill_normal with sample ids " + s.name(), host, dout.to_host());

    using diffuse::normal_noise;
    using diffuse::per_sample;
    diffuse::lincomb_noise(hout, per_sample(cn), normal_noise{seed, draw, first});
    diffuse::lincomb_noise(dout.view, per_sample(cn), normal_noise{seed, draw, first});
    out.same_bits("lincomb_noise 0 inputs " + s.name(), host, dout.to_host());

    diffuse::lincomb_noise(hout, per_sample(c0), h(x0), 0.75, h(x1), per_sample(cn), normal_noise{seed, draw, first});
    diffuse::lincomb_noise(dout.view, per_sample(c0), d0.view, 0.75, d1.view, per_sample(cn), normal_noise{seed, draw, first});
    out.same_bits("lincomb_noise 2 inputs " + s.name(), host, dout.to_host());

    diffuse::lincomb_noise(hout, 1.5, h(x0), -0.5f, normal_noise{seed, draw, first});
    diffuse::lincomb_noise(dout.view, 1.5, d0.view, -0.5f, normal_noise{seed, draw, first});
    out.same_bits("lincomb_noise 1 input " + s.name(), host, dout.to_host());
}

// quantile_abs and dynamic_threshold: the order statistics must be exact (ties, ±0, several reduce blocks,
// one element, the extreme ratios), so the device's interpolation and threshold give the host's bits.
template <class T>
void check_order_statistics(std::mt19937_64& rng, log& out) {
    shape s = random_shape(rng);
    if (s.per_sample == 0) s.per_sample = 1;
    auto x = random_values<T>(rng, s.size());
    const std::size_t kind = std::uniform_int_distribution<std::size_t>(0, 2)(rng);
    if (kind == 1)  // many ties: a few distinct magnitudes of both signs, and both zeros
        for (auto& v : x) {
            v = T(std::uniform_int_distribution<int>(-3, 3)(rng)) * T(0.5);
            if (v == T(0) && rng() % 2 == 0) v = -T(0);
        }
    if (kind == 2)  // every value the same magnitude
        for (auto& v : x) v = rng() % 2 == 0 ? T(1.5) : T(-1.5);
    const double ratios[] = {0.0, 1.0, 0.5, 0.995, std::uniform_real_distribution<double>(0.0, 1.0)(rng)};
    const double ratio = ratios[std::uniform_int_distribution<std::size_t>(0, 4)(rng)];
    on_device<T> dx(x, s);
    const diffuse::tensor_view<const T> hx{x.data(), s.batch, s.per_sample};
    std::vector<double> host(s.batch), device(s.batch);
    diffuse::quantile_abs(hx, ratio, host);
    diffuse::quantile_abs(dx.view, ratio, device);
    const std::string name = s.name() + " q = " + std::to_string(ratio) + " kind " + std::to_string(kind);
    out.same_bits("quantile_abs " + name, host, device);

    const double max_value = std::uniform_real_distribution<double>(1.0, 4.0)(rng);
    std::vector<double> quantiles;
    std::vector<T> scratch;
    std::vector<T> thresholded = x;
    diffuse::dynamic_threshold(diffuse::tensor_view<T>{thresholded.data(), s.batch, s.per_sample}, ratio == 0.0 ? 0.5 : ratio,
                               max_value, quantiles, scratch);
    diffuse::dynamic_threshold(dx.view, ratio == 0.0 ? 0.5 : ratio, max_value, quantiles, scratch);
    out.same_bits("dynamic_threshold " + name, thresholded, dx.to_host());
}

// Every check on `rounds` random configurations of both element types.
inline log check_all(std::uint64_t seed, int rounds) {
    std::mt19937_64 rng(seed);
    log out;
    for (int r = 0; r < rounds; ++r) {
        check_lincomb<float>(rng, out);
        check_lincomb<double>(rng, out);
        check_reductions<float>(rng, out);
        check_reductions<double>(rng, out);
        check_noise<float>(rng, out);
        check_noise<double>(rng, out);
        check_order_statistics<float>(rng, out);
        check_order_statistics<double>(rng, out);
    }
    return out;
}

}  // namespace diffuse_device_checks
