#include "server/storage/cluster_record.h"

#include <utility>

#ifdef HIER_HAVE_POSTGRES
#include <nlohmann/json.hpp>

#include <chrono>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "index/postgres_pool.h"
#endif

namespace hier::server {

#ifdef HIER_HAVE_POSTGRES
struct ClusterRecord::Impl {
  std::unique_ptr<index::PostgresPool> pool;
};

namespace {

constexpr char kGallery[] = "serving_gallery";
constexpr char kCheckpoint[] = "serving_checkpoint";
constexpr char kModelVersion[] = "serving_model_version";
constexpr char kSwap[] = "swap";
constexpr char kShardCount[] = "shard_count";

constexpr index::PreparedStatement kStatements[] = {
    {"has_settings", "SELECT to_regclass('hier_settings') IS NOT NULL"},
    {"get", "SELECT value FROM hier_settings WHERE key = $1::text"},
    {"put",
     "INSERT INTO hier_settings (key, value) VALUES ($1::text, $2::text) "
     "ON CONFLICT (key) DO UPDATE SET value = excluded.value"},
    {"init",
     "INSERT INTO hier_settings (key, value) VALUES ($1::text, $2::text) ON CONFLICT DO NOTHING"},
    // A running swap whose runner stayed silent for $2 ms gives way.
    {"claim_swap",
     "INSERT INTO hier_settings (key, value) VALUES ('swap', $1::text) "
     "ON CONFLICT (key) DO UPDATE SET value = excluded.value "
     "WHERE hier_settings.value::jsonb->>'state' <> 'running' "
     "OR (hier_settings.value::jsonb->>'heartbeat_unix_ms')::bigint < $2::bigint "
     "RETURNING key"},
    {"update_swap",
     "UPDATE hier_settings SET value = $2::text WHERE key = 'swap' "
     "AND value::jsonb->>'owner' = $1::text"},
    {"has_members", "SELECT to_regclass('hier_members') IS NOT NULL"},
    {"heartbeat",
     "INSERT INTO hier_members (name, address, shard_index, shard_count, model_version, "
     "previous_version, serving, items, heartbeat_at) VALUES ($1::text, $2::text, $3::integer, "
     "$4::integer, $5::text, $6::text, $7::boolean, $8::bigint, now()) ON CONFLICT (name) DO "
     "UPDATE SET address = excluded.address, shard_index = excluded.shard_index, "
     "shard_count = excluded.shard_count, model_version = excluded.model_version, "
     "previous_version = excluded.previous_version, serving = excluded.serving, "
     "items = excluded.items, heartbeat_at = excluded.heartbeat_at"},
    {"forget_members", "DELETE FROM hier_members WHERE heartbeat_at < now() - interval '1 hour'"},
    {"leave", "DELETE FROM hier_members WHERE name = $1::text"},
    {"members",
     "SELECT name, address, shard_index, shard_count, model_version, previous_version, serving, "
     "items, extract(epoch FROM now() - heartbeat_at)::float8 FROM hier_members ORDER BY name"},
    {"galleries",
     "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, 'hier_gallery_') "
     "AND nspname <> $1::text"},
};

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string SwapJson(const ClusterSwap& swap) {
  return nlohmann::json{{"owner", swap.owner},
                        {"target", swap.target},
                        {"gallery", swap.gallery},
                        {"state", swap.state},
                        {"reembedded", swap.reembedded},
                        {"error", swap.error},
                        {"heartbeat_unix_ms", swap.heartbeat_unix_ms}}
      .dump();
}

// The value of `key`, none when absent.
std::optional<std::string> Get(pqxx::transaction_base& tx, const char* key) {
  const pqxx::result found = tx.exec_prepared("get", std::string(key));
  if (found.empty()) return std::nullopt;
  return found[0][0].as<std::string>();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ClusterRecord>> ClusterRecord::Open(
    const index::StoreLocation& location) {
  index::StoreLocation base = location;
  base.schema.clear();
  index::PostgresStoreOptions options = index::PostgresOptionsFor(base);
  options.max_connections = 2;
  absl::StatusOr<std::unique_ptr<index::PostgresPool>> pool =
      index::PostgresPool::Create(options, kStatements);
  if (!pool.ok()) return pool.status();
  return std::unique_ptr<ClusterRecord>(
      new ClusterRecord(std::make_unique<Impl>(Impl{*std::move(pool)})));
}

absl::StatusOr<std::optional<ClusterServing>> ClusterRecord::ReadServing() const {
  using Found = std::optional<ClusterServing>;
  return impl_->pool->Run<Found>(
      "reading the serving record", [&](pqxx::connection& connection) -> absl::StatusOr<Found> {
        pqxx::work tx(connection);
        if (!tx.exec_prepared1("has_settings")[0].as<bool>()) return Found();
        const std::optional<std::string> version = Get(tx, kModelVersion);
        if (!version.has_value()) return Found();
        return Found(ClusterServing{Get(tx, kGallery).value_or(""),
                                    Get(tx, kCheckpoint).value_or(""), *version});
      });
}

absl::StatusOr<ClusterServing> ClusterRecord::InitServing(const ClusterServing& serving) {
  absl::Status written =
      impl_->pool->Run<bool>("recording the serving model", [&](pqxx::connection& connection) {
        pqxx::work tx(connection);
        // One record: the replica whose model version lands first sets all three.
        const bool first =
            tx.exec_prepared("init", std::string(kModelVersion), serving.model_version)
                .affected_rows() == 1;
        if (first) {
          tx.exec_prepared("put", std::string(kGallery), serving.gallery);
          tx.exec_prepared("put", std::string(kCheckpoint), serving.checkpoint);
        }
        tx.commit();
        return absl::StatusOr<bool>(first);
      }).status();
  if (!written.ok()) return written;
  absl::StatusOr<std::optional<ClusterServing>> record = ReadServing();
  if (!record.ok()) return record.status();
  if (!record->has_value()) return absl::InternalError("the serving record vanished");
  return **record;
}

absl::Status ClusterRecord::WriteServing(const ClusterServing& serving) {
  return impl_->pool
      ->Run<bool>("switching the serving model",
                  [&](pqxx::connection& connection) {
                    pqxx::work tx(connection);
                    tx.exec_prepared("put", std::string(kGallery), serving.gallery);
                    tx.exec_prepared("put", std::string(kCheckpoint), serving.checkpoint);
                    tx.exec_prepared("put", std::string(kModelVersion), serving.model_version);
                    tx.commit();
                    return absl::StatusOr<bool>(true);
                  })
      .status();
}

absl::StatusOr<bool> ClusterRecord::ClaimSwap(const ClusterSwap& swap, int64_t stale_ms) {
  return impl_->pool->Run<bool>("claiming the model swap", [&](pqxx::connection& connection) {
    pqxx::nontransaction tx(connection);
    return absl::StatusOr<bool>(
        !tx.exec_prepared("claim_swap", SwapJson(swap), NowUnixMs() - stale_ms).empty());
  });
}

absl::Status ClusterRecord::UpdateSwap(const ClusterSwap& swap) {
  return impl_->pool
      ->Run<bool>("recording the model swap",
                  [&](pqxx::connection& connection) {
                    pqxx::nontransaction tx(connection);
                    tx.exec_prepared("update_swap", swap.owner, SwapJson(swap));
                    return absl::StatusOr<bool>(true);
                  })
      .status();
}

absl::StatusOr<std::optional<ClusterSwap>> ClusterRecord::ReadSwap() const {
  using Found = std::optional<ClusterSwap>;
  return impl_->pool->Run<Found>(
      "reading the model swap", [&](pqxx::connection& connection) -> absl::StatusOr<Found> {
        pqxx::nontransaction tx(connection);
        if (!tx.exec_prepared1("has_settings")[0].as<bool>()) return Found();
        const std::optional<std::string> text = Get(tx, kSwap);
        if (!text.has_value()) return Found();
        const nlohmann::json json = nlohmann::json::parse(*text, nullptr, false);
        if (json.is_discarded() || !json.is_object()) {
          return absl::DataLossError("the cluster's swap record is not JSON");
        }
        ClusterSwap swap;
        swap.owner = json.value("owner", "");
        swap.target = json.value("target", "");
        swap.gallery = json.value("gallery", "");
        swap.state = json.value("state", "");
        swap.reembedded = json.value("reembedded", int64_t{0});
        swap.error = json.value("error", "");
        swap.heartbeat_unix_ms = json.value("heartbeat_unix_ms", int64_t{0});
        return Found(std::move(swap));
      });
}

absl::StatusOr<int64_t> ClusterRecord::DropGalleriesOtherThan(const std::string& keep) {
  return impl_->pool->Run<int64_t>(
      "dropping old galleries", [&](pqxx::connection& connection) -> absl::StatusOr<int64_t> {
        pqxx::nontransaction tx(connection);
        std::vector<std::string> names;
        for (const pqxx::row& row : tx.exec_prepared("galleries", keep)) {
          names.push_back(row[0].as<std::string>());
        }
        for (const std::string& name : names) {
          tx.exec(absl::StrCat("DROP SCHEMA IF EXISTS ", tx.quote_name(name), " CASCADE"));
        }
        return static_cast<int64_t>(names.size());
      });
}

absl::StatusOr<int> ClusterRecord::InitShardCount(int count) {
  return impl_->pool->Run<int>(
      "recording the shard count", [&](pqxx::connection& connection) -> absl::StatusOr<int> {
        pqxx::work tx(connection);
        tx.exec_prepared("init", std::string(kShardCount), absl::StrCat(count));
        const std::optional<std::string> recorded = Get(tx, kShardCount);
        tx.commit();
        int value = 0;
        if (!recorded.has_value() || !absl::SimpleAtoi(*recorded, &value) || value < 1) {
          return absl::DataLossError(absl::StrCat("hier_settings: shard_count is \"",
                                                  recorded.value_or(""), "\""));
        }
        return value;
      });
}

absl::Status ClusterRecord::SetShardCount(int count, std::chrono::milliseconds alive) {
  absl::StatusOr<std::vector<ClusterMember>> members = Members();
  if (!members.ok()) return members.status();
  std::vector<std::string> live;
  for (const ClusterMember& member : *members) {
    if (member.heartbeat_age_seconds * 1000 < alive.count()) {
      live.push_back(absl::StrCat(member.name, " at ", member.address));
    }
  }
  if (!live.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("re-sharding needs every replica stopped; still running: ",
                     absl::StrJoin(live, ", ")));
  }
  return impl_->pool
      ->Run<bool>("recording the shard count",
                  [&](pqxx::connection& connection) -> absl::StatusOr<bool> {
                    pqxx::work tx(connection);
                    if (!tx.exec_prepared1("has_settings")[0].as<bool>()) {
                      return absl::FailedPreconditionError(
                          "the store holds no cluster yet: start its replicas with --shard I/N "
                          "(the first one records N)");
                    }
                    tx.exec_prepared("put", std::string(kShardCount), absl::StrCat(count));
                    tx.commit();
                    return true;
                  })
      .status();
}

absl::Status ClusterRecord::Heartbeat(const ClusterMember& member) {
  return impl_->pool
      ->Run<bool>("announcing this replica",
                  [&](pqxx::connection& connection) {
                    pqxx::nontransaction tx(connection);
                    tx.exec_prepared("heartbeat", member.name, member.address,
                                     member.shard.index, member.shard.count,
                                     member.model_version, member.previous_version,
                                     member.serving, member.items);
                    tx.exec_prepared("forget_members");
                    return absl::StatusOr<bool>(true);
                  })
      .status();
}

absl::Status ClusterRecord::Leave(const std::string& name) {
  return impl_->pool
      ->Run<bool>("withdrawing this replica",
                  [&](pqxx::connection& connection) {
                    pqxx::nontransaction tx(connection);
                    tx.exec_prepared("leave", name);
                    return absl::StatusOr<bool>(true);
                  })
      .status();
}

absl::StatusOr<std::vector<ClusterMember>> ClusterRecord::Members() const {
  using Found = std::vector<ClusterMember>;
  return impl_->pool->Run<Found>(
      "reading the members", [&](pqxx::connection& connection) -> absl::StatusOr<Found> {
        pqxx::nontransaction tx(connection);
        Found members;
        if (!tx.exec_prepared1("has_members")[0].as<bool>()) return members;
        for (const pqxx::row& row : tx.exec_prepared("members")) {
          ClusterMember member;
          member.name = row[0].as<std::string>();
          member.address = row[1].as<std::string>();
          member.shard.index = row[2].as<int>();
          member.shard.count = row[3].as<int>();
          member.model_version = row[4].as<std::string>();
          member.previous_version = row[5].as<std::string>();
          member.serving = row[6].as<bool>();
          member.items = row[7].as<int64_t>();
          member.heartbeat_age_seconds = row[8].as<double>();
          members.push_back(std::move(member));
        }
        return members;
      });
}

#else
struct ClusterRecord::Impl {};

absl::StatusOr<std::unique_ptr<ClusterRecord>> ClusterRecord::Open(const index::StoreLocation&) {
  return index::NoPostgresSupport();
}
// No ClusterRecord exists in this build; these are never called.
absl::StatusOr<std::optional<ClusterServing>> ClusterRecord::ReadServing() const {
  return index::NoPostgresSupport();
}
absl::StatusOr<ClusterServing> ClusterRecord::InitServing(const ClusterServing&) {
  return index::NoPostgresSupport();
}
absl::Status ClusterRecord::WriteServing(const ClusterServing&) {
  return index::NoPostgresSupport();
}
absl::StatusOr<bool> ClusterRecord::ClaimSwap(const ClusterSwap&, int64_t) {
  return index::NoPostgresSupport();
}
absl::Status ClusterRecord::UpdateSwap(const ClusterSwap&) { return index::NoPostgresSupport(); }
absl::StatusOr<std::optional<ClusterSwap>> ClusterRecord::ReadSwap() const {
  return index::NoPostgresSupport();
}
absl::StatusOr<int64_t> ClusterRecord::DropGalleriesOtherThan(const std::string&) {
  return index::NoPostgresSupport();
}
absl::StatusOr<int> ClusterRecord::InitShardCount(int) { return index::NoPostgresSupport(); }
absl::Status ClusterRecord::SetShardCount(int, std::chrono::milliseconds) {
  return index::NoPostgresSupport();
}
absl::Status ClusterRecord::Heartbeat(const ClusterMember&) { return index::NoPostgresSupport(); }
absl::Status ClusterRecord::Leave(const std::string&) { return index::NoPostgresSupport(); }
absl::StatusOr<std::vector<ClusterMember>> ClusterRecord::Members() const {
  return index::NoPostgresSupport();
}
#endif

ClusterRecord::ClusterRecord(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ClusterRecord::~ClusterRecord() = default;

}  // namespace hier::server
