#pragma once
// The U-Net's forward graph walk, shared by the CPU model (nn/unet2d.hpp) and the device model
// (cuda/unet2d.hpp): diffusers' UNet2DModel.forward after the time embedding,
//   h = conv_in(x);                                      skips = [h]
//   down level ℓ:  h = attn?(resnet(h, e)) per layer;   skips += h;  h = downsample(h); skips += h
//   mid:           h = resnet(attn?(resnet(h, e)), e)
//   up level ℓ:    h = attn?(resnet(concat(h, skips.pop()), e)) per layer;  h = upsample(h)
//   y = conv_out(SiLU(GroupNorm(h)))                    (conv_act is SiLU whatever act_fn is)
// The walk owns only the order of the layers and the activation shapes; `ops` does each layer:
//   float* skip(k, n)            skip buffer k, holding at least n floats (growing it keeps the others)
//   const float* skip(k)         skip buffer k as written
//   float* other(x, n)           the stream buffer that is not x, holding at least n floats
//   conv(layer, x, b, h, w, y)   a 2-D convolution (conv_in, the downsampling conv, the upsampling conv)
//   resnet(r, x, b, h&, w&, y)   a resnet block (e read from the time embedding); h, w become its output's
//   attend(a, x, b, T, y)        a spatial self-attention block over T = h·w pixels
//   concat(x, c, s, sc, b, hw)   [x, s] along channels (torch.cat(dim=1)), returns the buffer
//   upsample(x, b, h, w, c)      nearest 2× upsampling, returns the buffer
//   output_head(x, b, h, w, c, y)  y = conv_out(SiLU(GroupNorm(x))), x with c channels
// Levels have resnets, attentions (empty or one per resnet), and resample_conv / resample_resnet (either, or none).
// skip_c is the caller's scratch for the skips' channel counts (kept to avoid an allocation a call).
// Activations are NHWC: batch × h × w × channels.

#include <cstddef>
#include <vector>

namespace diffuse::nn::detail {

template <class Ops, class Conv, class Level>
void unet2d_walk(Ops& ops, const Conv& conv_in, const std::vector<Level>& down, const Level& mid,
                 const std::vector<Level>& up, std::size_t c, std::vector<std::size_t>& skip_c, const float* in,
                 std::size_t batch, std::size_t h, std::size_t w, float* out) {
    skip_c.clear();
    auto push_skip = [&](std::size_t n, std::size_t channels) {
        skip_c.push_back(channels);
        return ops.skip(skip_c.size() - 1, n);
    };
    // h = conv_in(x)
    float* cur = push_skip(batch * h * w * c, c);
    ops.conv(conv_in, in, batch, h, w, cur);
    // down blocks: every layer's output is a skip
    for (const auto& blk : down) {
        for (std::size_t j = 0; j < blk.resnets.size(); ++j) {
            const auto& r = blk.resnets[j];
            std::size_t h2 = h, w2 = w;
            const std::size_t n = batch * h * w * r.out_c;
            if (blk.attentions.empty()) {
                float* y = push_skip(n, r.out_c);
                ops.resnet(r, cur, batch, h2, w2, y);
                cur = y;
            } else {
                float* t = ops.other(cur, n);
                ops.resnet(r, cur, batch, h2, w2, t);
                float* y = push_skip(n, r.out_c);
                ops.attend(blk.attentions[j], t, batch, h * w, y);
                cur = y;
            }
            c = r.out_c;
        }
        if (blk.resample_conv || blk.resample_resnet) {  // Downsample2D (stride-2 conv) or a resnet with down=True
            float* y = push_skip(batch * (h / 2) * (w / 2) * c, c);
            std::size_t hr = h, wr = w;
            if (blk.resample_conv) ops.conv(*blk.resample_conv, cur, batch, h, w, y);
            else ops.resnet(*blk.resample_resnet, cur, batch, hr, wr, y);
            h /= 2;
            w /= 2;
            cur = y;
        }
    }
    // mid block: resnet, attention (if any), resnet
    const std::size_t n_mid = batch * h * w * c;
    if (!mid.resnets.empty()) {
        float* y = ops.other(cur, n_mid);
        ops.resnet(mid.resnets[0], cur, batch, h, w, y);
        cur = y;
        if (!mid.attentions.empty()) {
            y = ops.other(cur, n_mid);
            ops.attend(mid.attentions[0], cur, batch, h * w, y);
            cur = y;
        }
        y = ops.other(cur, n_mid);
        ops.resnet(mid.resnets[1], cur, batch, h, w, y);
        cur = y;
    }
    // up blocks: every resnet takes [h, skip] with the skips popped last-in first-out
    std::size_t skip_count = skip_c.size();
    for (const auto& blk : up) {
        for (std::size_t j = 0; j < blk.resnets.size(); ++j) {
            const auto& r = blk.resnets[j];
            --skip_count;
            const std::size_t sc = skip_c[skip_count], hw = h * w;
            const float* cat = ops.concat(cur, c, ops.skip(skip_count), sc, batch, hw);
            std::size_t h2 = h, w2 = w;
            float* y = ops.other(cur, batch * hw * r.out_c);
            ops.resnet(r, cat, batch, h2, w2, y);
            cur = y;
            c = r.out_c;
            if (!blk.attentions.empty()) {
                y = ops.other(cur, batch * hw * c);
                ops.attend(blk.attentions[j], cur, batch, hw, y);
                cur = y;
            }
        }
        if (blk.resample_conv) {  // Upsample2D: nearest 2× then a 3×3 conv
            const float* u = ops.upsample(cur, batch, h, w, c);
            h *= 2;
            w *= 2;
            float* y = ops.other(cur, batch * h * w * c);
            ops.conv(*blk.resample_conv, u, batch, h, w, y);
            cur = y;
        } else if (blk.resample_resnet) {  // a resnet with up=True
            float* y = ops.other(cur, batch * 4 * h * w * c);
            ops.resnet(*blk.resample_resnet, cur, batch, h, w, y);
            cur = y;
        }
    }
    ops.output_head(cur, batch, h, w, c, out);
}

}  // namespace diffuse::nn::detail
