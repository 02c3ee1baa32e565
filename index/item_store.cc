#include "index/item_store.h"

#include <cmath>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "index/sqlite_item_store.h"
#ifdef HIER_HAVE_POSTGRES
#include "index/postgres_item_store.h"
#endif

namespace hier::index {

bool IsPostgresUri(const std::string& uri) {
  return absl::StartsWithIgnoreCase(uri, "postgresql://") ||
         absl::StartsWithIgnoreCase(uri, "postgres://");
}

absl::Status NoPostgresSupport() {
  return absl::UnimplementedError(
      "store: a PostgreSQL URI, but this binary was built without PostgreSQL support "
      "(libpqxx-dev was missing at configure time)");
}

absl::Status DecodeStoredVector(absl::string_view bytes, int64_t dim, absl::string_view where,
                                ItemRecord* item) {
  const int64_t expected = dim * static_cast<int64_t>(sizeof(float));
  if (static_cast<int64_t>(bytes.size()) != expected) {
    return absl::DataLossError(absl::StrCat(where, ": item id ", item->id, ": stored vector has ",
                                            bytes.size(), " bytes, expected ", expected));
  }
  item->vector.resize(dim);
  std::memcpy(item->vector.data(), bytes.data(), expected);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ItemStore>> ItemStore::Open(const StoreLocation& location,
                                                           int64_t dim) {
  if (IsPostgresUri(location.uri)) {
#ifdef HIER_HAVE_POSTGRES
    absl::StatusOr<std::unique_ptr<PostgresItemStore>> store =
        PostgresItemStore::Open(PostgresOptionsFor(location), dim);
    if (!store.ok()) return store.status();
    return std::unique_ptr<ItemStore>(*std::move(store));
#else
    return NoPostgresSupport();
#endif
  }
  absl::StatusOr<std::unique_ptr<SqliteItemStore>> store = SqliteItemStore::Open(location.uri, dim);
  if (!store.ok()) return store.status();
  return std::unique_ptr<ItemStore>(*std::move(store));
}

absl::StatusOr<std::unique_ptr<ItemStore>> ItemStore::Open(const std::string& location,
                                                           int64_t dim) {
  StoreLocation where;
  where.uri = location;
  return Open(where, dim);
}

absl::Status ItemStore::CheckDim(int64_t dim) {
  if (dim < 1 || dim > kMaxDim) {
    return absl::InvalidArgumentError(
        absl::StrCat("dim: must be in [1, ", kMaxDim, "], got ", dim));
  }
  return absl::OkStatus();
}

absl::Status ItemStore::CheckVectors(absl::Span<const ItemRecord> items, int64_t dim) {
  for (size_t i = 0; i < items.size(); ++i) {
    const std::vector<float>& vector = items[i].vector;
    if (static_cast<int64_t>(vector.size()) != dim) {
      return absl::InvalidArgumentError(
          absl::StrCat("items[", i, "].vector: expected ", dim, " floats, got ", vector.size()));
    }
    for (size_t j = 0; j < vector.size(); ++j) {
      if (!std::isfinite(vector[j])) {
        return absl::InvalidArgumentError(
            absl::StrCat("items[", i, "].vector[", j, "]: not finite (", vector[j], ")"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ItemStore::WalkChanges(
    int64_t after_seq, int64_t page_size,
    const std::function<absl::StatusOr<std::vector<ItemChange>>(int64_t cursor, int64_t limit)>&
        read_page,
    const std::function<absl::Status(const ItemChange&)>& visit) {
  for (int64_t cursor = after_seq;;) {
    absl::StatusOr<std::vector<ItemChange>> page = read_page(cursor, page_size);
    if (!page.ok()) return page.status();
    for (const ItemChange& change : *page) {
      if (absl::Status visited = visit(change); !visited.ok()) return visited;
    }
    if (static_cast<int64_t>(page->size()) < page_size) return absl::OkStatus();
    cursor = page->back().seq;
  }
}

}  // namespace hier::index
