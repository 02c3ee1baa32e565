#include "client/cli/items_commands.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <limits>

#include "absl/strings/str_cat.h"
#include "client/cli/output.h"
#include "client/file_batches.h"
#include "client/image_files.h"
#include "client/item_sources.h"
#include "client/json_output.h"
#include "client/number_parsing.h"
#include "client/status_macros.h"
#include "client/status_text.h"
#include "client/table.h"
#include "client/unary_call.h"
#include "hier/v1/retrieval.grpc.pb.h"

namespace hier::client::cli {
namespace {

using hier::v1::Retrieval;

absl::StatusOr<std::vector<int64_t>> ParseIds(const std::vector<std::string>& args) {
  std::vector<int64_t> ids;
  for (const std::string& arg : args) {
    HIER_ASSIGN_OR_RETURN(ids.emplace_back(), ParseInt64("ID", arg));
  }
  return ids;
}

class ItemsAddCommand : public Command {
 public:
  void AddFlags(FlagSet* flags) override {
    flags->AddString("list", &list_file_, "FILE", "a list of 'path label' lines instead of FOLDER");
    flags->AddInt("batch", &batch_, "N", "images per streamed message (also cut at 3.5 MiB)");
    flags->AddInt("first-id", &first_id_, "N",
                  "id of the first image in sorted order; the rest follow (default 0)");
  }

  absl::Status SetArgs(const std::vector<std::string>& args, const FlagSet& flags) override {
    if (args.size() + flags.IsSet("list") != 1) {
      return absl::InvalidArgumentError("items add: give either FOLDER or --list FILE");
    }
    if (!args.empty()) folder_ = args[0];
    if (batch_ < 1) return absl::InvalidArgumentError("--batch: must be at least 1");
    if (first_id_ < 0) return absl::InvalidArgumentError("--first-id: must not be negative");
    return absl::OkStatus();
  }

  absl::StatusOr<int> Run(const CommandEnv& env) override {
    HIER_ASSIGN_OR_RETURN(const std::vector<ImageEntry> entries,
                          folder_.empty() ? ReadListFile(list_file_) : ReadClassFolder(folder_));
    std::vector<std::string> paths;
    for (const ImageEntry& entry : entries) paths.push_back(entry.path);
    HIER_ASSIGN_OR_RETURN(const std::vector<FileBatch> batches,
                          PlanFileBatches(paths, static_cast<size_t>(batch_)));
    const auto start = std::chrono::steady_clock::now();

    auto stub = Retrieval::NewStub(env.connection->channel());
    grpc::ClientContext context;
    // One stream carries every batch: the deadline grows with their number.
    env.connection->Prepare(&context,
                            env.connection->timeout() * static_cast<double>(batches.size()));
    hier::v1::AddItemsResponse response;
    auto writer = stub->AddItemsStream(&context, &response);
    const bool progress = isatty(STDERR_FILENO) && !env.json;
    absl::Status read_status;
    for (const auto [begin, end] : batches) {
      hier::v1::AddItemsRequest request;
      for (size_t i = begin; i < end && read_status.ok(); ++i) {
        hier::v1::NewItem* item = request.add_items();
        item->set_id(first_id_ + static_cast<int64_t>(i));
        item->set_key(entries[i].key);
        item->set_label(entries[i].label);
        absl::StatusOr<std::string> image = ReadFileBytes(entries[i].path);
        if (image.ok()) item->set_image(*std::move(image));
        read_status = image.status();
      }
      if (!read_status.ok()) {
        context.TryCancel();  // nothing half-read is sent
        break;
      }
      if (!writer->Write(request)) break;  // the server ended the call; Finish says why
      if (progress) std::cerr << "\rsent " << end << "/" << entries.size() << std::flush;
    }
    if (progress) std::cerr << "\n";
    if (read_status.ok()) writer->WritesDone();
    const absl::Status call_status = FromGrpcStatus(writer->Finish());
    HIER_RETURN_IF_ERROR(read_status);
    HIER_RETURN_IF_ERROR(call_status);

    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double rate = seconds > 0 ? response.added() / seconds : 0;
    if (env.json) {
      *env.out << DumpJson({{"added", response.added()},
                            {"last_seq", response.last_seq()},
                            {"seconds", seconds},
                            {"items_per_second", rate}})
               << "\n";
    } else {
      *env.out << "added " << response.added() << " items (last_seq " << response.last_seq()
               << ") in " << FormatFixed(seconds, 2) << " s, " << FormatFixed(rate, 1)
               << " items/s\n";
    }
    return 0;
  }

