// Quickstart: train the reference MLP denoiser on a 2-D data set, then sample it with six samplers.
//
//   tools/demo.sh [--dataset moons|swiss_roll|8gaussians] [--steps N] [--samples N] [--out file.png]
//
// (tools/demo.sh builds examples/quickstart.cpp and runs it with these arguments.) CTest runs a fast
// version (examples/CMakeLists.txt reads the next line):
// ctest-args: --steps 300 --samples 500 --out quickstart_ctest.png
//
// 1. Trains diffuse::mlp_denoiser (ε-prediction on the VP SDE, β 0.1 → 20) with Adam and an EMA,
//    entirely in C++ (train/toy.hpp), with a progress bar.
// 2. Samples 2000 points (--samples) with DDPM (250 steps), DDIM (50), Euler (50), Heun (25), DPM-Solver++ 2M
//    (20) and predictor–corrector (reverse diffusion + Langevin, 250 steps), all driving the same
//    network through diffuse::model.
// 3. Prints sampler, model evaluations, wall time and the sliced Wasserstein distance to held-out
//    data (with the distance between two independent data samples as the floor), and writes a PNG:
//    the data first, then one panel per sampler in the table's order, each labelled with the sampler,
//    its model evaluations and its distance to the data.

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include <diffuse/adapt/std.hpp>
#include <diffuse/core/error.hpp>
#include <diffuse/core/fill_normal.hpp>
#include <diffuse/io/png.hpp>
#include <diffuse/metrics/sample_distance.hpp>
#include <diffuse/nn/mlp.hpp>
#include <diffuse/samplers/ddim.hpp>
#include <diffuse/samplers/ddpm.hpp>
#include <diffuse/samplers/discrete.hpp>
#include <diffuse/samplers/dpm_solver.hpp>
#include <diffuse/samplers/euler.hpp>
#include <diffuse/samplers/model.hpp>
#include <diffuse/samplers/prior.hpp>
#include <diffuse/samplers/sde.hpp>
#include <diffuse/schedules/beta.hpp>
#include <diffuse/schedules/continuous.hpp>
#include <diffuse/schedules/sigmas.hpp>
#include <diffuse/train/toy.hpp>

