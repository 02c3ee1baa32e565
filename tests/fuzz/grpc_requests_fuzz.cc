// Fuzz target: every unary gRPC request the server answers, called in-process on the services.
// The first byte picks the method (Server::Call), the rest is parsed as its request message. The
// services run as hier-server runs them, over a small collection (dim 4, eight items) served
// with a small untrained model and its proxy tree; the model's run is the runs folder's only one,
// and it says it is still training, so LoadModel refuses it before any swap starts (a swap would
// change what later inputs meet); the job runner has no trainer binary. A call must answer a
// status: INTERNAL, what a handler that throws answers, is a finding. The two streaming calls
// (AddItemsStream, WatchJob) need a live call and are left out; AddItemsStream writes each of its
// messages as AddItems does.
#include <google/protobuf/stubs/logging.h>
#include <grpcpp/grpcpp.h>
#include <torch/utils.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "hier/v1/retrieval.pb.h"
#include "index/collection.h"
#include "server/app/model_swapper.h"
#include "server/metrics/server_metrics.h"
#include "server/model/model_catalog.h"
#include "server/model/serving_model.h"
#include "server/model/serving_slot.h"
#include "server/rpc/authorizer.h"
#include "server/rpc/hierarchy_service.h"
#include "server/rpc/models_service.h"
#include "server/rpc/retrieval_service.h"
#include "server/rpc/training_service.h"
#include "server/storage/file_blob_store.h"
#include "server/training/job_runner.h"
#include "tests/fuzz/fuzz_scratch.h"
#include "trainer/io/atomic_file.h"
#include "trainer/train/checkpoint.h"

namespace {

namespace fs = std::filesystem;

constexpr int64_t kDim = 4;
constexpr double kCurvature = 0.1;

// A proxy tree of three proxies for the run folders below.
constexpr char kHierarchyJson[] = R"({"c": 0.1, "proxies": [
  {"coords": [0.5, 0, 0, 0], "parent": -1, "level": 0, "depth": 0.32, "members": 3},
  {"coords": [0.9, 0.2, 0, 0], "parent": 0, "level": 1, "depth": 0.59, "members": 2},
  {"coords": [0, -0.6, 0.1, 0], "parent": -1, "level": 0, "depth": 0.39, "members": 3}]})";

// A run still training, with an untrained small CNN (embedding dim 4) as its best/ checkpoint
// and a proxy tree.
std::string WriteModelRun(const fs::path& run) {
  torch::manual_seed(1);
  hier::model::EmbeddingNet net(hier::model::EmbeddingNetOptions().emb(kDim).c(kCurvature));
  hier::core::ObjectiveOptions objective_options(2, kDim);
  objective_options.hier(hier::core::HierLossOptions(kDim).num_proxies(4).topk(2));
  hier::core::Objective objective(objective_options);
  hier::train::CheckpointInfo info;
  info.architecture.emb(kDim).c(kCurvature);
  info.class_names = {"a", "b"};
  info.config_json = R"({"emb": 4, "recall_k": [1, 2]})";
  const std::string saved =
      hier::train::SaveCheckpoint((run / "checkpoints").string(), {net, objective, nullptr}, info);
  hier::train::PublishCopy(saved, (run / "best").string());
  fs::remove_all(run / "checkpoints");  // LoadModel would swap to one
  hier::io::WriteFileAtomically((run / "hierarchy.json").string(), kHierarchyJson);
  hier::io::WriteFileAtomically((run / "status.json").string(), R"({"state": "running"})");
  return (run / "best").string();
}

template <typename T>
T Must(absl::StatusOr<T> value) {
  if (!value.ok()) {
    std::fprintf(stderr, "grpc_requests_fuzz: setup failed: %s\n",
                 value.status().ToString().c_str());
    __builtin_trap();
  }
  return *std::move(value);
}

// The items every input starts from.
std::vector<hier::index::ItemRecord> BaseItems() {
  std::vector<hier::index::ItemRecord> items;
  for (int64_t id = 0; id < 8; ++id) {
    hier::index::ItemRecord item;
    item.id = id;
    item.key = "img/" + std::to_string(id) + ".png";
    item.label = id % 2 == 0 ? "a" : "b";
    item.vector = {0.1f * static_cast<float>(id), -0.05f * static_cast<float>(id), 0.2f, 0.0f};
    items.push_back(std::move(item));
  }
  return items;
}

// The services and what they work on, built once per process.
class Server {
 public:
  Server() : scratch_(hier::fuzz::ScratchDir("grpc_requests_fuzz")) {
    model_ = Must(hier::server::ServingModel::Load(WriteModelRun(scratch_ / "runs" / "run"),
                                                   {/*max_batch=*/8, /*max_delay_us=*/0}, {}));
    catalog_ = std::make_unique<hier::server::ModelCatalog>((scratch_ / "runs").string());

    hier::index::CollectionOptions options;
    options.directory = (scratch_ / "collection").string();
    options.index.dim = kDim;
    options.index.c = kCurvature;
    options.index.max_k = 16;
    collection_ = Must(hier::index::Collection::Open(options));
    Must(collection_->Upsert(BaseItems()));
    serving_.Set({model_, collection_});
    blobs_ = Must(hier::server::FileBlobStore::Open((scratch_ / "blobs").string()));

    hier::server::SwapOptions swap;
    swap.state_dir = (scratch_ / "state").string();
    swapper_ =
        std::make_unique<hier::server::ModelSwapper>(&serving_, blobs_.get(), &metrics_, swap);
    hier::server::JobRunnerOptions jobs;
    jobs.trainer = (scratch_ / "no-trainer").string();
    jobs.state_dir = (scratch_ / "state").string();
    jobs.runs_dir = (scratch_ / "runs").string();
    jobs.data_roots = {scratch_.string()};
    runner_ = Must(hier::server::JobRunner::Create(jobs, &metrics_));

    hier::server::RetrievalLimits limits;
    limits.max_items_per_call = 64;
    limits.max_images_per_call = 8;
    limits.max_pixels = 1 << 20;
    retrieval_ = std::make_unique<hier::server::RetrievalService>(
        hier::server::RetrievalBackends{&serving_, blobs_.get(), &authorizer_, &metrics_}, limits);
    hierarchy_ = std::make_unique<hier::server::HierarchyService>(
        hier::server::HierarchyBackends{catalog_.get(), &serving_, &authorizer_}, limits);
    models_ = std::make_unique<hier::server::ModelsService>(
        hier::server::ModelsBackends{catalog_.get(), &serving_, swapper_.get(), &authorizer_});
    training_ = std::make_unique<hier::server::TrainingService>(runner_.get(), &authorizer_);
  }

