// Sharded sampling and evaluation under mpirun (tests/mpi/CMakeLists.txt runs it on 1, 2 and 3 ranks and
// compares the files it writes byte for byte across rank counts and layouts).
//   mpi_sharding_check sample LAYOUT N BATCH OUT_DIR   four samplers; rank 0 also checks the gathered
//                                                       result against this process sampling every chunk
//                                                       itself, and the shard files against the gathered one
//   mpi_sharding_check metrics N BATCH OUT_FILE        FD, SW, VLB and ODE bits/dim, written as exact hex;
//                                                       rank 0 checks them against the one-process forms
//   mpi_sharding_check fail RANK|none OUT_DIR          rank RANK throws in the middle of sampling (none: no
//                                                       rank does), then the shards are written: on any
//                                                       failure every rank must exit non-zero naming it
// Exit status: 0 when every check holds, 1 on a failed check, 3 when the run failed (mode fail).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/core/fill_normal.hpp"
#include "diffuse/guidance/cfg.hpp"
#include "diffuse/io/npy.hpp"
#include "diffuse/metrics/frechet.hpp"
#include "diffuse/metrics/sample_distance.hpp"
#include "diffuse/mpi/communicator.hpp"
#include "diffuse/mpi/sharded_distance.hpp"
#include "diffuse/mpi/sharded_frechet.hpp"
#include "diffuse/mpi/sharded_likelihood.hpp"
#include "diffuse/mpi/sharded_sampling.hpp"
#include "diffuse/samplers/analytic.hpp"
#include "diffuse/samplers/ddpm.hpp"
#include "diffuse/samplers/dpm_adaptive.hpp"
#include "diffuse/samplers/dpm_solver.hpp"
#include "diffuse/samplers/euler.hpp"
#include "diffuse/schedules/beta.hpp"
#include "diffuse/schedules/sigmas.hpp"
#include "diffuse/schedules/timesteps.hpp"

using namespace diffuse;
namespace dm = diffuse::mpi;