 private:
  std::string folder_;
  std::string list_file_;
  int64_t batch_ = 64;
  int64_t first_id_ = 0;
};

class ItemsGetCommand : public Command {
 public:
  absl::Status SetArgs(const std::vector<std::string>& args, const FlagSet& flags) override {
    if (args.size() != 1) return absl::InvalidArgumentError("items get: give one ID");
    HIER_ASSIGN_OR_RETURN(id_, ParseInt64("ID", args[0]));
    return absl::OkStatus();
  }

  absl::StatusOr<int> Run(const CommandEnv& env) override {
    auto stub = Retrieval::NewStub(env.connection->channel());
    hier::v1::GetItemRequest request;
    request.set_id(id_);
    HIER_ASSIGN_OR_RETURN(hier::v1::Item item, UnaryCall(*env.connection, stub.get(),
                                                         &Retrieval::Stub::GetItem, request));
    if (env.json) {
      *env.out << ProtoJson(item) << "\n";
      return 0;
    }
    PrintFields({{"id", absl::StrCat(item.id())},
                 {"key", item.key()},
                 {"label", item.label()},
                 {"attributes", item.attributes()},
                 {"model_version", item.model_version()},
                 {"image_sha256", item.image_sha256()},
                 {"dim", absl::StrCat(item.vector().values_size())},
                 {"norm", FormatFixed(Norm(item.vector()), 6)},
                 {"vector", Preview(item.vector(), 8)}},
                env.out);
    return 0;
  }

 private:
  int64_t id_ = 0;
};

class ItemsListCommand : public Command {
 public:
  void AddFlags(FlagSet* flags) override {
    flags->AddString("label", &label_, "L", "only items with this label");
    flags->AddInt("page-size", &page_size_, "N", "items per page (default 50)");
    flags->AddString("page-token", &page_token_, "T", "the next page of an earlier listing");
  }

  absl::Status SetArgs(const std::vector<std::string>& args, const FlagSet& flags) override {
    if (!args.empty()) return absl::InvalidArgumentError("items list: takes no arguments");
    if (page_size_ < 1 || page_size_ > std::numeric_limits<int32_t>::max()) {
      return absl::InvalidArgumentError("--page-size: must be at least 1");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<int> Run(const CommandEnv& env) override {
    auto stub = Retrieval::NewStub(env.connection->channel());
    hier::v1::ListItemsRequest request;
    request.set_label(label_);
    request.set_page_size(static_cast<int32_t>(page_size_));
    request.set_page_token(page_token_);
    HIER_ASSIGN_OR_RETURN(
        hier::v1::ListItemsResponse page,
        UnaryCall(*env.connection, stub.get(), &Retrieval::Stub::ListItems, request));
    if (env.json) {
      *env.out << ProtoJson(page) << "\n";
      return 0;
    }
    TextTable table({{"id", TextTable::Align::kRight}, {"label"}, {"key"}});
    for (const hier::v1::ItemSummary& item : page.items()) {
      table.AddRow({absl::StrCat(item.id()), item.label(), item.key()});
    }
    *env.out << table.Render();
    if (!page.next_page_token().empty()) {
      *env.out << "next page: --page-token " << page.next_page_token() << "\n";
    }
    return 0;
  }

 private:
  std::string label_;
  int64_t page_size_ = 50;
  std::string page_token_;
};

class ItemsDeleteCommand : public Command {
 public:
  absl::Status SetArgs(const std::vector<std::string>& args, const FlagSet& flags) override {
    if (args.empty()) return absl::InvalidArgumentError("items delete: give at least one ID");
    HIER_ASSIGN_OR_RETURN(ids_, ParseIds(args));
    return absl::OkStatus();
  }

  absl::StatusOr<int> Run(const CommandEnv& env) override {
    auto stub = Retrieval::NewStub(env.connection->channel());
    hier::v1::DeleteItemsRequest request;
    request.mutable_ids()->Add(ids_.begin(), ids_.end());
    HIER_ASSIGN_OR_RETURN(
        hier::v1::DeleteItemsResponse response,
        UnaryCall(*env.connection, stub.get(), &Retrieval::Stub::DeleteItems, request));
    if (env.json) {
      *env.out << DumpJson({{"deleted", response.deleted()}}) << "\n";
    } else {
      *env.out << "deleted " << response.deleted() << " of " << ids_.size() << " items\n";
    }
    return 0;
  }

 private:
  std::vector<int64_t> ids_;
};

}  // namespace

std::unique_ptr<Command> NewItemsAddCommand() { return std::make_unique<ItemsAddCommand>(); }
std::unique_ptr<Command> NewItemsGetCommand() { return std::make_unique<ItemsGetCommand>(); }
std::unique_ptr<Command> NewItemsDeleteCommand() { return std::make_unique<ItemsDeleteCommand>(); }
std::unique_ptr<Command> NewItemsListCommand() { return std::make_unique<ItemsListCommand>(); }

}  // namespace hier::client::cli
