#pragma once
// The configuration of a UNet2D: every key of diffusers' UNet2DModel config.json (diffusers 0.42), with
// diffusers' defaults, read strictly.
//
//   auto cfg = diffuse::nn::parse_unet2d_config(diffuse::io::parse_json(text));
//
// Accepted block types: DownBlock2D, AttnDownBlock2D, ResnetDownsampleBlock2D (down; also with diffusers'
// "UNetRes" prefix), UpBlock2D, AttnUpBlock2D, ResnetUpsampleBlock2D (up), UNetMidBlock2D or null (mid) —
// everything google/ddpm-{cifar10-32, celebahq-256, church-256, bedroom-256, cat-256} use. A key that is
// not UNet2DModel's, a value of the wrong type, an unsupported block type or an inconsistent
// architecture (a channel count not divisible by its group count, lists of different lengths, …) throws
// diffuse::error naming the key and the value. Keys starting with "_" (diffusers' bookkeeping) are
// ignored, except "_class_name", which must be "UNet2DModel" when present.

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/io/json.hpp"
#include "diffuse/nn/activation.hpp"

namespace diffuse::nn {

enum class time_embedding_kind { positional, fourier, learned };
enum class down_block_kind { plain, attention, resnet_downsample };  // DownBlock2D, AttnDownBlock2D, ResnetDownsampleBlock2D
enum class up_block_kind { plain, attention, resnet_upsample };      // UpBlock2D, AttnUpBlock2D, ResnetUpsampleBlock2D
enum class resample_kind { conv, resnet };                           // downsample_type / upsample_type
enum class class_embedding_kind { none, table, timestep, identity }; // class_embed_type null (+ num_class_embeds) / ...

struct unet2d_config {
    std::size_t sample_height = 0, sample_width = 0;  // sample_size (0: not given)
    std::size_t in_channels = 3, out_channels = 3;
    bool center_input_sample = false;
    time_embedding_kind time_embedding_type = time_embedding_kind::positional;
    std::optional<std::size_t> time_embedding_dim;    // default 4 × block_out_channels[0]
    double freq_shift = 0;
    bool flip_sin_to_cos = true;
    std::vector<down_block_kind> down_blocks = {down_block_kind::plain, down_block_kind::attention, down_block_kind::attention,
                                                down_block_kind::attention};
    bool mid_block = true;                            // mid_block_type "UNetMidBlock2D" or null
    std::vector<up_block_kind> up_blocks = {up_block_kind::attention, up_block_kind::attention, up_block_kind::attention,
                                            up_block_kind::plain};
    std::vector<std::size_t> block_out_channels = {224, 448, 672, 896};
    std::size_t layers_per_block = 2;
    double mid_block_scale_factor = 1;
    std::size_t downsample_padding = 1;
    resample_kind downsample_type = resample_kind::conv, upsample_type = resample_kind::conv;
    activation act_fn = activation::silu;
    std::optional<std::size_t> attention_head_dim = 8;  // null: one head of the block's full width
    std::size_t norm_num_groups = 32;
    std::optional<std::size_t> attn_norm_num_groups;
    double norm_eps = 1e-5;
    bool scale_shift = false;                          // resnet_time_scale_shift "scale_shift" (else "default")
    bool add_attention = true;
    class_embedding_kind class_embed_type = class_embedding_kind::none;
    std::optional<std::size_t> num_class_embeds;
    std::optional<std::size_t> num_train_timesteps;

    [[nodiscard]] std::size_t time_embed_dim() const { return time_embedding_dim.value_or(4 * block_out_channels.at(0)); }
    // Width of the time features before the embedding MLP (2·C₀ for Fourier features).
    [[nodiscard]] std::size_t time_input_dim() const {
        return time_embedding_type == time_embedding_kind::fourier ? 2 * block_out_channels.at(0) : block_out_channels.at(0);
    }
    [[nodiscard]] std::size_t downsampling_factor() const {
        return down_blocks.empty() ? 1 : std::size_t(1) << (down_blocks.size() - 1);
    }
    [[nodiscard]] bool class_conditional() const { return class_embed_type != class_embedding_kind::none; }
};

namespace detail {

inline constexpr std::size_t unet_max_channels = 1 << 16;

struct config_reader {
    const io::json_value& root;
    std::string where;

