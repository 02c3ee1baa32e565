#include "trainer/io/sha256.h"

#include <c10/util/Exception.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

namespace hier::io {
namespace {

// OpenSSL's incremental digest, so the file version can stream without holding the whole file.
class Sha256 {
 public:
  Sha256() : context_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) {
    TORCH_CHECK(
        context_ != nullptr && EVP_DigestInit_ex(context_.get(), EVP_sha256(), nullptr) == 1,
        "sha256: OpenSSL could not start a digest");
  }

  void Update(std::string_view bytes) {
    TORCH_CHECK(EVP_DigestUpdate(context_.get(), bytes.data(), bytes.size()) == 1,
                "sha256: OpenSSL could not hash");
  }

  std::string FinishHex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    TORCH_CHECK(EVP_DigestFinal_ex(context_.get(), digest, &length) == 1,
                "sha256: OpenSSL could not finish the digest");
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    for (unsigned int i = 0; i < length; ++i) {
      hex.push_back(kHex[digest[i] >> 4]);
      hex.push_back(kHex[digest[i] & 15]);
    }
    return hex;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context_;
};

}  // namespace

std::string Sha256Hex(std::string_view bytes) {
  Sha256 hash;
  hash.Update(bytes);
  return hash.FinishHex();
}

std::string Sha256OfFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  TORCH_CHECK(fd >= 0, "sha256: cannot open ", path, ": ", std::strerror(errno));
  Sha256 hash;
  std::vector<char> chunk(1 << 20);
  while (true) {
    const ssize_t n = ::read(fd, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      ::close(fd);
      TORCH_CHECK(false, "sha256: cannot read ", path, ": ", std::strerror(error));
    }
    if (n == 0) break;
    hash.Update(std::string_view(chunk.data(), static_cast<size_t>(n)));
  }
  ::close(fd);
  return hash.FinishHex();
}

}  // namespace hier::io
