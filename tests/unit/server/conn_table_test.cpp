// detail::ConnTable: the loop's intrusive id -> connection table. Inserting across growth,
// finding, erasing from the middle of a chain, visiting every element once.
#include "server/conn_table.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <set>
#include <vector>

namespace {

struct Item {
  explicit Item(uint64_t i) : id_(i) {}
  uint64_t id() const { return id_; }
  uint64_t id_;
  Item* table_next = nullptr;
};

TEST(ConnTable, FindsEveryItemAcrossGrowthAndForgetsErasedOnes) {
  tether::detail::ConnTable<Item> table;
  EXPECT_EQ(table.find(1), nullptr);
  std::vector<std::unique_ptr<Item>> items;
  for (uint64_t i = 1; i <= 5000; ++i) {             // sequential ids, as the server hands them out
    items.push_back(std::make_unique<Item>(i * 2));  // even ids: 2 loops' stride
    table.insert(items.back().get());
  }
  EXPECT_EQ(table.size(), 5000u);
  for (auto& it : items) EXPECT_EQ(table.find(it->id()), it.get());
  EXPECT_EQ(table.find(3), nullptr);
  // Erase every third; the rest stay findable.
  for (std::size_t i = 0; i < items.size(); i += 3) EXPECT_TRUE(table.erase(items[i].get()));
  EXPECT_FALSE(table.erase(items[0].get()));  // not there any more
  for (std::size_t i = 0; i < items.size(); ++i)
    EXPECT_EQ(table.find(items[i]->id()), i % 3 == 0 ? nullptr : items[i].get()) << i;
  std::set<uint64_t> seen;
  table.for_each([&](Item* t) { EXPECT_TRUE(seen.insert(t->id()).second); });
  EXPECT_EQ(seen.size(), table.size());
  EXPECT_EQ(table.size(), 5000u - (5000u + 2) / 3);
}

}  // namespace
