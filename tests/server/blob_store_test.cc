// The blob store suite, run over both backends (files under a state folder, PostgreSQL's
// hier_images), and what is particular to the file backend.
#include "server/storage/blob_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "server/storage/file_blob_store.h"
#include "tests/trainer/temp_dir_test.h"
#include "trainer/io/sha256.h"
#ifdef HIER_HAVE_POSTGRES
#include "index/postgres_item_store.h"
#include "server/storage/postgres_blob_store.h"
#include "tests/support/postgres_server.h"
#endif

namespace hier::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A kind of blob store the suite runs over, able to tamper with what it stored.
class BlobBackend {
 public:
  virtual ~BlobBackend() = default;
  // An empty store; NotFound skips the test (e.g. no PostgreSQL installed).
  virtual absl::StatusOr<std::unique_ptr<server::BlobStore>> Open() = 0;
  // Another store object on the same images (a restart, or another replica).
  virtual absl::StatusOr<std::unique_ptr<server::BlobStore>> Reopen() = 0;
  // Replaces the bytes stored under `sha256`, behind the store's back.
  virtual absl::Status Alter(const std::string& sha256, const std::string& bytes) = 0;
  // Makes `sha256` look stored `age` ago.
  virtual absl::Status Age(const std::string& sha256, std::chrono::seconds age) = 0;
};

class FileBackend : public BlobBackend {
 public:
  FileBackend() {
    std::string pattern = ::testing::TempDir() + "hier_blobs_XXXXXX";
    if (mkdtemp(pattern.data()) != nullptr) dir_ = pattern;
  }
  ~FileBackend() override { fs::remove_all(dir_); }

  absl::StatusOr<std::unique_ptr<server::BlobStore>> Open() override { return Reopen(); }
  absl::StatusOr<std::unique_ptr<server::BlobStore>> Reopen() override {
    return server::BlobStore::Open(index::StoreLocation{}, dir_);
  }
  absl::Status Alter(const std::string& sha256, const std::string& bytes) override {
    std::ofstream(PathOf(sha256), std::ios::trunc) << bytes;
    return absl::OkStatus();
  }
  absl::Status Age(const std::string& sha256, std::chrono::seconds age) override {
    std::error_code error;
    fs::last_write_time(PathOf(sha256), fs::file_time_type::clock::now() - age, error);
    return error ? absl::InternalError(error.message()) : absl::OkStatus();
  }

 private:
  std::string PathOf(const std::string& sha256) const {
    return absl::StrCat(dir_, "/blobs/", sha256.substr(0, 2), "/", sha256);
  }
  std::string dir_;
};

#ifdef HIER_HAVE_POSTGRES
class PostgresBackend : public BlobBackend {
 public:
  absl::StatusOr<std::unique_ptr<server::BlobStore>> Open() override {
    absl::StatusOr<PostgresServer*> server = PostgresServer::Shared();
    if (!server.ok()) return server.status();
    server_ = *server;
    absl::StatusOr<std::string> database = server_->CreateDatabase();
    if (!database.ok()) return database.status();
    database_ = *database;
    location_.uri = server_->Uri(database_);
    // The images table belongs to the store of record's schema, which the server opens first.
    absl::StatusOr<std::unique_ptr<index::ItemStore>> items = index::ItemStore::Open(location_, 4);
    if (!items.ok()) return items.status();
    return Reopen();
  }
  absl::StatusOr<std::unique_ptr<server::BlobStore>> Reopen() override {
    return server::BlobStore::Open(location_, "unused");
  }
  absl::Status Alter(const std::string& sha256, const std::string& bytes) override {
    return server_->Execute(database_, absl::StrCat("UPDATE hier_images SET bytes = convert_to('",
                                                    bytes, "', 'UTF8') WHERE sha256 = '", sha256,
                                                    "'"));
  }
  absl::Status Age(const std::string& sha256, std::chrono::seconds age) override {
    return server_->Execute(
        database_, absl::StrCat("UPDATE hier_images SET stored_at = now() - interval '",
                                age.count(), " seconds' WHERE sha256 = '", sha256, "'"));
  }

 private:
  PostgresServer* server_ = nullptr;
  std::string database_;
  index::StoreLocation location_;
};
#endif

struct BlobBackendParam {
  std::string name;
  std::function<std::unique_ptr<BlobBackend>()> make;
};
void PrintTo(const BlobBackendParam& param, std::ostream* out) { *out << param.name; }

class BlobStoreTest : public ::testing::TestWithParam<BlobBackendParam> {
 protected:
  void SetUp() override {
    backend_ = GetParam().make();
    absl::StatusOr<std::unique_ptr<server::BlobStore>> store = backend_->Open();
    if (absl::IsNotFound(store.status())) GTEST_SKIP() << store.status();
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  std::unique_ptr<BlobBackend> backend_;
  std::unique_ptr<server::BlobStore> store_;
};

TEST_P(BlobStoreTest, StoresContentOnceUnderItsDigest) {
  const std::string bytes("\x89PNG\0\1\2 image bytes", 20);
  absl::StatusOr<std::string> sha = store_->Put(bytes);
  ASSERT_TRUE(sha.ok()) << sha.status();
  EXPECT_EQ(*sha, io::Sha256Hex(bytes));
  EXPECT_EQ(*store_->Put(bytes), *sha);
  EXPECT_EQ(*store_->Get(*sha), bytes);
  // Another store on the same images (a restart, another replica) reads it back.
  absl::StatusOr<std::unique_ptr<server::BlobStore>> again = backend_->Reopen();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*(*again)->Get(*sha), bytes);
}

