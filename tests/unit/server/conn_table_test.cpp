// detail::ConnTable: the loop's id -> connection table (open addressing). Inserting across
// growth, finding, erasing from the middle of a probe run, visiting every element once, and a
// random mix of inserts and erases checked against std::map (runs that wrap around the end).
#include "server/conn_table.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <vector>

namespace {

struct Item {
  explicit Item(uint64_t i) : id_(i) {}
  uint64_t id() const { return id_; }
  uint64_t id_;
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

TEST(ConnTable, RandomInsertsAndErasesMatchAMap) {
  tether::detail::ConnTable<Item> table;
  std::map<uint64_t, std::unique_ptr<Item>> ref;
  std::mt19937_64 rng(12345);
  uint64_t next_id = 1;
  for (int step = 0; step < 20000; ++step) {
    // Grow towards ~300 elements, then churn around it (the table stays small, so probe runs
    // are long and wrap around the last slot).
    const bool insert = ref.size() < 50 || (rng() % 100) < (ref.size() < 300 ? 60u : 45u);
    if (insert) {
      const uint64_t id = next_id += 1 + rng() % 3;
      auto item = std::make_unique<Item>(id);
      table.insert(item.get());
      ref.emplace(id, std::move(item));
    } else {
      auto it = ref.begin();
      std::advance(it, static_cast<long>(rng() % ref.size()));
      ASSERT_TRUE(table.erase(it->second.get()));
      ref.erase(it);
    }
    ASSERT_EQ(table.size(), ref.size());
    if (step % 97 == 0) {
      for (auto& [id, item] : ref) ASSERT_EQ(table.find(id), item.get()) << "step " << step;
      std::size_t visited = 0;
      table.for_each([&](Item* t) {
        ++visited;
        EXPECT_TRUE(ref.count(t->id()));
      });
      ASSERT_EQ(visited, ref.size());
    }
  }
  for (auto& [id, item] : ref) EXPECT_EQ(table.find(id), item.get());
  EXPECT_EQ(table.find(next_id + 1), nullptr);
}

}  // namespace