namespace {

using clock_type = std::chrono::steady_clock;

// Scatter plot panels: 256×256 each, 4 per row, view [-2.6, 2.6]².
struct canvas {
    std::size_t panel = 256, cols = 4, rows = 2;
    std::vector<unsigned char> rgb;
    canvas() : rgb(panel * cols * panel * rows * 3, 255) {}
    [[nodiscard]] std::size_t width() const { return panel * cols; }
    [[nodiscard]] std::size_t height() const { return panel * rows; }
    void plot(std::size_t index, const std::vector<double>& pts, unsigned char r, unsigned char g, unsigned char b) {
        const std::size_t ox = (index % cols) * panel, oy = (index / cols) * panel;
        for (std::size_t i = 0; i < panel; ++i)  // frame
            for (std::size_t e : {std::size_t(0), panel - 1}) {
                set(ox + i, oy + e, 180, 180, 180);
                set(ox + e, oy + i, 180, 180, 180);
            }
        for (std::size_t i = 0; i + 1 < pts.size(); i += 2) {
            const double u = (pts[i] + 2.6) / 5.2, v = 1.0 - (pts[i + 1] + 2.6) / 5.2;
            if (!(u >= 0 && u < 1 && v >= 0 && v < 1)) continue;
            const auto px = std::size_t(u * double(panel - 2)) + 1, py = std::size_t(v * double(panel - 2)) + 1;
            for (std::size_t dy = 0; dy < 2; ++dy)
                for (std::size_t dx = 0; dx < 2; ++dx) set(ox + std::min(px + dx, panel - 2), oy + std::min(py + dy, panel - 2), r, g, b);
        }
    }
    void set(std::size_t x, std::size_t y, unsigned char r, unsigned char g, unsigned char b) {
        if (x >= width() || y >= height()) return;
        unsigned char* p = rgb.data() + (y * width() + x) * 3;
        p[0] = r, p[1] = g, p[2] = b;
    }
    // Text in panel `index`, line `line` (0 = top), with the 3×5 font below drawn at 2× scale.
    void label(std::size_t index, std::size_t line, const std::string& text) {
        const std::size_t ox = (index % cols) * panel + 6, oy = (index / cols) * panel + 6 + line * 14;
        for (std::size_t c = 0; c < text.size(); ++c) {
            const auto rows = glyph(text[c]);
            for (std::size_t r = 0; r < 5; ++r)
                for (std::size_t col = 0; col < 3; ++col)
                    if (rows[r] & (4u >> col))
                        for (std::size_t d = 0; d < 4; ++d) set(ox + c * 8 + col * 2 + d % 2, oy + r * 2 + d / 2, 0, 0, 0);
        }
    }
    // A 3×5 bitmap font: five rows per glyph, bit 4 = left column, 1 = right. Letters are upper case.
    static std::array<unsigned char, 5> glyph(char ch) {
        const char c = (ch >= 'a' && ch <= 'z') ? char(ch - 'a' + 'A') : ch;
        static constexpr unsigned char letters[26][5] = {
            {2, 5, 7, 5, 5}, {6, 5, 6, 5, 6}, {3, 4, 4, 4, 3}, {6, 5, 5, 5, 6}, {7, 4, 6, 4, 7}, {7, 4, 6, 4, 4},
            {3, 4, 5, 5, 3}, {5, 5, 7, 5, 5}, {7, 2, 2, 2, 7}, {1, 1, 1, 5, 2}, {5, 5, 6, 5, 5}, {4, 4, 4, 4, 7},
            {5, 7, 7, 5, 5}, {6, 5, 5, 5, 5}, {2, 5, 5, 5, 2}, {6, 5, 6, 4, 4}, {2, 5, 5, 6, 3}, {6, 5, 6, 5, 5},
            {3, 4, 2, 1, 6}, {7, 2, 2, 2, 2}, {5, 5, 5, 5, 7}, {5, 5, 5, 5, 2}, {5, 5, 7, 7, 5}, {5, 5, 2, 5, 5},
            {5, 5, 2, 2, 2}, {7, 1, 2, 4, 7}};
        static constexpr unsigned char digits[10][5] = {{7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {6, 1, 2, 4, 7},
                                                        {6, 1, 2, 1, 6}, {5, 5, 7, 1, 1}, {7, 4, 6, 1, 6},
                                                        {3, 4, 7, 5, 7}, {7, 1, 2, 4, 4}, {7, 5, 7, 5, 7},
                                                        {7, 5, 7, 1, 6}};
        auto from = [](const unsigned char (&g)[5]) { return std::array<unsigned char, 5>{g[0], g[1], g[2], g[3], g[4]}; };
        if (c >= 'A' && c <= 'Z') return from(letters[c - 'A']);
        if (c >= '0' && c <= '9') return from(digits[c - '0']);
        switch (c) {
            case '-': return {0, 0, 7, 0, 0};
            case '+': return {0, 2, 7, 2, 0};
            case '.': return {0, 0, 0, 0, 2};
            case '(': return {1, 2, 2, 2, 1};
            case ')': return {4, 2, 2, 2, 4};
            case '=': return {0, 7, 0, 7, 0};
            case ':': return {0, 2, 0, 2, 0};
            case '/': return {1, 1, 2, 4, 4};
            default: return {0, 0, 0, 0, 0};  // space and anything else
        }
    }
};

}  // namespace

int main(int argc, char** argv) {
    std::string dataset = "moons", out = "quickstart.png";
    std::size_t steps = 4000, n = 2000;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        bool ok = true;
        try {
            if (a == "--dataset" && i + 1 < argc) dataset = argv[++i];
            else if (a == "--steps" && i + 1 < argc) steps = std::stoul(argv[++i]);
            else if (a == "--samples" && i + 1 < argc) n = std::stoul(argv[++i]);
            else if (a == "--out" && i + 1 < argc) out = argv[++i];
            else ok = false;
        } catch (const std::exception&) {  // not a number
            ok = false;
        }
        if (!ok) {
            std::fprintf(stderr, "usage: %s [--dataset moons|swiss_roll|8gaussians] [--steps N] [--samples N] [--out file.png]\n",
                         argv[0]);
            return a == "--help" ? 0 : 2;
        }
    }
    try {
        diffuse::toy_train_config cfg;
        cfg.dataset = diffuse::parse_toy_dataset(dataset);
        cfg.steps = steps;
        diffuse::mlp_config mc;
        mc.hidden = 64;
        mc.blocks = 3;
        mc.time_scale = 1000.0;  // network time t ∈ [1e-3, 1] enters the embedding as 1000·t
        diffuse::mlp_denoiser net(mc, 1);

        // ---- training, with a progress bar
        std::printf("Training a %zu-parameter MLP on %s for %zu steps (batch %zu)\n", net.num_parameters(),
                    dataset.c_str(), cfg.steps, cfg.batch);
        const auto t0 = clock_type::now();
        double shown_loss = 0;
        const double final_loss = diffuse::train_toy_vp(net, cfg, [&](std::size_t s, double loss) {
            shown_loss = s == 0 ? loss : 0.98 * shown_loss + 0.02 * loss;
            if (s % 100 != 0 && s + 1 != cfg.steps) return;
            const int w = 30, done = int(double(w) * double(s + 1) / double(cfg.steps));
            std::fprintf(stderr, "\r  [%.*s%*s] %5zu/%zu  loss %.4f", done, "##############################", w - done, "",
                         s + 1, cfg.steps, shown_loss);
        });
        const double train_s = std::chrono::duration<double>(clock_type::now() - t0).count();
        std::fprintf(stderr, "\n");
        std::printf("Trained in %.1f s (%.0f steps/s), final loss %.4f\n\n", train_s, double(cfg.steps) / train_s,
                    final_loss);

        // ---- sampling
        diffuse::detail::require(n >= 2, "quickstart", "--samples", n, ">= 2");
        const auto held_out = diffuse::toy_sample(cfg.dataset, n, 777);
        const auto other = diffuse::toy_sample(cfg.dataset, n, 778);
        const auto dirs = diffuse::random_directions(200, 2, 99);
        auto sw = [&](const std::vector<double>& x) {
            return diffuse::sliced_wasserstein(diffuse::batched(x, n), diffuse::batched(held_out, n), dirs);
        };
        std::size_t nfe = 0;
        auto network = [&](diffuse::tensor_view<const double> x, const diffuse::model_cond& c,
                           diffuse::tensor_view<double> o) {
            ++nfe;
            net(x, c.t, o);
        };
        const diffuse::vp_sde sde;  // β 0.1 → 20, as trained
        auto model = diffuse::model(network, diffuse::prediction::epsilon, diffuse::continuous_time<diffuse::vp_sde>{sde});
        // The discrete schedule of the same SDE: ᾱ_i = m(t_i)², t_i = (i + 1)/1000 (≈ DDPM's linear betas).
        std::vector<double> ac(1000);
        for (std::size_t i = 0; i < ac.size(); ++i) ac[i] = std::pow(sde.marginal(double(i + 1) / 1000.0).mean_coef, 2);
        auto sigma_of = [&](double t) {
            const auto m = sde.marginal(t);
            return m.std / m.mean_coef;
        };
        const double sigma_max = sigma_of(1.0), sigma_min = sigma_of(1e-3);

        struct row {
            const char* name;
            std::function<void(std::vector<double>&)> run;
        };
        auto timesteps = [](std::size_t count) {
            std::vector<std::int64_t> ts(count);
            for (std::size_t i = 0; i < count; ++i)
                ts[i] = std::int64_t(std::llround(999.0 * double(count - 1 - i) / double(count - 1)));
            return ts;
        };
        std::vector<row> rows = {
            {"DDPM (250 steps)",
             [&](std::vector<double>& x) {
                 diffuse::fill_normal(diffuse::batched(x, n), 1, 0);
                 diffuse::ddpm_options o;
                 o.clip_sample = false;
                 diffuse::sample_ddpm(model, diffuse::batched(x, n), ac, diffuse::discrete_grid(timesteps(250)), o,
                                      diffuse::counter_noise{2});
             }},
            {"DDIM (50 steps)",
             [&](std::vector<double>& x) {
                 diffuse::fill_normal(diffuse::batched(x, n), 3, 0);
                 diffuse::ddim_options o;
                 o.clip_sample = false;
                 diffuse::sample_ddim(model, diffuse::batched(x, n), ac, diffuse::discrete_grid(timesteps(50)), o);
             }},
            {"Euler (50 steps)",
             [&](std::vector<double>& x) {
                 diffuse::fill_normal(diffuse::batched(x, n), 4, 0);
                 diffuse::lincomb(diffuse::batched(x, n), sigma_max, diffuse::batched(x, n));
                 diffuse::sample_euler(model, diffuse::batched(x, n),
                                       diffuse::time_grid(diffuse::karras_sigmas(50, sigma_min, sigma_max)));
             }},
            {"Heun (25 steps)",
             [&](std::vector<double>& x) {
                 diffuse::fill_normal(diffuse::batched(x, n), 5, 0);
                 diffuse::lincomb(diffuse::batched(x, n), sigma_max, diffuse::batched(x, n));
                 diffuse::sample_heun(model, diffuse::batched(x, n),
                                      diffuse::time_grid(diffuse::karras_sigmas(25, sigma_min, sigma_max)));
             }},
            {"DPM-Solver++ 2M (20 steps)",
             [&](std::vector<double>& x) {
                 diffuse::fill_normal(diffuse::batched(x, n), 6, 0);
                 diffuse::lincomb(diffuse::batched(x, n), sigma_max, diffuse::batched(x, n));
                 diffuse::sample_dpmpp_2m(model, diffuse::batched(x, n),
                                          diffuse::time_grid(diffuse::karras_sigmas(20, sigma_min, sigma_max)));
             }},
            {"Predictor-corrector (250)",
             [&](std::vector<double>& x) {
                 const diffuse::vp_sde pc_sde(0.1, 20.0, 250);
                 auto pc_model = diffuse::model(network, diffuse::prediction::epsilon,
                                                diffuse::continuous_time<diffuse::vp_sde>{pc_sde});
                 diffuse::sample_prior(pc_sde, diffuse::batched(x, n), 7);
                 // score_sde's VP setting: reverse-diffusion predictor, one Langevin corrector step with
                 // snr 0.16, the step size from the batch-mean norms (pc_options' defaults). The per-sample
                 // step size is not for 2-D data: a sample near a mode has ‖s‖ ≈ 0 and gets a huge step
                 // (tests/train/test_toy_pc.cpp shows it with the exact score).
                 const diffuse::pc_options o;
                 diffuse::sample_pc(pc_model, diffuse::batched(x, n), pc_sde,
                                    diffuse::time_grid(diffuse::score_sde_time_grid(pc_sde)), o, diffuse::counter_noise{8});
             }},
        };

        canvas fig;
        auto fixed = [](double v, int digits) {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.*f", digits, v);
            return std::string(buf);
        };
        const double floor = sw(other);
        fig.plot(0, held_out, 40, 40, 40);
        fig.label(0, 0, "data (held out)");
        fig.label(0, 1, "2nd sample: SW " + fixed(floor, 3));
        std::printf("%-28s %8s %9s %12s\n", "sampler", "NFE", "time [s]", "SW to data");
        std::printf("%-28s %8s %9s %12.4f\n", "(two data samples)", "-", "-", floor);
        for (std::size_t k = 0; k < rows.size(); ++k) {
            std::vector<double> x(2 * n);
            nfe = 0;
            const auto s0 = clock_type::now();
            rows[k].run(x);
            const double secs = std::chrono::duration<double>(clock_type::now() - s0).count();
            const double d = sw(x);
            std::printf("%-28s %8zu %9.3f %12.4f\n", rows[k].name, nfe, secs, d);
            fig.plot(k + 1, x, 20, 70, 170);
            fig.label(k + 1, 0, rows[k].name);
            fig.label(k + 1, 1, "NFE " + std::to_string(nfe) + "  SW " + fixed(d, 3));
        }
        diffuse::io::write_png(out, fig.width(), fig.height(), fig.rgb);
        std::printf("\nWrote %s: data (grey, top left), then the samplers in the table's order, each panel labelled.\n",
                    out.c_str());
    } catch (const diffuse::error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    return 0;
}
