#include "client/cli/search_command.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/image_files.h"
#include "client/file_batches.h"
#include "client/json_output.h"
#include "client/number_parsing.h"
#include "client/status_macros.h"
#include "client/table.h"
#include "client/unary_call.h"
#include "hier/v1/retrieval.grpc.pb.h"

namespace hier::client::cli {
namespace {

using hier::v1::Retrieval;
using hier::v1::SearchRequest;
using hier::v1::SearchResponse;

struct QueryResult {
  std::string query;  // what the user named: a file, "vector" or "item N"
  SearchResponse response;
};

class SearchCommand : public Command {
 public:
  void AddFlags(FlagSet* flags) override {
    flags->AddString("image", &image_, "FILE", "query with an image file");
    flags->AddString("folder", &folder_, "DIR", "query with every image file in DIR (sorted)");
    flags->AddString("vector", &vector_text_, "X,Y,...", "query with a point of the ball");
    flags->AddInt("id", &item_id_, "N", "query with a stored item (itself left out)");
    flags->AddInt("k", &k_, "N", "neighbours per query");
    flags->AddString("label", &label_, "L", "only items with this label");
    flags->AddInt("overfetch", &overfetch_, "N", "candidates re-ranked; 0: the server's default");
    flags->AddBool("ancestors", &with_ancestors_, "add each result's ancestor proxies");
    flags->AddInt("batch", &batch_, "N",
                  "images per SearchBatch call with --folder (also cut at 3.5 MiB)");
  }

  absl::Status SetArgs(const std::vector<std::string>& args, const FlagSet& flags) override {
    if (!args.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "search: unexpected argument '", args[0], "' (use --image, --folder, --vector or --id)"));
    }
    const int sources =
        flags.IsSet("image") + flags.IsSet("folder") + flags.IsSet("vector") + flags.IsSet("id");
    if (sources != 1) {
      return absl::InvalidArgumentError(
          "search: give exactly one of --image, --folder, --vector, --id");
    }
    if (k_ < 1 || k_ > std::numeric_limits<int32_t>::max()) {
      return absl::InvalidArgumentError(absl::StrCat("--k: must be at least 1, not ", k_));
    }
    if (batch_ < 1) return absl::InvalidArgumentError("--batch: must be at least 1");
    if (overfetch_ < 0 || overfetch_ > std::numeric_limits<int32_t>::max()) {
      return absl::InvalidArgumentError(absl::StrCat("--overfetch: out of range: ", overfetch_));
    }
    if (flags.IsSet("vector")) {
      HIER_ASSIGN_OR_RETURN(vector_, ParseVector("--vector", vector_text_));
    }
    has_item_id_ = flags.IsSet("id");
    return absl::OkStatus();
  }