namespace {
constexpr std::size_t D = 3;
const gaussian_mixture data({0.4, 0.6}, {-1.0, 0.5, 0.2, 1.0, -0.5, 0.3}, {0.05, 0.1});
constexpr std::uint64_t seed = 11, init_draw = 1000;

int failures = 0;
void expect(bool ok, const std::string& what) {
    if (ok) return;
    std::fprintf(stderr, "check failed: %s\n", what.c_str());
    ++failures;
}

// One sampler as the callable of sample_shard: initial state and step noise from the chunk's global ids.
using chunk_sampler = std::function<void(const dm::shard_chunk&, tensor_view<float>)>;
struct sampler_case {
    std::string name;
    bool batch_coupled;  // the result depends on the batch composition (one step size for the batch)
    chunk_sampler run;
};

std::vector<sampler_case> sampler_cases() {
    static const auto sched = discrete_schedule::from_config("linear", 1000);
    std::vector<sampler_case> cases;
    cases.push_back({"ddpm", false, [](const dm::shard_chunk& c, tensor_view<float> x) {
                         auto m = analytic_model(data, prediction::epsilon, discrete_time(sched.alphas_cumprod));
                         fill_normal(x, seed, init_draw, c.first_sample);
                         ddpm_options o;
                         o.clip_sample = false;
                         const auto grid = discrete_grid(discrete_timesteps(1000, 12, timestep_spacing::leading));
                         sample_ddpm(m, x, sched.alphas_cumprod, grid, o, counter_noise{seed, c.first_sample}, no_observer{},
                                     c.first_sample);
                     }});
    const time_grid sigmas(karras_sigmas(10, 0.02, 20.0));
    cases.push_back({"euler_ancestral", false, [sigmas](const dm::shard_chunk& c, tensor_view<float> x) {
                         auto m = analytic_model(data, prediction::sample, sigma_time{});
                         fill_normal(x, seed, init_draw, c.first_sample);
                         for (std::size_t i = 0; i < x.size(); ++i) x.data[i] *= float(sigmas(0, 0));
                         sample_euler_ancestral(m, x, sigmas, ancestral_options{}, counter_noise{seed, c.first_sample});
                     }});
    cases.push_back({"dpmpp_2m_sde_cfg", false, [sigmas](const dm::shard_chunk& c, tensor_view<float> x) {
                         auto m = analytic_model(data, prediction::epsilon, sigma_time{});
                         m.net().conditional_weights = std::vector<double>{0.9, 0.1};
                         cfg_model<decltype(m)> guided(m, 3.0, 0.5);
                         fill_normal(x, seed, init_draw, c.first_sample);
                         for (std::size_t i = 0; i < x.size(); ++i) x.data[i] *= float(sigmas(0, 0));
                         sample_dpmpp_2m_sde(guided, x, sigmas, dpmpp_2m_sde_options{}, counter_noise{seed, c.first_sample});
                     }});
    cases.push_back({"dpm_adaptive_batch_norm", true, [](const dm::shard_chunk& c, tensor_view<float> x) {
                         auto m = analytic_model(data, prediction::sample, sigma_time{});
                         const time_grid g(std::vector<double>{20.0, 0.02});
                         fill_normal(x, seed, init_draw, c.first_sample);
                         for (std::size_t i = 0; i < x.size(); ++i) x.data[i] *= 20.0f;
                         dpm_adaptive_options o;
                         o.norm = rk_error_norm::batch;
                         o.rtol = o.atol = 1e-3;
                         (void)sample_dpm_adaptive(m, x, g, o, no_noise{});
                     }});
    return cases;
}

std::vector<float> sample_in_one_process(const dm::shard_plan& plan, const chunk_sampler& run) {
    std::vector<float> all(std::size_t(plan.samples()) * D);
    for (std::size_t k = 0; k < plan.chunks(); ++k) {
        const auto c = plan.chunk(k);
        run(c, tensor_view<float>{all.data() + c.first_sample * D, c.count, D});
    }
    return all;
}

int sample_mode(const dm::communicator& comm, const std::string& layout, std::uint64_t N, std::size_t batch,
                const std::filesystem::path& out) {
    const auto lay = layout == "round_robin" ? dm::shard_layout::round_robin : dm::shard_layout::contiguous;
    const dm::shard_plan plan(N, batch, comm.size(), lay);
    for (const auto& sc : sampler_cases()) {
        const auto local = dm::sample_shard<float>(comm, plan, D, sc.run);
        const auto all = dm::gather_samples(comm, plan, local);
        const auto manifest = out / (sc.name + ".json");
        dm::write_shards(comm, plan, local, manifest, {D});
        if (comm.rank() != 0) continue;
        io::write_npy<float>((out / (sc.name + ".npy")).string(), all, {std::size_t(N), D});
        const auto ref = sample_in_one_process(plan, sc.run);
        expect(all.size() == ref.size() && std::memcmp(all.data(), ref.data(), ref.size() * sizeof(float)) == 0,
               sc.name + ": gathered samples differ from one process sampling the same chunks");
        if (!sc.batch_coupled) {  // per-sample samplers: any batch size, e.g. all N in one batch
            const auto one = sample_in_one_process(dm::shard_plan(N, std::size_t(N), 1), sc.run);
            expect(std::memcmp(all.data(), one.data(), one.size() * sizeof(float)) == 0,
                   sc.name + ": gathered samples differ from one batch of all N");
        }
        // each shard holds its rank's chunks, in order
        for (std::size_t r = 0; r < plan.ranks(); ++r) {
            const auto chunks = plan.chunks_of(r);
            const auto path = dm::shard_path(manifest, r, plan.ranks());
            if (chunks.empty()) {
                expect(!std::filesystem::exists(path), sc.name + ": a rank without samples wrote a shard");
                continue;
            }
            const auto v = io::read_npy(path.string()).as<float>();
            std::size_t at = 0;
            for (const auto& c : chunks) {
                expect(at + c.count * D <= v.size() &&
                           std::memcmp(v.data() + at, all.data() + c.first_sample * D, c.count * D * sizeof(float)) == 0,
                       sc.name + ": shard " + std::to_string(r) + " does not hold chunk " + std::to_string(c.index));
                at += c.count * D;
            }
            expect(at == v.size(), sc.name + ": shard " + std::to_string(r) + " has extra values");
        }
        expect(std::filesystem::exists(manifest), sc.name + ": no manifest");
    }
    return failures ? 1 : 0;
}

// Features of global ids [first, first + count): normals of the ids, mixed so the dimensions correlate.
void features_of(std::uint64_t first, std::size_t count, std::size_t dim, double* out) {
    std::vector<double> z(count * dim);
    fill_normal(batched(z, count), 5, 0, first);
    for (std::size_t i = 0; i < count; ++i)
        for (std::size_t j = 0; j < dim; ++j)
            out[i * dim + j] = z[i * dim + j] + 0.5 * z[i * dim + (j + 1) % dim] + 0.1 * double(j);
}

std::string hex(double v) {
    char b[64];
    std::snprintf(b, sizeof b, "%a", v);
    return b;
}

int metrics_mode(const dm::communicator& comm, std::uint64_t N, std::size_t batch, const std::string& out) {
    const dm::shard_plan plan(N, batch, comm.size(), dm::shard_layout::round_robin);
    constexpr std::size_t F = 5;
    // this rank's features (its chunks in order), and the whole set for the one-process checks
    std::vector<double> mine, all(std::size_t(N) * F);
    for (const auto& c : plan.chunks_of(comm.rank())) {
        mine.resize(mine.size() + c.count * F);
        features_of(c.first_sample, c.count, F, mine.data() + mine.size() - c.count * F);
    }
    features_of(0, std::size_t(N), F, all.data());
    std::vector<double> ref(200 * F);
    fill_normal(batched(ref, 200), 9, 0, 0);
    const auto ref_stats = feature_statistics(batched(ref, 200));

    const std::size_t my_rows = mine.size() / F;
    const double fd = dm::sharded_frechet_distance(comm, plan, batched(mine, my_rows), ref_stats);
    // two chunks of one sample, contiguous: with 3 ranks rank 0 holds none (and must still learn the dimension)
    const dm::shard_plan two(2, 1, comm.size(), dm::shard_layout::contiguous);
    std::vector<double> two_mine;
    for (const auto& c : two.chunks_of(comm.rank()))
        for (std::size_t j = 0; j < F; ++j) two_mine.push_back(all[c.first_sample * F + j]);
    const auto two_stats = dm::sharded_feature_statistics(comm, two, tensor_view<const double>{two_mine.data(), two_mine.size() / F, F});
    const auto dirs = random_directions(16, F, 3);
    const double sw = dm::sharded_sliced_wasserstein(comm, plan, batched(mine, my_rows), batched(ref, 200), dirs);

    // likelihoods: the exact ε of Gaussian data on a short discrete schedule, and a linear PF-ODE drift
    const auto sched = discrete_schedule::from_config("linear", 50, 1e-3, 0.2);
    const auto vs = vlb_schedule::from_betas(sched.betas);
    auto net = analytic_model(gaussian_mixture::gaussian(std::vector<double>(F, 0.0), std::vector<double>(F, 1.0)),
                              prediction::epsilon, discrete_time(sched.alphas_cumprod));
    auto eps = [&](tensor_view<const double> x, std::span<const double> t, tensor_view<double> o) {
        std::vector<double> a(x.batch), s(x.batch);
        for (std::size_t b = 0; b < x.batch; ++b) {
            const double ac = sched.alphas_cumprod[std::size_t(t[b])];
            a[b] = std::sqrt(ac);
            s[b] = std::sqrt(1 - ac);
        }
        net.predict(x, a, s, prediction::epsilon, o);
    };
    const auto flv = std::vector<double>(vs.posterior_log_variance_clipped.begin(), vs.posterior_log_variance_clipped.end());
    const auto vlb = dm::sharded_vlb_bits_per_dim(comm, plan, eps, vs, mine, F, 21, flv);
    auto drift = [](std::span<const double> x, double t, std::span<double> o) {
        for (std::size_t i = 0; i < x.size(); ++i) o[i] = -(0.5 + t) * x[i];
    };
    auto prior = [](std::span<const double> x) { return gaussian_prior_logp(x); };
    ode_likelihood_options oo;
    oo.seed = 4;
    oo.rtol = oo.atol = 1e-4;
    const auto ode = dm::sharded_ode_bits_per_dim(comm, plan, drift, prior, mine, F, oo);
    if (comm.rank() != 0) return 0;

    // the same numbers in one process
    expect(sw == sliced_wasserstein(batched(all, std::size_t(N)), batched(ref, 200), dirs, 2.0),
           "sliced Wasserstein differs from the one-process value");
    const double fd1 = frechet_distance(batched(all, std::size_t(N)), batched(ref, 200));
    expect(std::abs(fd - fd1) <= 1e-10 * std::abs(fd1), "Fréchet distance " + hex(fd) + " vs one process " + hex(fd1));
    const auto two_ref = feature_statistics(tensor_view<const double>{all.data(), 2, F});
    for (std::size_t j = 0; j < F * F; ++j)
        expect(std::abs(two_stats.cov[j] - two_ref.cov[j]) <= 1e-12 * (1 + std::abs(two_ref.cov[j])), "covariance of two samples");
    double vsum = 0, osum = 0;
    for (std::size_t k = 0; k < plan.chunks(); ++k) {
        const auto c = plan.chunk(k);
        const std::span<const double> x0(all.data() + c.first_sample * F, c.count * F);
        const auto v1 = vlb_bits_per_dim(eps, vs, x0, c.count, dm::chunk_seed(21, k), flv).total_bpd;
        auto o1 = oo;
        o1.seed = dm::chunk_seed(4, k);
        const auto d1 = ode_log_likelihood(drift, prior, x0, c.count, o1).bits_per_dim;
        for (std::size_t b = 0; b < c.count; ++b) {
            expect(vlb.per_sample[c.first_sample + b] == v1[b], "VLB of sample " + std::to_string(c.first_sample + b));
            expect(ode.per_sample[c.first_sample + b] == d1[b], "ODE bits/dim of sample " + std::to_string(c.first_sample + b));
            vsum += v1[b];
            osum += d1[b];
        }
    }
    expect(vlb.mean == vsum / double(N) && ode.mean == osum / double(N), "likelihood means");
    expect(std::isfinite(vlb.mean) && vlb.mean > 0 && std::isfinite(ode.mean), "likelihoods are finite");
    const std::string text = "fd " + hex(fd) + "\nsw " + hex(sw) + "\nvlb " + hex(vlb.mean) + "\node " + hex(ode.mean) + "\ntwo " + hex(two_stats.cov[1]) + "\n";
    io::write_file(out, std::span<const unsigned char>(reinterpret_cast<const unsigned char*>(text.data()), text.size()));
    return failures ? 1 : 0;
}

int fail_mode(const dm::communicator& comm, std::size_t failing_rank, const std::filesystem::path& out) {
    const dm::shard_plan plan(30, 4, comm.size(), dm::shard_layout::round_robin);
    const auto run = sampler_cases()[1].run;
    std::size_t seen = 0;
    try {
        const auto local = dm::sample_shard<float>(comm, plan, D, [&](const dm::shard_chunk& c, tensor_view<float> x) {
            if (comm.rank() == failing_rank && ++seen == 2) throw diffuse::error("diffuse: injected failure in chunk " + std::to_string(c.index));
            run(c, x);
        });
        dm::write_shards(comm, plan, local, out / "fail.json", {D});
    } catch (const std::exception& e) {
        std::fprintf(stderr, "rank %zu exits: %s\n", comm.rank(), e.what());
        return 3;
    }
    return 0;
}
}  // namespace

int main(int argc, char** argv) {
    dm::environment env(argc, argv);
    try {
        const dm::communicator comm;
        const std::vector<std::string> a(argv + 1, argv + argc);
        if (a.size() == 5 && a[0] == "sample") return sample_mode(comm, a[1], std::stoull(a[2]), std::stoull(a[3]), a[4]);
        if (a.size() == 4 && a[0] == "metrics") return metrics_mode(comm, std::stoull(a[1]), std::stoull(a[2]), a[3]);
        if (a.size() == 3 && a[0] == "fail") return fail_mode(comm, a[1] == "none" ? comm.size() : std::stoull(a[1]), a[2]);
        std::fprintf(stderr, "usage: mpi_sharding_check sample|metrics|fail ...\n");
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mpi_sharding_check: %s\n", e.what());
        return 1;
    }
}
