// A GoogleTest fixture with a fresh database on the process's throwaway PostgreSQL server
// (postgres_server.h): server_ and database_ are set in SetUp, which skips the test when no
// PostgreSQL server is installed.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/support/postgres_server.h"

namespace hier::testing {

// One transaction of a writer that follows the store's protocol by hand, behind any store
// object's back (index/postgres_item_store.h, "Change numbering"): takes numbers for `ids` from
// the change counter, inserts them as the store writes its rows (key and model version "raw",
// `label`, the vector `vector_of` gives), holds the counter for `hold`, then commits, or rolls
// back when `roll_back`. Throws what libpqxx throws.
inline void WriteRawItems(pqxx::connection& connection, const std::vector<int64_t>& ids,
                          const std::string& label,
                          const std::function<std::vector<float>(int64_t id)>& vector_of,
                          std::chrono::milliseconds hold, bool roll_back) {
  pqxx::work tx(connection);
  const int64_t base =
      tx.exec_params1("UPDATE hier_change_counter SET seq = seq + $1 RETURNING seq - $1",
                      static_cast<int64_t>(ids.size()))[0]
          .as<int64_t>();
  for (size_t k = 0; k < ids.size(); ++k) {
    const std::vector<float> vector = vector_of(ids[k]);
    tx.exec_params(
        "INSERT INTO hier_items (id, seq, deleted, key, label, attributes, model_version, vector, "
        "image_sha256) VALUES ($1, $2, false, 'raw', $3, '', 'raw', $4, '')",
        ids[k], base + static_cast<int64_t>(k) + 1, label,
        pqxx::binarystring(reinterpret_cast<const char*>(vector.data()),
                           vector.size() * sizeof(float)));
  }
  std::this_thread::sleep_for(hold);
  if (roll_back) {
    tx.abort();
  } else {
    tx.commit();
  }
}

class PostgresDatabaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<PostgresServer*> server = PostgresServer::Shared();
    if (absl::IsNotFound(server.status())) GTEST_SKIP() << server.status();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *server;
    absl::StatusOr<std::string> database = server_->CreateDatabase();
    ASSERT_TRUE(database.ok()) << database.status();
    database_ = *database;
  }

  // The libpq URI of the test's database.
  std::string Uri() const { return server_->Uri(database_); }

  PostgresServer* server_ = nullptr;
  std::string database_;
};

}  // namespace hier::testing