  absl::StatusOr<int> Run(const CommandEnv& env) override {
    auto stub = Retrieval::NewStub(env.connection->channel());
    std::vector<QueryResult> results;
    auto settle = [&](SearchRequest* request) {
      request->set_k(static_cast<int32_t>(k_));
      request->set_label(label_);
      request->set_overfetch(static_cast<int32_t>(overfetch_));
      request->set_with_ancestors(with_ancestors_);
    };
    auto search = [&](std::string query, SearchRequest request) -> absl::Status {
      settle(&request);
      HIER_ASSIGN_OR_RETURN(SearchResponse response, UnaryCall(*env.connection, stub.get(),
                                                               &Retrieval::Stub::Search, request));
      results.push_back({std::move(query), std::move(response)});
      return absl::OkStatus();
    };

    std::vector<std::string> images;
    if (!image_.empty()) images.push_back(image_);
    if (!folder_.empty()) {
      HIER_ASSIGN_OR_RETURN(images, ListImageFiles(folder_));
      if (images.empty())
        return absl::NotFoundError(absl::StrCat("no image files in '", folder_, "'"));
    }
    // Images go in SearchBatch calls: embedded together, searched together.
    HIER_ASSIGN_OR_RETURN(const std::vector<FileBatch> batches,
                          PlanFileBatches(images, static_cast<size_t>(batch_)));
    for (const auto [begin, end] : batches) {
      hier::v1::SearchBatchRequest request;
      for (size_t i = begin; i < end; ++i) {
        SearchRequest* query = request.add_queries();
        settle(query);
        HIER_ASSIGN_OR_RETURN(*query->mutable_image(), ReadFileBytes(images[i]));
      }
      HIER_ASSIGN_OR_RETURN(
          hier::v1::SearchBatchResponse response,
          UnaryCall(*env.connection, stub.get(), &Retrieval::Stub::SearchBatch, request));
      if (response.results_size() != static_cast<int>(end - begin)) {
        return absl::InternalError(absl::StrCat("the server returned ", response.results_size(),
                                                " results for ", end - begin, " images"));
      }
      for (size_t i = begin; i < end; ++i) {
        results.push_back({images[i], std::move(*response.mutable_results(i - begin))});
      }
    }
    if (!vector_.empty()) {
      SearchRequest request;
      request.mutable_vector()->mutable_values()->Add(vector_.begin(), vector_.end());
      HIER_RETURN_IF_ERROR(search("vector", std::move(request)));
    }
    if (has_item_id_) {
      SearchRequest request;
      request.set_item_id(item_id_);
      HIER_RETURN_IF_ERROR(search(absl::StrCat("item ", item_id_), std::move(request)));
    }
    *env.out << (env.json ? Json(results) : Tables(results));
    return 0;
  }

 private:
  std::string Tables(const std::vector<QueryResult>& results) const {
    using Align = TextTable::Align;
    std::string out;
    for (const QueryResult& result : results) {
      std::vector<TextTable::Column> columns = {{"rank", Align::kRight},
                                                {"id", Align::kRight},
                                                {"key"},
                                                {"label"},
                                                {"distance", Align::kRight}};
      if (with_ancestors_) columns.push_back({"ancestors"});
      TextTable table(std::move(columns));
      int rank = 0;
      for (const hier::v1::Neighbour& neighbour : result.response.neighbours()) {
        std::vector<std::string> chain;
        for (const auto& ancestor : neighbour.ancestors())
          chain.push_back(absl::StrCat(ancestor.proxy()));
        table.AddRow({absl::StrCat(++rank), absl::StrCat(neighbour.id()), neighbour.key(),
                      neighbour.label(), FormatFixed(neighbour.distance(), 6),
                      absl::StrJoin(chain, " > ")});
      }
      absl::StrAppend(&out, out.empty() ? "" : "\n", "query: ", result.query, "  (model ",
                      result.response.model_version(), ")\n", table.Render());
    }
    return out;
  }

  std::string Json(const std::vector<QueryResult>& results) const {
    JsonValue out = JsonValue::array();
    for (const QueryResult& result : results) {
      JsonValue neighbours = JsonValue::array();
      for (const hier::v1::Neighbour& neighbour : result.response.neighbours()) {
        JsonValue one = {{"id", neighbour.id()},
                         {"key", neighbour.key()},
                         {"label", neighbour.label()},
                         {"distance", neighbour.distance()}};
        if (with_ancestors_) {
          JsonValue ancestors = JsonValue::array();
          for (const auto& ancestor : neighbour.ancestors()) {
            ancestors.push_back({{"proxy", ancestor.proxy()}, {"distance", ancestor.distance()}});
          }
          one["ancestors"] = std::move(ancestors);
        }
        neighbours.push_back(std::move(one));
      }
      out.push_back({{"query", result.query},
                     {"model_version", result.response.model_version()},
                     {"neighbours", std::move(neighbours)}});
    }
    return DumpJson(out) + "\n";
  }

  std::string image_;
  std::string folder_;
  int64_t batch_ = 16;
  std::string vector_text_;
  std::vector<float> vector_;
  int64_t item_id_ = 0;
  bool has_item_id_ = false;
  int64_t k_ = 10;
  std::string label_;
  int64_t overfetch_ = 0;
  bool with_ancestors_ = false;
};

}  // namespace

std::unique_ptr<Command> NewSearchCommand() { return std::make_unique<SearchCommand>(); }

}  // namespace hier::client::cli
