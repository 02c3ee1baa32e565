#include "trainer/data/idx_reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/core/error_message.h"
#include "tests/trainer/temp_dir_test.h"

#ifdef HIER_HAVE_ZLIB
#include <zlib.h>
#endif

namespace hier::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// 3 images of 2x4 bytes: magic, sizes 3, 2, 4, then bytes 0, 10, ..., 230.
std::string TinyImages() {
  std::string bytes = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 4};
  for (int i = 0; i < 24; ++i) bytes.push_back(static_cast<char>(10 * i));
  return bytes;
}

std::vector<uint8_t> TinyPixels() {
  std::vector<uint8_t> pixels;
  for (int i = 0; i < 24; ++i) pixels.push_back(static_cast<uint8_t>(10 * i));
  return pixels;
}

class IdxReaderTest : public TempDirTest {
 protected:
  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string path = dir_ + "/" + name;
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    EXPECT_TRUE(out.flush()) << path;
    return path;
  }

  // The message of ReadIdx on a file holding `bytes`, which must name the file.
  std::string ErrorFor(const std::string& name, const std::string& bytes) {
    const std::string path = Write(name, bytes);
    const std::string message = ErrorMessage([&] { data::ReadIdx(path); });
    EXPECT_THAT(message, HasSubstr(path));
    return message;
  }

#ifdef HIER_HAVE_ZLIB
  std::string WriteGzip(const std::string& name, const std::string& bytes) {
    const std::string path = dir_ + "/" + name;
    gzFile file = gzopen(path.c_str(), "wb");
    EXPECT_NE(file, nullptr) << path;
    EXPECT_EQ(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
    EXPECT_EQ(gzclose(file), Z_OK);
    return path;
  }
#endif
};

TEST_F(IdxReaderTest, ReadsAPlainFile) {
  const data::IdxArray array = data::ReadIdx(Write("images-idx3-ubyte", TinyImages()));
  EXPECT_THAT(array.dims, ::testing::ElementsAre(3, 2, 4));
  EXPECT_EQ(array.data, TinyPixels());
}

TEST_F(IdxReaderTest, ReadsAnEmptyArray) {
  const data::IdxArray array =
      data::ReadIdx(Write("labels-idx1-ubyte", std::string{0, 0, 8, 1, 0, 0, 0, 0}));
  EXPECT_THAT(array.dims, ::testing::ElementsAre(0));
  EXPECT_TRUE(array.data.empty());
}

#ifdef HIER_HAVE_ZLIB

TEST_F(IdxReaderTest, ReadsAGzipFile) {
  const data::IdxArray array = data::ReadIdx(WriteGzip("images-idx3-ubyte.gz", TinyImages()));
  EXPECT_THAT(array.dims, ::testing::ElementsAre(3, 2, 4));
  EXPECT_EQ(array.data, TinyPixels());
}

TEST_F(IdxReaderTest, TruncatedGzipNamesThePath) {
  const std::string whole = WriteGzip("whole.gz", TinyImages());
  std::string compressed(fs::file_size(whole), '\0');
  std::ifstream(whole, std::ios::binary).read(compressed.data(), compressed.size());
  // Cut inside the deflate data, and inside the 8-byte CRC and length trailer only.
  for (size_t keep : {compressed.size() / 2, compressed.size() - 3}) {
    const std::string path =
        Write("cut-" + std::to_string(keep) + ".gz", compressed.substr(0, keep));
    EXPECT_THAT(ErrorMessage([&] { data::ReadIdx(path); }), HasSubstr(path)) << "kept " << keep;
  }
}

#else

TEST_F(IdxReaderTest, GzipWithoutZlibSaysSo) {
  const std::string message = ErrorFor("images-idx3-ubyte.gz", "\x1f\x8b");
  EXPECT_THAT(message, HasSubstr("no zlib"));
  EXPECT_THAT(message, HasSubstr("gunzip"));
}

#endif

TEST_F(IdxReaderTest, MissingFileNamesThePath) {
  const std::string path = dir_ + "/missing-idx1-ubyte";
  EXPECT_THAT(ErrorMessage([&] { data::ReadIdx(path); }), HasSubstr(path));
}

TEST_F(IdxReaderTest, TruncatedDataNamesTheSizes) {
  std::string bytes = TinyImages();
  bytes.resize(bytes.size() - 5);
  EXPECT_THAT(ErrorFor("cut", bytes), HasSubstr("truncated: expected 24 data bytes, got 19"));
}

TEST_F(IdxReaderTest, TruncatedHeaderIsRefused) {
  EXPECT_THAT(ErrorFor("short", std::string{0, 0, 8}), HasSubstr("too short"));
  EXPECT_THAT(ErrorFor("sizes", TinyImages().substr(0, 10)),
              HasSubstr("expected 12 bytes of dimension sizes, got 6"));
}

TEST_F(IdxReaderTest, BadMagicIsRefused) {
  std::string bytes = TinyImages();
  bytes[1] = 1;
  EXPECT_THAT(ErrorFor("magic", bytes), HasSubstr("not an IDX file"));
}

TEST_F(IdxReaderTest, UnsupportedTypeNamesTheTypeByte) {
  std::string bytes = TinyImages();
  bytes[2] = 0x0d;  // float
  EXPECT_THAT(ErrorFor("floats", bytes), HasSubstr("element type 0x0d"));
}

TEST_F(IdxReaderTest, BadDimensionCountIsRefused) {
  std::string bytes = TinyImages();
  bytes[3] = 0;
  EXPECT_THAT(ErrorFor("zero", bytes), HasSubstr("0 dimensions"));
  bytes[3] = 5;
  EXPECT_THAT(ErrorFor("five", bytes), HasSubstr("5 dimensions"));
}

TEST_F(IdxReaderTest, TrailingBytesAreRefused) {
  EXPECT_THAT(ErrorFor("trailing", TinyImages() + "junk"), HasSubstr("4 trailing bytes"));
}

TEST(IdxReaderDataTest, ReadsFashionMnistTestLabels) {
  const std::string path = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
  if (!fs::exists(path)) GTEST_SKIP() << path << " is not installed";
#ifndef HIER_HAVE_ZLIB
  GTEST_SKIP() << "reading " << path << " needs zlib";
#endif
  const data::IdxArray labels = data::ReadIdx(path);
  EXPECT_THAT(labels.dims, ::testing::ElementsAre(10000));
  ASSERT_EQ(labels.data.size(), 10000u);
  EXPECT_LT(*std::max_element(labels.data.begin(), labels.data.end()), 10);
}

}  // namespace
}  // namespace hier::testing
