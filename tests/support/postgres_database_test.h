// A GoogleTest fixture with a fresh database on the process's throwaway PostgreSQL server
// (postgres_server.h): server_ and database_ are set in SetUp, which skips the test when no
// PostgreSQL server is installed.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/support/postgres_server.h"

namespace hier::testing {

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