TEST_P(BlobStoreTest, MissingMalformedAndAlteredBlobsAreReported) {
  EXPECT_EQ(store_->Get(io::Sha256Hex("never stored")).status().code(),
            absl::StatusCode::kNotFound);
  const absl::Status malformed = store_->Get("../../etc/passwd").status();
  EXPECT_EQ(malformed.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(malformed.message(), HasSubstr("image_sha256"));

  const std::string sha = *store_->Put("original");
  ASSERT_TRUE(backend_->Alter(sha, "altered").ok());
  EXPECT_EQ(store_->Get(sha).status().code(), absl::StatusCode::kDataLoss);
}

TEST_P(BlobStoreTest, RemovesWhatIsNotKeptOnceOldEnough) {
  const std::string kept = *store_->Put("kept image");
  const std::string gone = *store_->Put("image of a deleted item");
  // Stored just now: a cluster's sweep (min_age) leaves it for an item that may still come.
  EXPECT_EQ(*store_->RemoveAllBut({kept}, std::chrono::hours(1)), 0);
  ASSERT_TRUE(backend_->Age(gone, std::chrono::hours(2)).ok());
  ASSERT_TRUE(backend_->Age(kept, std::chrono::hours(2)).ok());
  absl::StatusOr<int64_t> removed =
      store_->RemoveAllBut({kept, io::Sha256Hex("never stored")}, std::chrono::hours(1));
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 1);
  EXPECT_EQ(*store_->Get(kept), "kept image");
  EXPECT_EQ(store_->Get(gone).status().code(), absl::StatusCode::kNotFound);

  // Storing content again counts as storing it now.
  ASSERT_TRUE(backend_->Age(kept, std::chrono::hours(2)).ok());
  EXPECT_EQ(*store_->Put("kept image"), kept);
  EXPECT_EQ(*store_->RemoveAllBut({}, std::chrono::hours(1)), 0);
  // One machine's sweep at start (min_age 0) takes whatever is not kept.
  EXPECT_EQ(*store_->RemoveAllBut({}, std::chrono::seconds(0)), 1);
  // A removed image can be stored again.
  EXPECT_EQ(*store_->Put("image of a deleted item"), gone);
  EXPECT_EQ(*store_->Get(gone), "image of a deleted item");
}

INSTANTIATE_TEST_SUITE_P(File, BlobStoreTest,
                         ::testing::Values(BlobBackendParam{
                             "File", [] { return std::make_unique<FileBackend>(); }}),
                         [](const auto& info) { return info.param.name; });
#ifdef HIER_HAVE_POSTGRES
INSTANTIATE_TEST_SUITE_P(Postgres, BlobStoreTest,
                         ::testing::Values(BlobBackendParam{
                             "Postgres", [] { return std::make_unique<PostgresBackend>(); }}),
                         [](const auto& info) { return info.param.name; });

TEST(PostgresBlobStoreTest, ADatabaseWithoutTheItemStoreIsRefused) {
  absl::StatusOr<PostgresServer*> server = PostgresServer::Shared();
  if (absl::IsNotFound(server.status())) GTEST_SKIP() << server.status();
  ASSERT_TRUE(server.ok()) << server.status();
  absl::StatusOr<std::string> database = (*server)->CreateDatabase();
  ASSERT_TRUE(database.ok()) << database.status();
  index::StoreLocation location;
  location.uri = (*server)->Uri(*database);
  const absl::Status status = server::BlobStore::Open(location, "unused").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(status.message(), HasSubstr("no hier_images table"));
  EXPECT_THAT(status.message(), ::testing::Not(HasSubstr((*server)->password())));
}
#endif

// The file backend's own: torn writes go, files of other names stay.
class FileBlobStoreTest : public TempDirTest {};

TEST_F(FileBlobStoreTest, KeepsContentUnderItsDigestAndSweepsTornWritesOnly) {
  absl::StatusOr<std::unique_ptr<server::FileBlobStore>> store =
      server::FileBlobStore::Open(Path("blobs"));
  ASSERT_TRUE(store.ok()) << store.status();
  const std::string sha = *(*store)->Put("an image");
  EXPECT_TRUE(fs::exists(Path("blobs/" + sha.substr(0, 2) + "/" + sha)));
  const std::string folder = Path("blobs/" + sha.substr(0, 2));
  std::ofstream(folder + "/.tmp-4242-0") << "torn write";
  std::ofstream(folder + "/notes.txt") << "not ours to remove";
  std::ofstream(Path("blobs/" + sha)) << "not in a digest folder";

  EXPECT_EQ(*(*store)->RemoveAllBut({sha}, std::chrono::seconds(0)), 1);
  EXPECT_FALSE(fs::exists(folder + "/.tmp-4242-0"));
  EXPECT_TRUE(fs::exists(folder + "/notes.txt"));
  EXPECT_TRUE(fs::exists(Path("blobs/" + sha)));
  EXPECT_EQ(*(*store)->Get(sha), "an image");
}

}  // namespace
}  // namespace hier::testing
