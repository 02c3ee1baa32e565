#include "server/storage/postgres_blob_store.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "trainer/io/sha256.h"

namespace hier::server {
namespace {

constexpr index::PreparedStatement kStatements[] = {
    // Content already there is marked as stored now (RemoveAllBut's min_age counts from then).
    {"put_image",
     "INSERT INTO hier_images (sha256, bytes, stored_at) VALUES ($1::text, $2::bytea, now()) "
     "ON CONFLICT (sha256) DO UPDATE SET stored_at = now()"},
    {"get_image", "SELECT bytes FROM hier_images WHERE sha256 = $1::text"},
    {"remove_images",
     "DELETE FROM hier_images WHERE sha256 <> ALL($1::text[]) "
     "AND stored_at <= now() - make_interval(secs => $2::double precision)"},
};

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresBlobStore>> PostgresBlobStore::Open(
    const index::StoreLocation& location) {
  absl::StatusOr<std::unique_ptr<index::PostgresPool>> pool =
      index::PostgresPool::Create(index::PostgresOptionsFor(location), kStatements);
  if (!pool.ok()) return pool.status();
  if (absl::Status table = (*pool)->RequireTable("hier_images"); !table.ok()) return table;
  return std::unique_ptr<PostgresBlobStore>(new PostgresBlobStore(*std::move(pool)));
}

absl::StatusOr<std::string> PostgresBlobStore::Put(std::string_view bytes) const {
  const std::string sha256 = io::Sha256Hex(bytes);
  absl::StatusOr<bool> stored =
      pool_->Run<bool>("storing an image", [&](pqxx::connection& connection) {
        pqxx::nontransaction tx(connection);  // one statement: its own transaction
        tx.exec_prepared("put_image", sha256, pqxx::binarystring(bytes.data(), bytes.size()));
        return absl::StatusOr<bool>(true);
      });
  if (!stored.ok()) return stored.status();
  return sha256;
}

absl::StatusOr<std::string> PostgresBlobStore::Get(const std::string& sha256) const {
  if (absl::Status digest = CheckDigest(sha256); !digest.ok()) return digest;
  absl::StatusOr<std::string> bytes = pool_->Run<std::string>(
      "reading an image", [&](pqxx::connection& connection) -> absl::StatusOr<std::string> {
        pqxx::nontransaction tx(connection);
        const pqxx::result found = tx.exec_prepared("get_image", sha256);
        if (found.empty()) {
          return absl::NotFoundError(absl::StrCat("image_sha256: no stored image ", sha256));
        }
        return pqxx::binarystring(found[0][0]).str();
      });
  if (bytes.ok() && io::Sha256Hex(*bytes) != sha256) {
    return absl::DataLossError(absl::StrCat("stored image ", sha256, " in ",
                                            pool_->display_uri(), " no longer matches its digest"));
  }
  return bytes;
}

absl::StatusOr<int64_t> PostgresBlobStore::RemoveAllBut(
    const absl::flat_hash_set<std::string>& keep, std::chrono::seconds min_age) const {
  std::vector<const std::string*> digests;
  for (const std::string& digest : keep) digests.push_back(&digest);
  const std::string array = index::TextArrayLiteral(digests);
  return pool_->Run<int64_t>(
      "removing unreferenced images", [&](pqxx::connection& connection) -> absl::StatusOr<int64_t> {
        pqxx::nontransaction tx(connection);
        return static_cast<int64_t>(
            tx.exec_prepared("remove_images", array, static_cast<double>(min_age.count()))
                .affected_rows());
      });
}

}  // namespace hier::server
