// Gives the memory malloc holds free back to the system now and then. glibc keeps freed chunks in
// its arenas (one per busy thread, up to 8 per core) instead of returning them, so a server whose
// handler threads come and go with bursts and streams grows its resident memory by what they left
// behind: in a 15-minute soak, memory in use stayed flat (51.9 -> 52.5 MiB) while the free memory
// malloc kept grew from 15 to 35 MiB, all of it resident.
//
// Thread-safety: owns one thread, stopped and joined by the destructor.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>

namespace hier::server {

class MemoryTrimmer {
 public:
  // Every `interval`, trims when malloc holds more than `threshold_bytes` free.
  MemoryTrimmer(std::chrono::milliseconds interval, size_t threshold_bytes);
  MemoryTrimmer(const MemoryTrimmer&) = delete;
  MemoryTrimmer& operator=(const MemoryTrimmer&) = delete;
  ~MemoryTrimmer();

  // Trims now if malloc holds more than `threshold_bytes` free; whether it trimmed.
  static bool TrimIfAbove(size_t threshold_bytes);

 private:
  void Run();

  const std::chrono::milliseconds interval_;
  const size_t threshold_bytes_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace hier::server
