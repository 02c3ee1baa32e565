// The web console in a real browser: tests/console/console_test.mjs drives Debian's chromium
// (headless, through playwright-core) against a hier-server child that requires its token for
// reads too. What the page must show is computed here through gRPC (the labels of a search, the
// proxy count), so the browser's answers are checked against the API's. Screenshots of each view
// are kept in <build>/test-artifacts/console.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tests/server/e2e/server_fixture.h"

namespace hier::testing {
namespace {

namespace fs = std::filesystem;

constexpr int kGalleryItems = 30;
constexpr int kNeighbours = 6;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class ConsoleBrowserTest : public ServerE2eTest {};

TEST_F(ConsoleBrowserTest, EveryViewWorksInHeadlessChromium) {
  const std::string tests_dir = std::string(HIER_SOURCE_DIR) + "/tests/console";
  ASSERT_TRUE(fs::exists(tests_dir + "/node_modules/playwright-core"))
      << "playwright-core is not installed in " << tests_dir
      << " (bash deploy/install-deps.sh runs npm ci there)";
  const LabelledImages images = TestImages(kGalleryItems + 1);
  StartServer({"--protect-reads"});
  ASSERT_NE(http_port_, 0);
  AddImages(images, 0, kGalleryItems);
  const std::string query_path = scratch_ + "/query.png";
  std::ofstream(query_path, std::ios::binary) << images.png[kGalleryItems];

  hier::v1::SearchResponse found;
  ASSERT_TRUE(SearchImage(images.png[kGalleryItems], kNeighbours, &found).ok());
  nlohmann::json labels = nlohmann::json::array();
  for (const hier::v1::Neighbour& neighbour : found.neighbours())
    labels.push_back(neighbour.label());
  hier::v1::HierarchyTree tree;
  {
    grpc::ClientContext context;
    Authorize(&context);
    ASSERT_TRUE(hierarchy_->GetHierarchy(&context, hier::v1::GetHierarchyRequest(), &tree).ok());
  }
  std::string training;
  google::protobuf::util::JsonPrintOptions names;
  names.preserve_proto_field_names = true;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(
                  SmallTrainingJob("browser", 1, 2).config(), &training, names)
                  .ok());

  const std::string artifacts = std::string(HIER_TEST_ARTIFACTS_DIR) + "/console";
  fs::remove_all(artifacts);
  const nlohmann::json spec = {{"url", "http://127.0.0.1:" + std::to_string(http_port_) + "/"},
                               {"token", kToken},
                               {"artifacts", artifacts},
                               {"query_image", query_path},
                               {"expected_labels", labels},
                               {"proxies", tree.proxies_size()},
                               {"items", kGalleryItems},
                               {"training", nlohmann::json::parse(training)},
                               {"training_seconds", 600},
                               // Outside the server's data roots: the server names the field.
                               {"bad_field", {{"name", "data_dir"}, {"value", "/etc"}}}};
  const std::string spec_path = scratch_ + "/spec.json";
  std::ofstream(spec_path) << spec.dump(2);

  const std::string log = scratch_ + "/browser.log";
  const std::string command =
      "cd '" + tests_dir + "' && node console_test.mjs '" + spec_path + "' > '" + log + "' 2>&1";
  const int status = std::system(command.c_str());
  const std::string output = ReadAll(log);
  EXPECT_EQ(status, 0) << output;
  EXPECT_NE(output.find("ok - result labels"), std::string::npos) << output;
  for (const char* view : {"status", "search", "hierarchy", "gallery", "training"}) {
    EXPECT_TRUE(fs::exists(artifacts + "/" + view + ".png")) << view;
  }
}

}  // namespace
}  // namespace hier::testing
