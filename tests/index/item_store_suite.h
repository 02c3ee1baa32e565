// The item store test suite every backend runs: the fixture, its backend hook and the helpers.
// item_store_test.cc holds the tests and runs them over SQLite; postgres_item_store_test.cc runs
// the same tests over PostgreSQL (INSTANTIATE_TEST_SUITE_P with its backend) and adds its own.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "index/item_store.h"

namespace hier::testing {

inline constexpr int64_t kDim = 4;

// A kind of store the suite runs over. It hands out fresh, empty locations and can damage a
// stored item the way a bad disk or a stray UPDATE would.
class StoreBackend {
 public:
  virtual ~StoreBackend() = default;
  // OK, or why the backend cannot run here: NotFound skips the test (e.g. no PostgreSQL
  // installed), anything else fails it.
  virtual absl::Status Available() = 0;
  // A location no store has used yet; a test may ask for several.
  virtual absl::StatusOr<index::StoreLocation> NewLocation() = 0;
  // What status messages name the store at `location` by.
  virtual std::string DisplayName(const index::StoreLocation& location) const = 0;
  // A secret that must never appear in a status message (empty when there is none).
  virtual std::string Secret(const index::StoreLocation& location) const = 0;
  // Overwrites item `id`'s stored vector with 4 bytes, behind the store's back.
  virtual absl::Status TruncateStoredVector(const index::StoreLocation& location, int64_t id) = 0;
};

struct BackendParam {
  std::string name;
  std::function<std::unique_ptr<StoreBackend>()> make;
};

inline void PrintTo(const BackendParam& param, std::ostream* out) { *out << param.name; }

inline std::string BackendName(const ::testing::TestParamInfo<BackendParam>& info) {
  return info.param.name;
}

inline index::ItemRecord MakeItem(int64_t id, float offset = 0) {
  index::ItemRecord item;
  item.id = id;
  item.key = absl::StrCat("images/", id, ".jpg");
  item.label = absl::StrCat("label ", id);
  item.attributes = absl::StrCat("{\"n\": ", id, "}");
  item.model_version = "model-7";
  item.vector = {0.01f * id + offset, -0.25f, 0.5f, offset};
  item.image_sha256 = absl::StrCat("sha-of-", id);
  return item;
}

// Every change after `after_seq`, in the order ForEachChangeAfter visits them.
inline std::vector<index::ItemChange> ChangesAfter(const index::ItemStore& store,
                                                   int64_t after_seq) {
  std::vector<index::ItemChange> changes;
  const absl::Status walked =
      store.ForEachChangeAfter(after_seq, [&](const index::ItemChange& change) {
        changes.push_back(change);
        return absl::OkStatus();
      });
  EXPECT_TRUE(walked.ok()) << walked;
  return changes;
}

// Each change as (seq, id, deleted).
inline std::vector<std::tuple<int64_t, int64_t, bool>> Summary(
    const std::vector<index::ItemChange>& changes) {
  std::vector<std::tuple<int64_t, int64_t, bool>> summary;
  for (const index::ItemChange& change : changes) {
    summary.emplace_back(change.seq, change.item.id, change.deleted);
  }
  return summary;
}

// The value of `result`, or a test failure and T{} when it holds an error.
template <typename T>
T ValueOrFail(absl::StatusOr<T> result) {
  if (result.ok()) return *std::move(result);
  ADD_FAILURE() << result.status();
  return T{};
}

inline void ExpectSameItem(const index::ItemRecord& got, const index::ItemRecord& want) {
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.key, want.key);
  EXPECT_EQ(got.label, want.label);
  EXPECT_EQ(got.attributes, want.attributes);
  EXPECT_EQ(got.model_version, want.model_version);
  EXPECT_EQ(got.vector, want.vector);
  EXPECT_EQ(got.image_sha256, want.image_sha256);
}

// The shared suite's fixture: location_ is a fresh location of the backend under test.
class ItemStoreTest : public ::testing::TestWithParam<BackendParam> {
 protected:
  void SetUp() override {
    backend_ = GetParam().make();
    const absl::Status available = backend_->Available();
    if (absl::IsNotFound(available)) GTEST_SKIP() << available;
    ASSERT_TRUE(available.ok()) << available;
    NewLocation();
  }

  // Points location_ at a fresh location.
  void NewLocation() {
    absl::StatusOr<index::StoreLocation> location = backend_->NewLocation();
    ASSERT_TRUE(location.ok()) << location.status();
    location_ = *std::move(location);
  }

  std::unique_ptr<index::ItemStore> OpenStore(int64_t dim = kDim) {
    absl::StatusOr<std::unique_ptr<index::ItemStore>> store =
        index::ItemStore::Open(location_, dim);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  // Expects `status` to name the store and to hold no secret.
  void ExpectNamesTheStore(const absl::Status& status) const {
    EXPECT_NE(status.message().find(backend_->DisplayName(location_)), absl::string_view::npos)
        << status;
    const std::string secret = backend_->Secret(location_);
    if (!secret.empty()) {
      EXPECT_EQ(status.message().find(secret), absl::string_view::npos) << status;
    }
  }

  std::unique_ptr<StoreBackend> backend_;
  index::StoreLocation location_;
};

}  // namespace hier::testing
