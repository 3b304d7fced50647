// loop::SlabPool: fixed-size blocks handed out distinct and aligned, reused after release (the
// most recently released first), across several chunks.
#include "loop/slab_pool.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

namespace {

using Pool = tether::loop::SlabPool<40, 8>;

TEST(SlabPool, BlocksAreDistinctAlignedAndUsableAcrossChunks) {
  Pool pool;
  std::vector<void*> blocks;
  std::set<uintptr_t> seen;
  for (int i = 0; i < 5000; ++i) {  // 64 + 128 + ... + 1024-block chunks: several of them
    void* p = pool.allocate();
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 8, 0u);
    EXPECT_TRUE(seen.insert(reinterpret_cast<uintptr_t>(p)).second) << "block handed out twice";
    std::memset(p, i & 0xff, 40);
    blocks.push_back(p);
  }
  // No two blocks overlap: each still holds its own pattern.
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const auto* b = static_cast<const unsigned char*>(blocks[i]);
    for (int k = 0; k < 40; ++k) ASSERT_EQ(b[k], i & 0xff) << "block " << i << " overwritten";
  }
  for (void* p : blocks) pool.release(p);
}

#if !defined(__SANITIZE_ADDRESS__)  // under ASan blocks come from operator new one by one
TEST(SlabPool, ReleasedBlocksAreReusedBeforeNewOnes) {
  Pool pool;
  void* a = pool.allocate();
  void* b = pool.allocate();
  pool.release(a);
  EXPECT_EQ(pool.allocate(), a);
  pool.release(b);
  pool.release(a);
  EXPECT_EQ(pool.allocate(), a);  // last released, first reused
  EXPECT_EQ(pool.allocate(), b);
}
#endif

}  // namespace
