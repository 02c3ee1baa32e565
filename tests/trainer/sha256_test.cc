#include "trainer/io/sha256.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/core/error_message.h"
#include "tests/trainer/temp_dir_test.h"

namespace hier::testing {
namespace {

using Sha256Test = TempDirTest;

TEST(Sha256HexTest, MatchesTheFips180Vectors) {
  EXPECT_EQ(io::Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(io::Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(io::Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(io::Sha256Hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// Messages of 55, 56 and 64 bytes put the length field in the same, the next and a fresh block.
TEST(Sha256HexTest, PadsAtBlockBoundaries) {
  EXPECT_EQ(io::Sha256Hex(std::string(55, 'a')),
            "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  EXPECT_EQ(io::Sha256Hex(std::string(56, 'a')),
            "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  EXPECT_EQ(io::Sha256Hex(std::string(64, 'a')),
            "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

TEST_F(Sha256Test, FileDigestEqualsStringDigest) {
  // A few MB of odd length, so the last chunk and the last block are both partial.
  std::string bytes(3 * (1 << 20) + 12345, '\0');
  uint32_t state = 12345;
  for (char& c : bytes) {
    state = state * 1664525u + 1013904223u;
    c = static_cast<char>(state >> 24);
  }
  const std::string path = dir_ + "/blob.bin";
  std::ofstream out(path, std::ios::binary);
  ASSERT_TRUE(out.write(bytes.data(), static_cast<std::streamsize>(bytes.size())).flush());
  EXPECT_EQ(io::Sha256OfFile(path), io::Sha256Hex(bytes));
}

TEST_F(Sha256Test, MissingFileNamesThePath) {
  const std::string path = dir_ + "/missing.bin";
  EXPECT_THAT(ErrorMessage([&] { io::Sha256OfFile(path); }), ::testing::HasSubstr(path));
}

TEST_F(Sha256Test, DirectoryNamesThePath) {
  EXPECT_THAT(ErrorMessage([&] { io::Sha256OfFile(dir_); }),
              ::testing::HasSubstr("cannot read " + dir_));
}

}  // namespace
}  // namespace hier::testing
