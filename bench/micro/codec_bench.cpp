// Microbenchmarks of the codec hot loops (Google Benchmark): unmasking (§5.3), UTF-8 validation
// (§8.1) and frame header parse/encode (§5.2). Throughput is reported as bytes/s, so the
// "bytes_per_second" column reads directly as GB/s (bench/micro/README.md has the figures).
//
//   build-micro/bench/micro_codec --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "codec/frame.hpp"
#include "codec/mask.hpp"
#include "codec/utf8.hpp"

namespace {

using tether::codec::apply_mask;

// The sizes the issue asks for: a tiny message, the largest control payload (125), 1 KiB,
// 64 KiB and 1 MiB.
void sizes(benchmark::internal::Benchmark* b) {
  for (const long n : {16L, 125L, 1024L, 64L * 1024, 1024L * 1024}) b->Arg(n);
}
void sizes_and_alignment(benchmark::internal::Benchmark* b) {
  for (const long n : {16L, 125L, 1024L, 64L * 1024, 1024L * 1024})
    for (const long misalign : {0L, 3L}) b->Args({n, misalign});
}

// A 64-byte aligned buffer of `n` bytes plus slack, so `misalign` moves the start off alignment.
struct Buffer {
  explicit Buffer(std::size_t n)
      : raw_(static_cast<uint8_t*>(std::aligned_alloc(64, (n + 64 + 63) / 64 * 64))) {
    std::mt19937 rng(1);
    for (std::size_t i = 0; i < n + 64; ++i) raw_.get()[i] = static_cast<uint8_t>(rng());
  }
  uint8_t* at(std::size_t misalign) { return raw_.get() + misalign; }
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> raw_;
};

constexpr uint32_t kKey = 0x3d21fa37;

void BM_ApplyMask(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto misalign = static_cast<std::size_t>(state.range(1));
  Buffer buf(n);
  uint8_t* p = buf.at(misalign);
  for (auto _ : state) {
    benchmark::DoNotOptimize(apply_mask(p, n, kKey, 0));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(n));
}
BENCHMARK(BM_ApplyMask)->Apply(sizes_and_alignment)->ArgNames({"bytes", "misalign"});

// Key phase 1..3 (a payload continued across reads): the same loop with a rotated key.
void BM_ApplyMaskKeyOffset(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  Buffer buf(n);
  for (auto _ : state) {
    benchmark::DoNotOptimize(apply_mask(buf.at(0), n, kKey, 3));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(n));
}
BENCHMARK(BM_ApplyMaskKeyOffset)->Arg(1024)->Arg(64 * 1024)->ArgName("bytes");

// The §5.3 definition byte by byte, for scale (what apply_mask must beat).
void BM_MaskBytewiseReference(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  Buffer buf(n);
  uint8_t key[4];
  std::memcpy(key, &kKey, 4);
  uint8_t* p = buf.at(0);
  for (auto _ : state) {
    for (std::size_t i = 0; i < n; ++i) {
      p[i] ^= key[i % 4];
      benchmark::DoNotOptimize(p[i]);  // keeps the compiler from vectorising the reference
    }
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(n));
}
BENCHMARK(BM_MaskBytewiseReference)->Arg(1024)->Arg(64 * 1024)->ArgName("bytes");

// ---- UTF-8

std::vector<uint8_t> ascii_text(std::size_t n) {
  static const std::string_view words =
      "{\"seq\":12345,\"user\":\"alice\",\"text\":\"the quick brown fox jumps over the lazy "
      "dog\"}\n";
  std::vector<uint8_t> v;
  v.reserve(n);
  while (v.size() < n) v.push_back(static_cast<uint8_t>(words[v.size() % words.size()]));
  return v;
}

// Mixed scripts, mostly multi-byte: Cyrillic (2 bytes), CJK (3), emoji (4), some ASCII spaces.
// Cut at a character boundary so the whole buffer is valid.
std::vector<uint8_t> multibyte_text(std::size_t n) {
  static const std::string_view chunk =
      "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 "                  // Привет
      "\xe4\xb8\x96\xe7\x95\x8c\xe4\xbd\xa0\xe5\xa5\xbd "                  // 世界你好
      "\xf0\x9f\x98\x80\xf0\x9f\x9a\x80 "                                  // 😀🚀
      "\xce\xba\xce\xb1\xce\xbb\xce\xb7\xce\xbc\xce\xad\xcf\x81\xce\xb1 "  // καλημέρα
      "\xed\x95\x9c\xea\xb5\xad\xec\x96\xb4 ";                             // 한국어
  std::vector<uint8_t> v;
  while (v.size() + chunk.size() <= n) v.insert(v.end(), chunk.begin(), chunk.end());
  // Fill the rest with ASCII so the size is exact and the text stays valid.
  while (v.size() < n) v.push_back('.');
  return v;
}

void BM_Utf8Ascii(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto text = ascii_text(n);
  for (auto _ : state) benchmark::DoNotOptimize(tether::codec::is_valid_utf8(text));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(n));
}
BENCHMARK(BM_Utf8Ascii)->Apply(sizes)->ArgName("bytes");

