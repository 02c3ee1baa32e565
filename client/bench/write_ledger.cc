#include "client/bench/write_ledger.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "client/status_text.h"

namespace hier::client::bench {

absl::StatusOr<std::unique_ptr<WriteLedger>> WriteLedger::Open(const std::string& path) {
  std::ofstream out(path, std::ios::app);
  if (!out) return absl::UnavailableError(absl::StrCat("--ledger: cannot open '", path, "'"));
  return std::unique_ptr<WriteLedger>(new WriteLedger(path, std::move(out)));
}

std::string WriteLedger::Line(absl::string_view op, int64_t first_id, int64_t count,
                              absl::StatusCode code) {
  return absl::StrCat(op, " ", first_id, " ", count, " ", StatusCodeName(code));
}

void WriteLedger::Record(absl::string_view op, int64_t first_id, int64_t count,
                         absl::StatusCode code) {
  const std::string line = Line(op, first_id, count, code);
  absl::MutexLock lock(&mu_);
  out_ << line << '\n' << std::flush;
}

absl::Status WriteLedger::status() const {
  absl::MutexLock lock(&mu_);
  if (out_.good()) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat("--ledger: cannot write '", path_, "'"));
}

}  // namespace hier::client::bench
