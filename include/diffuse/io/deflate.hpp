#pragma once
// A small DEFLATE compressor (RFC 1951) inside a zlib stream (RFC 1950), for PNG output: LZ77 over a
// 32 KiB window with hash chains (3-byte hash, bounded chain length, longest match up to 258 bytes),
// coded with the fixed Huffman codes of RFC 1951 §3.2.6. Deterministic; no dependency. Worst case
// (incompressible data) the fixed codes cost ≤ 9/8 of the input plus a few bytes.
//
//   std::vector<unsigned char> z = diffuse::io::zlib_compress(bytes);

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace diffuse::io {

namespace detail {

// Bits written least-significant first, as DEFLATE packs them.
class bit_writer {
public:
    explicit bit_writer(std::vector<unsigned char>& out) : out_(out) {}
    void bits(std::uint32_t value, unsigned count) {
        acc_ |= std::uint64_t(value) << fill_;
        fill_ += count;
        while (fill_ >= 8) {
            out_.push_back(static_cast<unsigned char>(acc_ & 0xFF));
            acc_ >>= 8;
            fill_ -= 8;
        }
    }
    // A Huffman code: its bits go most-significant first.
    void code(std::uint32_t code, unsigned length) {
        std::uint32_t r = 0;
        for (unsigned i = 0; i < length; ++i) r |= ((code >> i) & 1u) << (length - 1 - i);
        bits(r, length);
    }
    void flush() {
        if (fill_ > 0) out_.push_back(static_cast<unsigned char>(acc_ & 0xFF));
        acc_ = 0;
        fill_ = 0;
    }

private:
    std::vector<unsigned char>& out_;
    std::uint64_t acc_ = 0;
    unsigned fill_ = 0;
};

// Fixed literal/length code (RFC 1951 §3.2.6).
inline void fixed_literal(bit_writer& w, unsigned symbol) {
    if (symbol < 144) w.code(0x30 + symbol, 8);
    else if (symbol < 256) w.code(0x190 + (symbol - 144), 9);
    else if (symbol < 280) w.code(symbol - 256, 7);
    else w.code(0xC0 + (symbol - 280), 8);
}

inline constexpr std::array<std::uint16_t, 29> length_base = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                                              31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
inline constexpr std::array<std::uint8_t, 29> length_extra = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                                              2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
inline constexpr std::array<std::uint16_t, 30> dist_base = {1,   2,   3,   4,   5,   7,    9,    13,   17,   25,
                                                            33,  49,  65,  97,  129, 193,  257,  385,  513,  769,
                                                            1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
inline constexpr std::array<std::uint8_t, 30> dist_extra = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6,
                                                            6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

inline void fixed_match(bit_writer& w, unsigned length, unsigned distance) {
    unsigned li = 28;
    while (length_base[li] > length) --li;
    fixed_literal(w, 257 + li);
    w.bits(length - length_base[li], length_extra[li]);
    unsigned di = 29;
    while (dist_base[di] > distance) --di;
    w.code(di, 5);
    w.bits(distance - dist_base[di], dist_extra[di]);
}

}  // namespace detail

// zlib stream (header 0x78 0x9C, one fixed-Huffman DEFLATE block, Adler-32) of `data`.
[[nodiscard]] inline std::vector<unsigned char> zlib_compress(std::span<const unsigned char> data) {
    constexpr std::size_t window = 32768, min_match = 3, max_match = 258, max_chain = 64;
    constexpr std::size_t hash_size = 1 << 15;
    std::vector<unsigned char> out{0x78, 0x9C};
    detail::bit_writer w(out);
    w.bits(1, 1);  // BFINAL
    w.bits(1, 2);  // BTYPE = 01, fixed Huffman codes
    std::vector<std::int64_t> head(hash_size, -1), prev(window, -1);
    auto hash = [&](std::size_t i) {
        return ((std::size_t(data[i]) << 10) ^ (std::size_t(data[i + 1]) << 5) ^ std::size_t(data[i + 2])) & (hash_size - 1);
    };
    auto insert = [&](std::size_t i) {
        if (i + min_match > data.size()) return;
        const std::size_t h = hash(i);
        prev[i % window] = head[h];
        head[h] = std::int64_t(i);
    };
    std::size_t i = 0;
    while (i < data.size()) {
        std::size_t best_len = 0, best_dist = 0;
        if (i + min_match <= data.size()) {
            std::int64_t cand = head[hash(i)];
            const std::size_t limit = std::min(max_match, data.size() - i);
            for (std::size_t chain = 0; cand >= 0 && i - std::size_t(cand) <= window - 1 && chain < max_chain; ++chain) {
                const std::size_t c = std::size_t(cand);
                std::size_t len = 0;
                while (len < limit && data[c + len] == data[i + len]) ++len;
                if (len > best_len) best_len = len, best_dist = i - c;
                if (len == limit) break;
                const std::int64_t next = prev[c % window];
                if (next >= cand) break;  // the slot was reused by a newer position
                cand = next;
            }
        }
        if (best_len >= min_match) {
            detail::fixed_match(w, unsigned(best_len), unsigned(best_dist));
            for (std::size_t k = 0; k < best_len; ++k) insert(i + k);
            i += best_len;
        } else {
            detail::fixed_literal(w, data[i]);
            insert(i);
            ++i;
        }
    }
    detail::fixed_literal(w, 256);  // end of block
    w.flush();
    std::uint32_t a = 1, b = 0;
    for (unsigned char c : data) a = (a + c) % 65521, b = (b + a) % 65521;  // Adler-32
    const std::uint32_t adler = (b << 16) | a;
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<unsigned char>(adler >> s));
    return out;
}

}  // namespace diffuse::io
