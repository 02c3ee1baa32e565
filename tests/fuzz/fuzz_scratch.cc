#include "tests/fuzz/fuzz_scratch.h"

#include <unistd.h>

#include <fstream>
#include <map>
#include <string>
#include <system_error>

namespace hier::fuzz {
namespace {

// Removes its folders on destruction (at exit).
class ScratchFolders {
 public:
  ~ScratchFolders() {
    for (const auto& [name, path] : folders_) {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  }

  const std::filesystem::path& Get(const char* name) {
    auto [it, added] = folders_.try_emplace(name);
    if (added) {
      it->second = std::filesystem::temp_directory_path() /
                   (std::string(name) + "-" + std::to_string(::getpid()));
      std::filesystem::remove_all(it->second);
      std::filesystem::create_directories(it->second);
    }
    return it->second;
  }

 private:
  std::map<std::string, std::filesystem::path> folders_;
};

}  // namespace

const std::filesystem::path& ScratchDir(const char* name) {
  static ScratchFolders folders;
  return folders.Get(name);
}

void WriteScratchFile(const std::filesystem::path& path, const uint8_t* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) __builtin_trap();
}

}  // namespace hier::fuzz
