#include "trainer/train/progress.h"

#include <cmath>
#include <cstdio>
#include <sstream>

namespace hier::train {
namespace {

constexpr int kBarWidth = 20;
constexpr auto kRedrawInterval = std::chrono::milliseconds(200);

std::string Describe(const ProgressSnapshot& s) {
  std::ostringstream line;
  line << "epoch " << s.epoch + 1 << "/" << s.epochs << " step " << s.step << "/" << s.total_steps;
  char number[32];
  for (const auto& [name, value] : s.losses) {
    std::snprintf(number, sizeof(number), "%.4f", value);
    line << " " << name << " " << number;
  }
  std::snprintf(number, sizeof(number), "%.0f", s.images_per_second);
  line << " | " << number << " img/s ETA " << FormatDuration(s.eta_seconds);
  return line.str();
}

}  // namespace

std::string FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t total = static_cast<int64_t>(std::llround(seconds));
  char text[32];
  if (total >= 3600) {
    std::snprintf(text, sizeof(text), "%lldh%02lldm", static_cast<long long>(total / 3600),
                  static_cast<long long>(total % 3600 / 60));
  } else if (total >= 60) {
    std::snprintf(text, sizeof(text), "%lldm%02llds", static_cast<long long>(total / 60),
                  static_cast<long long>(total % 60));
  } else {
    std::snprintf(text, sizeof(text), "%llds", static_cast<long long>(total));
  }
  return text;
}

ProgressReporter::ProgressReporter(std::ostream& out, bool live, int64_t every)
    : out_(out), live_(live), every_(every) {}

void ProgressReporter::Update(const ProgressSnapshot& s) {
  if (!live_) {
    if (s.step % every_ == 0 || s.step == s.total_steps) out_ << Describe(s) << std::endl;
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  if (bar_drawn_ && now - last_draw_ < kRedrawInterval && s.step != s.total_steps) return;
  last_draw_ = now;
  const double done = s.total_steps > 0 ? static_cast<double>(s.step) / s.total_steps : 0;
  const int filled = static_cast<int>(done * kBarWidth);
  out_ << "\r\033[K[" << std::string(filled, '#') << std::string(kBarWidth - filled, '.') << "] "
       << Describe(s) << std::flush;
  bar_drawn_ = true;
}

void ProgressReporter::Message(const std::string& line) {
  if (live_ && bar_drawn_) out_ << "\r\033[K";
  out_ << line << std::endl;
  bar_drawn_ = false;
}

}  // namespace hier::train
