// Small formatting helpers the `hier` subcommands share.
#pragma once

#include <google/protobuf/map.h>
#include <google/protobuf/message.h>

#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "hier/v1/types.pb.h"

namespace hier::client::cli {

// Euclidean norm of the coordinates, in double.
double Norm(const hier::v1::Vector& vector);

// The first `count` coordinates with 6 decimals, then "..." if there are more.
std::string Preview(const hier::v1::Vector& vector, int count);

// The message in proto3 JSON with the .proto field names and default values printed.
std::string ProtoJson(const google::protobuf::Message& message);

// "name  value" lines with the values aligned.
void PrintFields(const std::vector<std::pair<std::string, std::string>>& fields, std::ostream* out);

// "R@1 0.6200 R@2 0.7300 R@10 0.8800": recall metrics ordered by their k.
std::string RecallText(const google::protobuf::Map<std::string, double>& recall);

// "1h02m03s", "4m05s" or "12s".
std::string FormatSeconds(double seconds);

}  // namespace hier::client::cli
