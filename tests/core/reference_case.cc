#include "tests/core/reference_case.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace hier::testing {
namespace {

at::Tensor TensorFromJson(const nlohmann::json& j, const std::string& name) {
  std::vector<int64_t> shape = j.at("shape").get<std::vector<int64_t>>();
  const std::string dtype = j.at("dtype").get<std::string>();
  const nlohmann::json& data = j.at("data");
  if (dtype == "float64" || dtype == "float32") {
    // Shortest round-trip decimals: parsed as double they give back the exact bits.
    std::vector<double> values = data.get<std::vector<double>>();
    at::Tensor t = at::tensor(values, at::kDouble).view(shape);
    return dtype == "float32" ? t.to(at::kFloat) : t;
  }
  if (dtype == "int64" || dtype == "bool") {
    std::vector<int64_t> values = data.get<std::vector<int64_t>>();
    at::Tensor t = at::tensor(values, at::kLong).view(shape);
    return dtype == "bool" ? t.to(at::kBool) : t;
  }
  throw std::runtime_error("reference case: tensor '" + name + "' has unknown dtype " + dtype);
}

}  // namespace

ReferenceCase ReferenceCase::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("reference case: cannot open " + path);
  ReferenceCase c;
  c.path_ = path;
  c.doc_ = nlohmann::json::parse(in);
  c.op_ = c.doc_.at("op").get<std::string>();
  c.dtype_ = c.doc_.at("dtype").get<std::string>();
  return c;
}

Tolerance ReferenceCase::tolerance() const {
  return dtype_ == "float32" ? Tolerance{2e-4, 2e-5} : Tolerance{1e-9, 1e-10};
}

double ReferenceCase::Param(const std::string& name) const {
  return doc_.at("params").at(name).get<double>();
}

std::optional<double> ReferenceCase::OptionalParam(const std::string& name) const {
  const nlohmann::json& v = doc_.at("params").at(name);
  if (v.is_null()) return std::nullopt;
  return v.get<double>();
}

bool ReferenceCase::StringParamIs(const std::string& name, const std::string& value) const {
  const nlohmann::json& v = doc_.at("params").at(name);
  return v.is_string() && v.get<std::string>() == value;
}

at::Tensor ReferenceCase::Input(const std::string& name) const {
  return TensorFromJson(doc_.at("inputs").at(name), name);
}

at::Tensor ReferenceCase::Output(const std::string& name) {
  covered_.insert(name);
  return TensorFromJson(doc_.at("outputs").at(name), name);
}

double ReferenceCase::ScalarOutput(const std::string& name) {
  covered_.insert(name);
  return doc_.at("outputs").at(name).get<double>();
}

std::vector<double> ReferenceCase::ListOutput(const std::string& name) {
  covered_.insert(name);
  return doc_.at("outputs").at(name).get<std::vector<double>>();
}

std::vector<std::string> ReferenceCase::UncoveredOutputs() const {
  std::vector<std::string> missing;
  for (const auto& item : doc_.at("outputs").items()) {
    if (!covered_.count(item.key())) missing.push_back(item.key());
  }
  return missing;
}

std::vector<std::string> ListReferenceCases(const std::string& dir) {
  std::vector<std::string> files;
  if (!std::filesystem::is_directory(dir)) return files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

void ExpectClose(const at::Tensor& got, const at::Tensor& want, Tolerance tol,
                 const std::string& what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what << ": shape";
  const at::Tensor g = got.detach().to(at::kDouble).flatten();
  const at::Tensor w = want.to(at::kDouble).flatten();
  const at::Tensor excess = (g - w).abs() - (tol.atol + tol.rtol * w.abs());
  if (g.numel() == 0) return;
  const int64_t worst = excess.argmax().item<int64_t>();
  const bool finite = at::isfinite(g).all().item<bool>();
  EXPECT_TRUE(finite && excess[worst].item<double>() <= 0)
      << what << ": entry " << worst << " got " << g[worst].item<double>() << " want "
      << w[worst].item<double>() << " (rtol " << tol.rtol << ", atol " << tol.atol << ")";
}

void ExpectEqual(const at::Tensor& got, const at::Tensor& want, const std::string& what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what << ": shape";
  const at::Tensor g = got.to(at::kDouble).flatten();
  const at::Tensor w = want.to(at::kDouble).flatten();
  const at::Tensor differ = g != w;
  EXPECT_EQ(differ.sum().item<int64_t>(), 0)
      << what << ": first difference at entry "
      << (differ.any().item<bool>() ? differ.nonzero()[0][0].item<int64_t>() : -1);
}

}  // namespace hier::testing
