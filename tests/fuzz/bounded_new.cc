// Replaces the global operator new and delete of a fuzz target so that a request over 1 GiB
// throws std::bad_alloc at once, as one over the machine's memory does in production. FAISS's
// reader allocates what sizes in snapshot bytes say before reading what they count (README,
// Open); the candidate stage turns that bad_alloc into DataLoss, and the fuzzer goes on instead
// of stopping at AddressSanitizer's out-of-memory report or spending minutes zero-filling.
// Memory comes from malloc, so AddressSanitizer still checks every access to it (it no longer
// tells new from malloc, so mismatched frees of these forms go unreported).
#include <cstddef>
#include <cstdlib>
#include <new>

namespace {

constexpr std::size_t kMaxBytes = std::size_t{1} << 30;

void* Allocate(std::size_t size) noexcept {
  return size <= kMaxBytes ? std::malloc(size == 0 ? 1 : size) : nullptr;
}

void* AllocateOrThrow(std::size_t size) {
  void* memory = Allocate(size);
  if (memory == nullptr) throw std::bad_alloc();
  return memory;
}

}  // namespace

void* operator new(std::size_t size) { return AllocateOrThrow(size); }
void* operator new[](std::size_t size) { return AllocateOrThrow(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return Allocate(size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return Allocate(size); }
void operator delete(void* memory) noexcept { std::free(memory); }
void operator delete[](void* memory) noexcept { std::free(memory); }
void operator delete(void* memory, std::size_t) noexcept { std::free(memory); }
void operator delete[](void* memory, std::size_t) noexcept { std::free(memory); }
void operator delete(void* memory, const std::nothrow_t&) noexcept { std::free(memory); }
void operator delete[](void* memory, const std::nothrow_t&) noexcept { std::free(memory); }
