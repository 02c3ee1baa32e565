// Formats rows of text as an aligned plain-text table (a header, a rule, then the rows).
#pragma once

#include <string>
#include <vector>

namespace hier::client {

class TextTable {
 public:
  enum class Align { kLeft, kRight };
  struct Column {
    std::string header;
    Align align = Align::kLeft;
  };

  explicit TextTable(std::vector<Column> columns) : columns_(std::move(columns)) {}

  // Missing cells are left blank; cells beyond the columns are dropped.
  void AddRow(std::vector<std::string> cells);

  // Columns are separated by two spaces and padded to their widest cell (in UTF-8 code points);
  // lines carry no trailing spaces and end in '\n'.
  std::string Render() const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

// `value` with `decimals` digits after the point, e.g. FormatFixed(0.5, 6) == "0.500000".
std::string FormatFixed(double value, int decimals);

}  // namespace hier::client