  // Calls the method `selector` picks with the request in `data`.
  void Call(uint8_t selector, const uint8_t* data, size_t size);

 private:
  // Parses `data` as the method's request, calls it and checks the answer.
  template <typename Service, typename Request, typename Response>
  static void Unary(Service* service,
                    grpc::Status (Service::*method)(grpc::ServerContext*, const Request*,
                                                    Response*),
                    const uint8_t* data, size_t size) {
    Request request;
    if (!request.ParseFromArray(data, static_cast<int>(size))) return;
    Response response;
    grpc::ServerContext context;
    const grpc::Status status = (service->*method)(&context, &request, &response);
    if (status.error_code() == grpc::StatusCode::INTERNAL) {
      std::fprintf(stderr, "grpc_requests_fuzz: INTERNAL: %s\n", status.error_message().c_str());
      __builtin_trap();
    }
  }

  // Puts the base items back and removes any other item a write request named, so that every
  // input starts from the same collection.
  void ResetItems(const std::vector<int64_t>& named);

  const fs::path scratch_;
  hier::server::ServerMetrics metrics_;
  hier::server::Authorizer authorizer_{"", false};
  hier::server::ServingSlot serving_;
  std::shared_ptr<hier::server::ServingModel> model_;
  std::shared_ptr<hier::index::Collection> collection_;
  std::unique_ptr<hier::server::FileBlobStore> blobs_;
  std::unique_ptr<hier::server::ModelCatalog> catalog_;
  std::unique_ptr<hier::server::ModelSwapper> swapper_;
  std::unique_ptr<hier::server::JobRunner> runner_;
  std::unique_ptr<hier::server::RetrievalService> retrieval_;
  std::unique_ptr<hier::server::HierarchyService> hierarchy_;
  std::unique_ptr<hier::server::ModelsService> models_;
  std::unique_ptr<hier::server::TrainingService> training_;
};

void Server::ResetItems(const std::vector<int64_t>& named) {
  Must(collection_->Upsert(BaseItems()));
  for (const int64_t id : named) {
    if (id < 0 || id >= static_cast<int64_t>(BaseItems().size())) {
      (void)collection_->Delete({id});  // NotFound when the write did not add it
    }
  }
}

void Server::Call(uint8_t selector, const uint8_t* data, size_t size) {
  using hier::server::HierarchyService;
  using hier::server::ModelsService;
  using hier::server::RetrievalService;
  using hier::server::TrainingService;
  RetrievalService* r = retrieval_.get();
  switch (selector % 20) {
    case 0:
      return Unary(r, &RetrievalService::Embed, data, size);
    case 1:
      return Unary(r, &RetrievalService::Search, data, size);
    case 2:
      return Unary(r, &RetrievalService::SearchBatch, data, size);
    case 3: {
      hier::v1::AddItemsRequest request;
      if (!request.ParseFromArray(data, static_cast<int>(size))) return;
      Unary(r, &RetrievalService::AddItems, data, size);
      std::vector<int64_t> ids;
      for (const hier::v1::NewItem& item : request.items()) ids.push_back(item.id());
      return ResetItems(ids);
    }
    case 4:
      Unary(r, &RetrievalService::DeleteItems, data, size);
      return ResetItems({});
    case 5:
      return Unary(r, &RetrievalService::GetItem, data, size);
    case 6:
      return Unary(r, &RetrievalService::Stats, data, size);
    case 7:
      return Unary(hierarchy_.get(), &HierarchyService::GetHierarchy, data, size);
    case 8:
      return Unary(hierarchy_.get(), &HierarchyService::Ancestors, data, size);
    case 9:
      return Unary(models_.get(), &ModelsService::ListModels, data, size);
    case 10:
      return Unary(models_.get(), &ModelsService::GetModel, data, size);
    case 11:
      return Unary(models_.get(), &ModelsService::LoadModel, data, size);
    case 12:
      return Unary(models_.get(), &ModelsService::GetSwap, data, size);
    case 13:
      return Unary(training_.get(), &TrainingService::StartTraining, data, size);
    case 14:
      return Unary(training_.get(), &TrainingService::GetJob, data, size);
    case 15:
      return Unary(training_.get(), &TrainingService::ListJobs, data, size);
    case 16:
      return Unary(training_.get(), &TrainingService::CancelJob, data, size);
    case 17:
      return Unary(training_.get(), &TrainingService::ResumeJob, data, size);
    case 18:
      return Unary(r, &RetrievalService::GetItemImage, data, size);
    default:
      return Unary(r, &RetrievalService::ListItems, data, size);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // Protobuf logs every string field that is not UTF-8 it refuses: millions of lines a run.
  static const bool quiet = (google::protobuf::SetLogHandler(nullptr), true);
  (void)quiet;
  static Server* const server = new Server();  // lives until the process ends
  server->Call(data[0], data + 1, size - 1);
  return 0;
}
