#include "trainer/train/progress.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

namespace hier::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

train::ProgressSnapshot At(int64_t step) {
  train::ProgressSnapshot s;
  s.epoch = 1;
  s.epochs = 4;
  s.step = step;
  s.total_steps = 40;
  s.losses = {{"loss", 1.25}, {"hier", 0.5}};
  s.images_per_second = 812.4;
  s.eta_seconds = 125;
  return s;
}

TEST(ProgressTest, PlainOutputPrintsALineEveryFewSteps) {
  std::ostringstream out;
  train::ProgressReporter progress(out, /*live=*/false, /*every=*/5);
  for (int64_t step = 1; step <= 12; ++step) progress.Update(At(step));
  const std::string text = out.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2);  // steps 5 and 10
  EXPECT_THAT(text, HasSubstr("epoch 2/4 step 5/40 hier 0.5000 loss 1.2500 | 812 img/s ETA 2m05s"));
  EXPECT_THAT(text, Not(HasSubstr("\r")));
}

TEST(ProgressTest, LiveOutputRedrawsOneLineAndKeepsMessagesApart) {
  std::ostringstream out;
  train::ProgressReporter progress(out, /*live=*/true, /*every=*/5);
  progress.Update(At(1));
  progress.Message("eval epoch 1: R@1 0.5");
  progress.Update(At(40));
  const std::string text = out.str();
  EXPECT_THAT(text, HasSubstr("\r\033[K[....................] epoch 2/4 step 1/40"));
  EXPECT_THAT(text, HasSubstr("\r\033[Keval epoch 1: R@1 0.5\n"));
  EXPECT_THAT(text, HasSubstr("[####################] epoch 2/4 step 40/40"));
}

TEST(ProgressTest, DurationsReadNaturally) {
  EXPECT_EQ(train::FormatDuration(42), "42s");
  EXPECT_EQ(train::FormatDuration(187), "3m07s");
  EXPECT_EQ(train::FormatDuration(3720), "1h02m");
  EXPECT_EQ(train::FormatDuration(-1), "?");
}

}  // namespace
}  // namespace hier::testing
