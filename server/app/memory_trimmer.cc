#include "server/app/memory_trimmer.h"

#include <malloc.h>

namespace hier::server {

MemoryTrimmer::MemoryTrimmer(std::chrono::milliseconds interval, size_t threshold_bytes)
    : interval_(interval), threshold_bytes_(threshold_bytes), thread_([this] { Run(); }) {}

MemoryTrimmer::~MemoryTrimmer() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

bool MemoryTrimmer::TrimIfAbove(size_t threshold_bytes) {
  if (mallinfo2().fordblks <= threshold_bytes) return false;
  // Every arena, not only the top of the main heap: the pages inside free chunks go back too.
  malloc_trim(0);
  return true;
}

void MemoryTrimmer::Run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!wake_.wait_for(lock, interval_, [this] { return stop_; })) {
    lock.unlock();
    TrimIfAbove(threshold_bytes_);
    lock.lock();
  }
}

}  // namespace hier::server
