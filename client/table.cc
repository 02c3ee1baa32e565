#include "client/table.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace hier::client {
namespace {

// Display width approximated by code points: count the bytes that do not continue a UTF-8
// sequence.
size_t DisplayWidth(const std::string& text) {
  return std::count_if(text.begin(), text.end(),
                       [](char ch) { return (static_cast<unsigned char>(ch) & 0xC0) != 0x80; });
}

void AppendCell(const std::string& text, size_t width, TextTable::Align align, bool last,
                std::string* line) {
  const std::string padding(width - DisplayWidth(text), ' ');
  if (align == TextTable::Align::kRight) {
    *line += padding + text;
  } else {
    *line += text;
    if (!last) *line += padding;
  }
}

}  // namespace

void TextTable::AddRow(std::vector<std::string> cells) {
  cells.resize(columns_.size());
  rows_.push_back(std::move(cells));
}

std::string TextTable::Render() const {
  std::vector<size_t> widths(columns_.size());
  for (size_t c = 0; c < columns_.size(); ++c) {
    widths[c] = DisplayWidth(columns_[c].header);
    for (const auto& row : rows_) widths[c] = std::max(widths[c], DisplayWidth(row[c]));
  }
  auto render_line = [&](auto cell_text) {
    std::string line;
    for (size_t c = 0; c < columns_.size(); ++c) {
      if (c > 0) line += "  ";
      AppendCell(cell_text(c), widths[c], columns_[c].align, c + 1 == columns_.size(), &line);
    }
    line.erase(line.find_last_not_of(' ') + 1);
    return line + "\n";
  };
  std::string out = render_line([&](size_t c) { return columns_[c].header; });
  out += render_line([&](size_t c) { return std::string(widths[c], '-'); });
  for (const auto& row : rows_) out += render_line([&](size_t c) { return row[c]; });
  return out;
}

std::string FormatFixed(double value, int decimals) {
  return absl::StrFormat("%.*f", decimals, value);
}

}  // namespace hier::client
