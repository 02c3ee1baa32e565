#include "server/app/memory_trimmer.h"

#include <gtest/gtest.h>
#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

namespace hier::testing {
namespace {

// Frees every other one of many small blocks, so the freed memory sits in chunks malloc keeps
// (too small to be mmapped, not at the top of the heap where free() itself would trim).
std::vector<std::unique_ptr<char[]>> LeaveHolesInTheHeap() {
  std::vector<std::unique_ptr<char[]>> blocks;
  for (int i = 0; i < 8192; ++i) {
    blocks.emplace_back(new char[16 * 1024]);
    std::memset(blocks.back().get(), 1, 16 * 1024);
  }
  for (size_t i = 0; i < blocks.size(); i += 2) blocks[i].reset();
  return blocks;
}

// The process's resident memory, from /proc/self/statm.
long ResidentBytes() {
  long size = 0, pages = 0;
  if (FILE* statm = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(statm, "%ld %ld", &size, &pages) != 2) pages = 0;
    std::fclose(statm);
  }
  return pages * sysconf(_SC_PAGESIZE);
}

TEST(MemoryTrimmerTest, FreeMemoryAboveTheThresholdGoesBackToTheSystem) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "a sanitizer's allocator replaces the C library's";
#endif
  const std::vector<std::unique_ptr<char[]>> kept = LeaveHolesInTheHeap();
  const size_t free_before = mallinfo2().fordblks;
  ASSERT_GT(free_before, size_t{32} << 20);
  EXPECT_FALSE(server::MemoryTrimmer::TrimIfAbove(free_before + 1));
  // The holes' pages go back (they stay malloc's free chunks, so fordblks does not change; the
  // process's resident memory does).
  const long before = ResidentBytes();
  EXPECT_TRUE(server::MemoryTrimmer::TrimIfAbove(size_t{8} << 20));
  EXPECT_LT(ResidentBytes(), before - (long{24} << 20));
}

TEST(MemoryTrimmerTest, ItsThreadTrimsOnItsIntervalAndStopsAtOnce) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "a sanitizer's allocator replaces the C library's";
#endif
  const std::vector<std::unique_ptr<char[]>> kept = LeaveHolesInTheHeap();
  const long before = ResidentBytes();
  {
    const server::MemoryTrimmer trimmer(std::chrono::milliseconds(50), size_t{8} << 20);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (ResidentBytes() > before - (long{24} << 20) && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_LT(ResidentBytes(), before - (long{24} << 20));
  }
  const auto stopping = std::chrono::steady_clock::now();
  {
    const server::MemoryTrimmer idle(std::chrono::hours(1), 0);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - stopping, std::chrono::seconds(5));
}

}  // namespace
}  // namespace hier::testing
