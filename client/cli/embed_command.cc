#include "client/cli/embed_command.h"

#include "absl/strings/str_cat.h"
#include "client/cli/output.h"
#include "client/file_batches.h"
#include "client/image_files.h"
#include "client/json_output.h"
#include "client/status_macros.h"
#include "client/table.h"
#include "client/unary_call.h"
#include "hier/v1/retrieval.grpc.pb.h"

namespace hier::client::cli {
namespace {

using hier::v1::Retrieval;

constexpr int kPreviewCoordinates = 4;

class EmbedCommand : public Command {
 public:
  void AddFlags(FlagSet* flags) override {
    flags->AddInt("batch", &batch_, "N", "images per Embed call (also cut at 3.5 MiB)");
  }

  absl::Status SetArgs(const std::vector<std::string>& args, const FlagSet& flags) override {
    if (args.empty()) return absl::InvalidArgumentError("embed: no image FILE given");
    if (batch_ < 1) return absl::InvalidArgumentError("--batch: must be at least 1");
    files_ = args;
    return absl::OkStatus();
  }

  absl::StatusOr<int> Run(const CommandEnv& env) override {
    auto stub = Retrieval::NewStub(env.connection->channel());
    std::vector<hier::v1::Vector> embeddings;
    std::string model_version;
    HIER_ASSIGN_OR_RETURN(const std::vector<FileBatch> batches,
                          PlanFileBatches(files_, static_cast<size_t>(batch_)));
    for (const auto [begin, end] : batches) {
      hier::v1::EmbedRequest request;
      for (size_t i = begin; i < end; ++i) {
        HIER_ASSIGN_OR_RETURN(*request.add_images(), ReadFileBytes(files_[i]));
      }
      HIER_ASSIGN_OR_RETURN(
          hier::v1::EmbedResponse response,
          UnaryCall(*env.connection, stub.get(), &Retrieval::Stub::Embed, request));
      if (response.embeddings_size() != static_cast<int>(end - begin)) {
        return absl::InternalError(absl::StrCat("the server returned ", response.embeddings_size(),
                                                " embeddings for ", end - begin, " images"));
      }
      model_version = response.model_version();
      for (auto& embedding : *response.mutable_embeddings()) embeddings.push_back(embedding);
    }
    *env.out << (env.json ? Json(embeddings, model_version) : Table(embeddings, model_version));
    return 0;
  }

 private:
  std::string Table(const std::vector<hier::v1::Vector>& embeddings,
                    const std::string& model_version) const {
    using Align = TextTable::Align;
    TextTable table({{"file"}, {"dim", Align::kRight}, {"norm", Align::kRight}, {"coordinates"}});
    for (size_t i = 0; i < files_.size(); ++i) {
      table.AddRow({files_[i], absl::StrCat(embeddings[i].values_size()),
                    FormatFixed(Norm(embeddings[i]), 6),
                    Preview(embeddings[i], kPreviewCoordinates)});
    }
    return absl::StrCat("model ", model_version, "\n", table.Render());
  }

  std::string Json(const std::vector<hier::v1::Vector>& embeddings,
                   const std::string& model_version) const {
    JsonValue list = JsonValue::array();
    for (size_t i = 0; i < files_.size(); ++i) {
      JsonValue vector = JsonValue::array();
      for (const float value : embeddings[i].values()) vector.push_back(FloatForJson(value));
      list.push_back({{"file", files_[i]}, {"norm", Norm(embeddings[i])}, {"vector", vector}});
    }
    return DumpJson({{"model_version", model_version}, {"embeddings", list}}) + "\n";
  }

  int64_t batch_ = 16;
  std::vector<std::string> files_;
};

}  // namespace

std::unique_ptr<Command> NewEmbedCommand() { return std::make_unique<EmbedCommand>(); }

}  // namespace hier::client::cli
