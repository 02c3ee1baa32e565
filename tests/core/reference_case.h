// Loads one golden case file of ../shared/reference/hier (format in that folder's README) and
// compares tensors against it, recording which outputs a check has covered.
#pragma once

#include <ATen/core/Tensor.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace hier::testing {

struct Tolerance {
  double rtol;
  double atol;
};

class ReferenceCase {
 public:
  static ReferenceCase Load(const std::string& path);

  const std::string& op() const { return op_; }
  const std::string& dtype() const { return dtype_; }
  const std::string& path() const { return path_; }
  // The tolerance of the README for an implementation at this file's own precision.
  Tolerance tolerance() const;

  double Param(const std::string& name) const;
  std::optional<double> OptionalParam(const std::string& name) const;  // JSON null: nullopt
  bool StringParamIs(const std::string& name, const std::string& value) const;

  at::Tensor Input(const std::string& name) const;
  // Reading an expected output marks it covered.
  at::Tensor Output(const std::string& name);
  double ScalarOutput(const std::string& name);
  std::vector<double> ListOutput(const std::string& name);
  std::vector<std::string> UncoveredOutputs() const;

 private:
  std::string path_, op_, dtype_;
  nlohmann::json doc_;
  std::set<std::string> covered_;
};

// Every "*.json" case file in `dir`, sorted.
std::vector<std::string> ListReferenceCases(const std::string& dir);

// EXPECTs |got - want| <= atol + rtol |want| elementwise, naming the worst entry on failure.
void ExpectClose(const at::Tensor& got, const at::Tensor& want, Tolerance tol,
                 const std::string& what);
// EXPECTs identical shapes and values (indices, masks).
void ExpectEqual(const at::Tensor& got, const at::Tensor& want, const std::string& what);

}  // namespace hier::testing