void BM_Utf8Multibyte(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto text = multibyte_text(n);
  if (!tether::codec::is_valid_utf8(text)) state.SkipWithError("test text is not valid UTF-8");
  for (auto _ : state) benchmark::DoNotOptimize(tether::codec::is_valid_utf8(text));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(n));
}
BENCHMARK(BM_Utf8Multibyte)->Apply(sizes)->ArgName("bytes");

// Incremental validation as the connection does it: 1 MiB of multi-byte text fed in 1400-byte
// pieces (a TCP segment), so sequences are split across calls.
void BM_Utf8ValidatorChunked(benchmark::State& state) {
  const std::size_t n = 1024 * 1024, piece = 1400;
  const auto text = multibyte_text(n);
  for (auto _ : state) {
    tether::codec::Utf8Validator v;
    bool ok = true;
    for (std::size_t at = 0; at < n; at += piece)
      ok = v.feed({text.data() + at, std::min(piece, n - at)}) && ok;
    benchmark::DoNotOptimize(ok && v.complete());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(n));
}
BENCHMARK(BM_Utf8ValidatorChunked);

// ---- frame headers (§5.2)

// Parses one header of each length form (7-bit, 16-bit, 64-bit; masked as from a client).
void BM_ParseHeader(benchmark::State& state) {
  const uint64_t len = static_cast<uint64_t>(state.range(0));
  tether::codec::FrameHeader h;
  h.opcode = tether::codec::Opcode::binary;
  h.masked = true;
  h.mask_key = kKey;
  h.payload_len = len;
  uint8_t wire[tether::codec::max_header_size];
  const std::size_t size = tether::codec::encode_header(h, wire);
  for (auto _ : state) {
    tether::codec::FrameHeader out;
    std::size_t used = 0;
    benchmark::DoNotOptimize(wire);
    benchmark::DoNotOptimize(tether::codec::parse_header({wire, size}, out, used));
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
}
BENCHMARK(BM_ParseHeader)->Arg(16)->Arg(1024)->Arg(1 << 20)->ArgName("payload");

void BM_EncodeHeader(benchmark::State& state) {
  tether::codec::FrameHeader h;
  h.opcode = tether::codec::Opcode::text;
  h.payload_len = static_cast<uint64_t>(state.range(0));
  h.masked = state.range(1) != 0;
  h.mask_key = kKey;
  uint8_t wire[tether::codec::max_header_size];
  std::size_t size = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(h);
    size = tether::codec::encode_header(h, wire);
    benchmark::DoNotOptimize(wire);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
}
BENCHMARK(BM_EncodeHeader)
    ->Args({16, 0})
    ->Args({1024, 0})
    ->Args({1 << 20, 0})
    ->Args({16, 1})
    ->ArgNames({"payload", "masked"});

}  // namespace

BENCHMARK_MAIN();
