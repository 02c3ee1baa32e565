#include "server/storage/blob_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/trainer/temp_dir_test.h"
#include "trainer/io/sha256.h"

namespace hier::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class BlobStoreTest : public TempDirTest {};

int64_t FilesUnder(const std::string& dir) {
  int64_t files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) files += entry.is_regular_file();
  return files;
}

TEST_F(BlobStoreTest, StoresContentOnceUnderItsDigest) {
  absl::StatusOr<server::BlobStore> store = server::BlobStore::Open(Path("blobs"));
  ASSERT_TRUE(store.ok()) << store.status();
  const std::string bytes("\x89PNG\0\1\2 image bytes", 20);
  absl::StatusOr<std::string> sha = store->Put(bytes);
  ASSERT_TRUE(sha.ok()) << sha.status();
  EXPECT_EQ(*sha, io::Sha256Hex(bytes));
  EXPECT_TRUE(fs::exists(Path("blobs/" + sha->substr(0, 2) + "/" + *sha)));
  EXPECT_EQ(*store->Put(bytes), *sha);
  ASSERT_TRUE(store->Put("other").ok());
  EXPECT_EQ(FilesUnder(Path("blobs")), 2);
  EXPECT_EQ(*store->Get(*sha), bytes);

  // Another store on the same folder (a restart) reads it back.
  EXPECT_EQ(*server::BlobStore::Open(Path("blobs"))->Get(*sha), bytes);
}

TEST_F(BlobStoreTest, MissingMalformedAndAlteredBlobsAreReported) {
  absl::StatusOr<server::BlobStore> store = server::BlobStore::Open(Path("blobs"));
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(store->Get(io::Sha256Hex("never stored")).status().code(), absl::StatusCode::kNotFound);
  const absl::Status malformed = store->Get("../../etc/passwd").status();
  EXPECT_EQ(malformed.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(malformed.message(), HasSubstr("image_sha256"));

  const std::string sha = *store->Put("original");
  std::ofstream(Path("blobs/" + sha.substr(0, 2) + "/" + sha), std::ios::trunc) << "altered";
  EXPECT_EQ(store->Get(sha).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(BlobStoreTest, RemovesWhatIsNotKeptAndTornWritesOnly) {
  absl::StatusOr<server::BlobStore> store = server::BlobStore::Open(Path("blobs"));
  ASSERT_TRUE(store.ok());
  const std::string kept = *store->Put("kept image");
  const std::string gone = *store->Put("image of a deleted item");
  const std::string folder = Path("blobs/" + gone.substr(0, 2));
  std::ofstream(folder + "/.tmp-4242-0") << "torn write";
  std::ofstream(folder + "/notes.txt") << "not ours to remove";
  std::ofstream(Path("blobs/" + gone)) << "not in a digest folder";

  absl::StatusOr<int64_t> removed = store->RemoveAllBut({kept, io::Sha256Hex("never stored")});
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 2);
  EXPECT_EQ(*store->Get(kept), "kept image");
  EXPECT_EQ(store->Get(gone).status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(folder + "/.tmp-4242-0"));
  EXPECT_TRUE(fs::exists(folder + "/notes.txt"));
  EXPECT_TRUE(fs::exists(Path("blobs/" + gone)));

  // Nothing is left to remove the second time; a removed image can be stored again.
  EXPECT_EQ(*store->RemoveAllBut({kept}), 0);
  EXPECT_EQ(*store->Put("image of a deleted item"), gone);
  EXPECT_EQ(*store->Get(gone), "image of a deleted item");
}

}  // namespace
}  // namespace hier::testing