    [[noreturn]] void bad(std::string_view key, const io::json_value& v, std::string_view what) const {
        diffuse::detail::fail(where, std::string(key) + " = " + describe(v) + ": " + std::string(what));
    }
    static std::string describe(const io::json_value& v) {
        switch (v.type()) {
            case io::json_value::kind::null: return "null";
            case io::json_value::kind::boolean: return v.as_bool() ? "true" : "false";
            case io::json_value::kind::number: return v.number_text();
            case io::json_value::kind::string: return "\"" + v.as_string() + "\"";
            case io::json_value::kind::array: return "[...]";
            case io::json_value::kind::object: return "{...}";
        }
        return "?";
    }
    [[nodiscard]] std::size_t count(std::string_view key, const io::json_value& v, std::size_t lo, std::size_t hi) const {
        if (!v.is_number()) bad(key, v, "expected an integer");
        std::uint64_t n;
        try {
            n = v.as_uint64();
        } catch (const diffuse::error&) {
            bad(key, v, "expected a non-negative integer");
        }
        if (n < lo || n > hi) bad(key, v, "outside the accepted range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
        return std::size_t(n);
    }
    [[nodiscard]] double number(std::string_view key, const io::json_value& v) const {
        if (!v.is_number()) bad(key, v, "expected a number");
        return v.as_number();
    }
    [[nodiscard]] bool boolean(std::string_view key, const io::json_value& v) const {
        if (!v.is_bool()) bad(key, v, "expected true or false");
        return v.as_bool();
    }
    [[nodiscard]] const std::string& string(std::string_view key, const io::json_value& v) const {
        if (!v.is_string()) bad(key, v, "expected a string");
        return v.as_string();
    }
    [[nodiscard]] std::vector<std::string> strings(std::string_view key, const io::json_value& v) const {
        if (!v.is_array()) bad(key, v, "expected a list of strings");
        std::vector<std::string> out;
        for (const auto& e : v.as_array()) out.push_back(string(key, e));
        return out;
    }
};

inline std::string_view strip_unetres(std::string_view s) { return s.starts_with("UNetRes") ? s.substr(7) : s; }

// The block kinds of a list of diffusers block names (names[i] ↔ kinds[i]; "UNetRes" prefix allowed).
template <class Kind>
[[nodiscard]] std::vector<Kind> block_kinds(std::string_view key, const std::vector<std::string>& given,
                                            std::initializer_list<std::string_view> names, std::initializer_list<Kind> kinds) {
    std::vector<Kind> out;
    for (const auto& n : given) {
        const auto s = strip_unetres(n);
        const auto it = std::find(names.begin(), names.end(), s);
        if (it == names.end()) {
            std::string list;
            for (auto name : names) list += (list.empty() ? "" : ", ") + std::string(name);
            diffuse::detail::fail("unet2d config", std::string(key) + " holds \"" + n + "\", not one of " + list);
        }
        out.push_back(*(kinds.begin() + (it - names.begin())));
    }
    return out;
}

}  // namespace detail

[[nodiscard]] inline unet2d_config parse_unet2d_config(const io::json_value& root) {
    if (!root.is_object()) diffuse::detail::fail("unet2d config", "config.json is not a JSON object");
    detail::config_reader r{root, "unet2d config"};
    unet2d_config c;
    std::vector<std::string> down_names, up_names;
    bool have_down = false, have_up = false;
    for (const auto& [key, v] : root.as_object()) {
        if (key == "_class_name") {
            if (!v.is_string() || v.as_string() != "UNet2DModel")
                r.bad(key, v, "this loader reads UNet2DModel folders only");
        } else if (key.starts_with("_")) {
            continue;
        } else if (key == "sample_size") {
            if (v.is_null()) continue;
            if (v.is_array()) {
                if (v.size() != 2) r.bad(key, v, "expected an integer or [height, width]");
                c.sample_height = r.count(key, v.as_array()[0], 1, 1 << 20);
                c.sample_width = r.count(key, v.as_array()[1], 1, 1 << 20);
            } else {
                c.sample_height = c.sample_width = r.count(key, v, 1, 1 << 20);
            }
        } else if (key == "in_channels") c.in_channels = r.count(key, v, 1, detail::unet_max_channels);
        else if (key == "out_channels") c.out_channels = r.count(key, v, 1, detail::unet_max_channels);
        else if (key == "center_input_sample") c.center_input_sample = r.boolean(key, v);
        else if (key == "time_embedding_type") {
            const auto& s = r.string(key, v);
            if (s == "positional") c.time_embedding_type = time_embedding_kind::positional;
            else if (s == "fourier") c.time_embedding_type = time_embedding_kind::fourier;
            else if (s == "learned") c.time_embedding_type = time_embedding_kind::learned;
            else r.bad(key, v, "expected positional, fourier or learned");
        } else if (key == "time_embedding_dim") {
            if (v.is_null()) c.time_embedding_dim.reset();
            else c.time_embedding_dim = r.count(key, v, 1, detail::unet_max_channels);
        } else if (key == "freq_shift") {
            c.freq_shift = r.number(key, v);
            if (!std::isfinite(c.freq_shift)) r.bad(key, v, "expected a finite number");
        } else if (key == "flip_sin_to_cos") c.flip_sin_to_cos = r.boolean(key, v);
        else if (key == "down_block_types") down_names = r.strings(key, v), have_down = true;
        else if (key == "up_block_types") up_names = r.strings(key, v), have_up = true;
        else if (key == "mid_block_type") {
            if (v.is_null()) c.mid_block = false;
            else if (r.string(key, v) == "UNetMidBlock2D") c.mid_block = true;
            else r.bad(key, v, "expected \"UNetMidBlock2D\" or null");
        } else if (key == "block_out_channels") {
            if (!v.is_array() || v.size() == 0) r.bad(key, v, "expected a non-empty list of channel counts");
            c.block_out_channels.clear();
            for (const auto& e : v.as_array()) c.block_out_channels.push_back(r.count(key, e, 1, detail::unet_max_channels));
        } else if (key == "layers_per_block") c.layers_per_block = r.count(key, v, 1, 64);
        else if (key == "mid_block_scale_factor") {
            c.mid_block_scale_factor = r.number(key, v);
            if (!(c.mid_block_scale_factor > 0) || !std::isfinite(c.mid_block_scale_factor)) r.bad(key, v, "expected a positive number");
        } else if (key == "downsample_padding") c.downsample_padding = r.count(key, v, 0, 1);
        else if (key == "downsample_type" || key == "upsample_type") {
            const auto& s = r.string(key, v);
            resample_kind k;
            if (s == "conv") k = resample_kind::conv;
            else if (s == "resnet") k = resample_kind::resnet;
            else r.bad(key, v, "expected \"conv\" or \"resnet\"");
            (key == "downsample_type" ? c.downsample_type : c.upsample_type) = k;
        } else if (key == "dropout") {
            (void)r.number(key, v);  // training only
        } else if (key == "act_fn") c.act_fn = parse_activation(r.string(key, v), "unet2d config: act_fn");
        else if (key == "attention_head_dim") {
            if (v.is_null()) c.attention_head_dim.reset();
            else c.attention_head_dim = r.count(key, v, 1, detail::unet_max_channels);
        } else if (key == "norm_num_groups") c.norm_num_groups = r.count(key, v, 1, detail::unet_max_channels);
        else if (key == "attn_norm_num_groups") {
            if (v.is_null()) c.attn_norm_num_groups.reset();
            else c.attn_norm_num_groups = r.count(key, v, 1, detail::unet_max_channels);
        } else if (key == "norm_eps") {
            c.norm_eps = r.number(key, v);
            if (!(c.norm_eps > 0) || !std::isfinite(c.norm_eps)) r.bad(key, v, "expected a positive number");
        } else if (key == "resnet_time_scale_shift") {
            const auto& s = r.string(key, v);
            if (s == "default") c.scale_shift = false;
            else if (s == "scale_shift") c.scale_shift = true;
            else r.bad(key, v, "expected \"default\" or \"scale_shift\"");
        } else if (key == "add_attention") c.add_attention = r.boolean(key, v);
        else if (key == "class_embed_type") {
            if (v.is_null()) continue;
            const auto& s = r.string(key, v);
            if (s == "timestep") c.class_embed_type = class_embedding_kind::timestep;
            else if (s == "identity") c.class_embed_type = class_embedding_kind::identity;
            else r.bad(key, v, "expected null, \"timestep\" or \"identity\"");
        } else if (key == "num_class_embeds") {
            if (v.is_null()) c.num_class_embeds.reset();
            else c.num_class_embeds = r.count(key, v, 1, 1 << 24);
        } else if (key == "num_train_timesteps") {
            if (v.is_null()) c.num_train_timesteps.reset();
            else c.num_train_timesteps = r.count(key, v, 1, 1 << 24);
        } else {
            r.bad(key, v, "not a key of UNet2DModel's config");
        }
    }
    if (have_down)
        c.down_blocks = detail::block_kinds<down_block_kind>(
            "down_block_types", down_names,
            {"DownBlock2D", "AttnDownBlock2D", "ResnetDownsampleBlock2D"},
            {down_block_kind::plain, down_block_kind::attention, down_block_kind::resnet_downsample});
    if (have_up)
        c.up_blocks = detail::block_kinds<up_block_kind>(
            "up_block_types", up_names, {"UpBlock2D", "AttnUpBlock2D", "ResnetUpsampleBlock2D"},
            {up_block_kind::plain, up_block_kind::attention, up_block_kind::resnet_upsample});
    // Consistency, as UNet2DModel's constructor and its layers require.
    const auto fail = [](const std::string& what) { diffuse::detail::fail("unet2d config", what); };
    const std::size_t levels = c.block_out_channels.size();
    if (c.down_blocks.size() != levels || c.up_blocks.size() != levels)
        fail("down_block_types (" + std::to_string(c.down_blocks.size()) + "), up_block_types (" +
             std::to_string(c.up_blocks.size()) + ") and block_out_channels (" + std::to_string(levels) +
             ") must have the same length");
    if (levels > 12) fail("block_out_channels has " + std::to_string(levels) + " levels, more than 12");
    for (std::size_t ch : c.block_out_channels)
        if (ch % c.norm_num_groups != 0)
            fail("block_out_channels entry " + std::to_string(ch) + " is not divisible by norm_num_groups = " +
                 std::to_string(c.norm_num_groups));
    if (c.attn_norm_num_groups && c.block_out_channels.back() % *c.attn_norm_num_groups != 0)
        fail("block_out_channels[-1] = " + std::to_string(c.block_out_channels.back()) +
             " is not divisible by attn_norm_num_groups = " + std::to_string(*c.attn_norm_num_groups));
    if (c.block_out_channels[0] % c.norm_num_groups != 0) fail("block_out_channels[0] is not divisible by norm_num_groups");
    if (c.time_embedding_type == time_embedding_kind::learned && !c.num_train_timesteps)
        fail("time_embedding_type = \"learned\" needs num_train_timesteps");
    if (c.class_embed_type == class_embedding_kind::none && c.num_class_embeds)
        c.class_embed_type = class_embedding_kind::table;
    if (c.class_embed_type == class_embedding_kind::timestep && c.time_embedding_type == time_embedding_kind::learned)
        fail("class_embed_type = \"timestep\" with time_embedding_type = \"learned\" is not supported");
    for (std::size_t i = 0; i < levels; ++i) {
        const std::size_t ch = c.block_out_channels[i];
        const bool attn_down = c.down_blocks[i] == down_block_kind::attention;
        const bool attn_up = c.up_blocks[levels - 1 - i] == up_block_kind::attention;
        if ((attn_down || attn_up) && c.attention_head_dim && *c.attention_head_dim > ch)
            fail("attention_head_dim = " + std::to_string(*c.attention_head_dim) + " exceeds the block's " + std::to_string(ch) +
                 " channels (no head would remain)");
    }
    if (c.mid_block && c.add_attention && c.attention_head_dim && *c.attention_head_dim > c.block_out_channels.back())
        fail("attention_head_dim = " + std::to_string(*c.attention_head_dim) + " exceeds the mid block's channels");
    return c;
}

}  // namespace diffuse::nn
