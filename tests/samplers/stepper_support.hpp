#pragma once
// Test support for the steppers: a stepper driven pull step by step, pushed (scheduler-style), copied
// between any two steps, and the one-call sample_* must all give the same bits.

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "diffuse/core/fill_normal.hpp"
#include "diffuse/samplers/analytic.hpp"
#include "diffuse/samplers/stepper.hpp"
#include "diffuse/schedules/beta.hpp"

namespace stepper_check {

// The test data: a two-component Gaussian mixture with D values per sample.
inline diffuse::gaussian_mixture mixture(std::size_t D) {
    std::vector<double> means(2 * D);
    for (std::size_t j = 0; j < D; ++j) {
        means[j] = 0.5 + 0.01 * double(j % 7);
        means[D + j] = -0.7 + 0.02 * double(j % 5);
    }
    return diffuse::gaussian_mixture({0.3, 0.7}, means, {0.2, 0.1});
}

// ᾱ of the linear β schedule over 1000 training steps, accumulated in double.
inline std::vector<double> linear_alphas_cumprod() {
    const auto a = diffuse::alphas_from_betas(diffuse::linear_betas(1000));
    std::vector<double> ac(a.size());
    double p = 1;
    for (std::size_t i = 0; i < a.size(); ++i) ac[i] = p *= a[i];
    return ac;
}

// A batch of scale·z, z standard normal (seed 99).
template <class T>
std::vector<T> initial_state(std::size_t B, std::size_t D, double scale = 1.0) {
    std::vector<T> x(B * D);
    diffuse::fill_normal(diffuse::tensor_view<T>{x.data(), B, D}, 99, 0);
    for (auto& v : x) v = T(v * scale);
    return x;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

template <class T>
diffuse::tensor_view<T> as_view(std::vector<T>& v, std::size_t batch) {
    return {v.data(), batch, v.size() / batch};
}

// make_stepper() → a fresh stepper; make_model() → a fresh model; one_call(model, view) → the sample_* run.
// x0: the initial state (batch rows).
template <class MakeStepper, class MakeModel, class OneCall, class T>
void check_modes(const std::string& name, MakeStepper make_stepper, MakeModel make_model, OneCall one_call,
                 const std::vector<T>& x0, std::size_t batch) {
    INFO(name);
    std::vector<T> ref = x0;
    {
        auto m = make_model();
        one_call(m, as_view(ref, batch));
    }
    bool changed = false;
    for (std::size_t i = 0; i < ref.size(); ++i) changed = changed || ref[i] != x0[i];
    REQUIRE(changed);  // the run does something

    // pull, one step at a time
    std::size_t steps = 0;
    {
        auto m = make_model();
        auto s = make_stepper();
        std::vector<T> x = x0;
        while (!s.done()) {
            s.step(m, as_view(x, batch));
            ++steps;
        }
        CHECK(s.step_index() == steps);
        CHECK(same_bits(x, ref));
    }
    // push: the caller fulfils every evaluation itself
    {
        auto m = make_model();
        auto s = make_stepper();
        std::vector<T> x = x0;
        std::size_t evaluations = 0;
        while (!s.done()) {
            for (const auto* e = s.begin_step(as_view(x, batch)); e != nullptr; e = s.resume()) {
                CHECK(s.pending() == e);
                REQUIRE(e->out.batch == batch);
                REQUIRE(e->x.batch == batch);
                diffuse::evaluate(m, *e);
                ++evaluations;
            }
            CHECK_FALSE(s.in_step());
        }
        CHECK(evaluations >= steps);
        CHECK(same_bits(x, ref));
    }
    // pull and push alternating, and a copy taken after every step k resuming on a copy of x
    for (std::size_t k = 0; k <= steps; ++k) {
        auto m = make_model();
        auto s = make_stepper();
        std::vector<T> x = x0;
        for (std::size_t i = 0; i < k; ++i) {
            if (i % 2 == 0) {
                s.step(m, as_view(x, batch));
            } else {
                for (const auto* e = s.begin_step(as_view(x, batch)); e != nullptr; e = s.resume()) diffuse::evaluate(m, *e);
            }
        }
        auto copy = s;
        std::vector<T> xc = x;
        {
            auto m2 = make_model();
            while (!copy.done()) copy.step(m2, as_view(xc, batch));
        }
        while (!s.done()) s.step(m, as_view(x, batch));
        CHECK(same_bits(xc, ref));
        CHECK(same_bits(x, ref));
    }
    // a stepper cannot be copied while a step waits for an evaluation, nor started twice, nor run past its end
    {
        auto m = make_model();
        auto s = make_stepper();
        std::vector<T> x = x0;
        const auto* e = s.begin_step(as_view(x, batch));
        if (e != nullptr) {
            CHECK_THROWS_AS(s.begin_step(as_view(x, batch)), diffuse::error);
            CHECK_THROWS_AS([&] { auto c = s; (void)c; }(), diffuse::error);
            while (e != nullptr) {
                diffuse::evaluate(m, *e);
                e = s.resume();
            }
        }
        CHECK_THROWS_AS(s.resume(), diffuse::error);
        while (!s.done()) s.step(m, as_view(x, batch));
        CHECK_THROWS_AS(s.step(m, as_view(x, batch)), diffuse::error);
        std::vector<T> wrong(x.size() + batch);
        auto s2 = make_stepper();
        CHECK_THROWS_AS(s2.step(m, as_view(wrong, batch)), diffuse::error);
    }
}

}  // namespace stepper_check
