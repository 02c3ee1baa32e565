// A GoogleTest fixture with a fresh database on the process's throwaway PostgreSQL server
// (postgres_server.h): server_ and database_ are set in SetUp, which skips the test when no
// PostgreSQL server is installed.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/support/postgres_server.h"

namespace hier::testing {

// Writes as another writer of the store would, behind its back (index/postgres_item_store.h,
// "Change numbering"): in transaction `tx`, takes `count` numbers from the change counter and
// returns the last number before them.
inline int64_t TakeRawSeqs(pqxx::work& tx, int64_t count) {
  return tx.exec_params1("UPDATE hier_change_counter SET seq = seq + $1 RETURNING seq - $1", count)
      [0].as<int64_t>();
}

// Inserts item `id` numbered `seq` as the store writes its rows (key and model version "raw").
inline void InsertRawItem(pqxx::work& tx, int64_t id, int64_t seq, const std::string& label,
                          const std::vector<float>& vector) {
  tx.exec_params(
      "INSERT INTO hier_items (id, seq, deleted, key, label, attributes, model_version, vector, "
      "image_sha256) VALUES ($1, $2, false, 'raw', $3, '', 'raw', $4, '')",
      id, seq, label,
      pqxx::binarystring(reinterpret_cast<const char*>(vector.data()),
                         vector.size() * sizeof(float)));
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
