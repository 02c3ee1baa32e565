// Fuzz target: the rows of the item store, decoded when a server opens its collection. The input
// is written as raw rows of a SQLite store's items table (so they hold what no Upsert writes:
// vectors of any length and value, ids and sequence numbers anywhere, labels of any bytes);
// Collection::Open must load them or answer an error, and a collection that opens must answer
// searches and reads of every row's id.
#include <sqlite3.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "index/collection.h"
#include "index/sqlite_item_store.h"
#include "tests/fuzz/fuzz_scratch.h"

namespace {

namespace fs = std::filesystem;

constexpr int64_t kDim = 4;

// Reads the input front to back; past its end every read gives zeros.
class InputReader {
 public:
  InputReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool empty() const { return at_ == size_; }
  uint8_t Byte() { return at_ < size_ ? data_[at_++] : 0; }
  int64_t Int64() {
    uint64_t value = 0;
    for (int i = 0; i < 8; ++i) value = (value << 8) | Byte();
    return static_cast<int64_t>(value);
  }
  // A length byte, then that many bytes (fewer at the end of the input).
  std::string Bytes() {
    const size_t length = Byte();
    const size_t taken = std::min(length, size_ - at_);
    std::string bytes(reinterpret_cast<const char*>(data_ + at_), taken);
    at_ += taken;
    return bytes;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

// One row of the items table as the input gives it: a flags byte (1: deleted, 2: an 8-byte id
// instead of one signed byte, 4: the vector column as TEXT instead of BLOB), the id, a one-byte
// seq, then the label, key and vector bytes, each as a length byte and the bytes.
struct Row {
  uint8_t flags = 0;
  int64_t id = 0;
  int64_t seq = 0;
  std::string label, key, vector;
};

Row ReadRow(InputReader& input) {
  Row row;
  row.flags = input.Byte();
  row.id = (row.flags & 2) != 0 ? input.Int64() : static_cast<int8_t>(input.Byte());
  row.seq = input.Byte();
  row.label = input.Bytes();
  row.key = input.Bytes();
  row.vector = input.Bytes();
  return row;
}

// The bytes of an empty store's file, made once by the store itself. (Copied with a file stream
// for each input: std::filesystem::copy_file's sendfile fails on libFuzzer's timer signal.)
const std::string& EmptyStore() {
  static const std::string bytes = [] {
    const fs::path file = hier::fuzz::ScratchDir("store_rows_fuzz") / "empty.db";
    if (!hier::index::SqliteItemStore::Open(file.string(), kDim).ok()) __builtin_trap();
    std::ifstream in(file, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }();
  return bytes;
}

// Writes `rows` into the store file at `path` as they are (a row whose id or seq an earlier row
// has replaces it), and the highest seq as the last one handed out.
void WriteRows(const fs::path& path, const std::vector<Row>& rows) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) __builtin_trap();
  sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
  sqlite3_stmt* insert = nullptr;
  sqlite3_prepare_v2(
      db,
      "INSERT OR REPLACE INTO items (id, seq, deleted, key, label, attributes, "
      "model_version, vector, image_sha256) VALUES (?, ?, ?, ?, ?, '', 'fuzz', ?, '')",
      -1, &insert, nullptr);
  int64_t last_seq = 0;
  for (const Row& row : rows) {
    sqlite3_bind_int64(insert, 1, row.id);
    sqlite3_bind_int64(insert, 2, row.seq);
    sqlite3_bind_int64(insert, 3, row.flags & 1);
    sqlite3_bind_text(insert, 4, row.key.data(), static_cast<int>(row.key.size()), SQLITE_STATIC);
    sqlite3_bind_text(insert, 5, row.label.data(), static_cast<int>(row.label.size()),
                      SQLITE_STATIC);
    if ((row.flags & 4) != 0) {
      sqlite3_bind_text(insert, 6, row.vector.data(), static_cast<int>(row.vector.size()),
                        SQLITE_STATIC);
    } else {
      sqlite3_bind_blob(insert, 6, row.vector.data(), static_cast<int>(row.vector.size()),
                        SQLITE_STATIC);
    }
    if (sqlite3_step(insert) != SQLITE_DONE) __builtin_trap();
    last_seq = std::max(last_seq, row.seq);
    sqlite3_reset(insert);
  }
  sqlite3_finalize(insert);
  const std::string meta =
      "UPDATE meta SET value = " + std::to_string(last_seq) + " WHERE name = 'last_seq'";
  sqlite3_exec(db, meta.c_str(), nullptr, nullptr, nullptr);
  if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) __builtin_trap();
  sqlite3_close(db);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  InputReader input(data, size);
  std::vector<Row> rows;
  while (!input.empty()) rows.push_back(ReadRow(input));

  const fs::path dir = hier::fuzz::ScratchDir("store_rows_fuzz") / "collection";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string& empty = EmptyStore();
  hier::fuzz::WriteScratchFile(dir / "items.db", reinterpret_cast<const uint8_t*>(empty.data()),
                               empty.size());
  WriteRows(dir / "items.db", rows);

  hier::index::CollectionOptions options;
  options.directory = dir.string();
  options.index.dim = kDim;
  options.index.c = 1.0;
  options.index.max_k = 8;
  // The exact stage: an approximate one sees the same rows, checked by the index first, and
  // FAISS makes one too slowly for a fuzzer.
  options.index.candidates.kind = "exact";
  absl::StatusOr<std::unique_ptr<hier::index::Collection>> collection =
      hier::index::Collection::Open(options);
  if (!collection.ok()) return 0;
  const hier::index::HyperbolicIndex& index = (*collection)->index();
  if (index.size() > static_cast<int64_t>(rows.size())) __builtin_trap();
  hier::index::SearchOptions search;
  search.k = 3;
  (void)index.Search(std::vector<float>(kDim, 0.0f), search);
  for (const Row& row : rows) {
    (void)(*collection)->Get(row.id);
    (void)index.SearchById(row.id, search);
    (void)(*collection)->Summaries({row.id});
  }
  return 0;
}
