#include "trainer/train/distributed.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <torch/csrc/utils/tensor_flatten.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>
#include <utility>

namespace hier::train {
namespace {

constexpr std::chrono::milliseconds kMinJoinTimeout = std::chrono::seconds(60);

int64_t EnvInteger(const char* name, int64_t fallback, int64_t min) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  const long long value = std::strtoll(text, &end, 10);
  TORCH_CHECK(*end == '\0' && value >= min, "environment: ", name, " must be an integer >= ", min,
              ", got '", text, "'");
  return value;
}

c10::intrusive_ptr<c10d::ProcessGroup> GlooGroup(const c10::intrusive_ptr<c10d::Store>& store,
                                                 const DistributedEnv& env,
                                                 std::chrono::milliseconds timeout) {
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  const char* interface = std::getenv("GLOO_SOCKET_IFNAME");
  if (interface != nullptr && *interface != '\0') {
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface));
  } else if (env.master_addr == "127.0.0.1" || env.master_addr == "localhost") {
    // All ranks on this machine: loopback, whatever the host name resolves to.
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  } else {
    options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, options);
}

// Runs `collective` once per dtype on one flat buffer of that dtype's tensors (one message instead
// of one per tensor), then copies the results back.
void OnFlatBuffers(const std::vector<at::Tensor>& tensors,
                   const std::function<void(std::vector<at::Tensor>&)>& collective) {
  std::map<c10::ScalarType, std::vector<at::Tensor>> by_dtype;
  for (const at::Tensor& t : tensors) by_dtype[t.scalar_type()].push_back(t);
  for (auto& [dtype, group] : by_dtype) {
    std::vector<at::Tensor> flat = {torch::utils::flatten_dense_tensors(group)};
    collective(flat);
    const std::vector<at::Tensor> results = torch::utils::unflatten_dense_tensors(flat[0], group);
    for (size_t i = 0; i < group.size(); ++i) group[i].copy_(results[i]);
  }
}

}  // namespace

DistributedEnv ReadDistributedEnv() {
  DistributedEnv env;
  env.world_size = EnvInteger("WORLD_SIZE", 1, 1);
  env.rank = EnvInteger("RANK", 0, 0);
  TORCH_CHECK(env.rank < env.world_size, "environment: RANK ", env.rank,
              " must be below WORLD_SIZE ", env.world_size);
  env.local_rank = EnvInteger("LOCAL_RANK", env.rank, 0);
  env.master_port = EnvInteger("MASTER_PORT", env.master_port, 1);
  TORCH_CHECK(env.master_port <= 65535, "environment: MASTER_PORT must be <= 65535, got ",
              env.master_port);
  if (const char* addr = std::getenv("MASTER_ADDR"); addr != nullptr && *addr != '\0') {
    env.master_addr = addr;
  }
  return env;
}

struct Collectives::Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> group;

  // Waits for `work`, turning a failure into one message that says what probably happened.
  void Wait(const c10::intrusive_ptr<c10d::Work>& work, const char* what) {
    try {
      work->wait();
    } catch (const std::exception& e) {
      TORCH_CHECK(false, "distributed: ", what,
                  " failed (another rank probably exited or stopped responding): ", e.what());
    }
  }
};

std::unique_ptr<Collectives> Collectives::Connect(const DistributedEnv& env,
                                                  const std::string& backend, bool cuda,
                                                  std::chrono::milliseconds timeout) {
  TORCH_CHECK(backend == "auto" || backend == "gloo" || backend == "nccl",
              "--dist-backend: must be auto, gloo or nccl, got '", backend, "'");
#ifdef USE_C10D_NCCL
  const bool have_nccl = true;
#else
  const bool have_nccl = false;
#endif
  TORCH_CHECK(backend != "nccl" || (have_nccl && cuda),
              "--dist-backend: nccl needs CUDA and a LibTorch built with NCCL (configure with "
              "-DHIER_WITH_NCCL=ON); use gloo");
  const std::string chosen = backend == "auto" ? (cuda && have_nccl ? "nccl" : "gloo") : backend;
  if (env.world_size == 1) {
    return std::unique_ptr<Collectives>(new Collectives(env, chosen, nullptr));
  }
  auto group = std::make_unique<Group>();
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<uint16_t>(env.master_port);
  store_options.isServer = env.rank == 0;
  store_options.numWorkers = static_cast<int>(env.world_size);
  // Ranks start at different speeds (loading data, building models): the rendezvous waits at
  // least kMinJoinTimeout for all of them, then collectives use `timeout`.
  store_options.timeout = std::max<std::chrono::milliseconds>(timeout, kMinJoinTimeout);
  try {
    group->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_options);
#ifdef USE_C10D_NCCL
    if (chosen == "nccl") {
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      group->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(group->store, env.rank,
                                                                  env.world_size, options);
    }
#endif
    if (chosen == "gloo") group->group = GlooGroup(group->store, env, timeout);
  } catch (const std::exception& e) {
    TORCH_CHECK(false, "distributed: rank ", env.rank, " of ", env.world_size,
                " could not join the job at ", env.master_addr, ":", env.master_port, ": ",
                e.what());
  }
  return std::unique_ptr<Collectives>(new Collectives(env, chosen, std::move(group)));
}

Collectives::Collectives(const DistributedEnv& env, std::string backend,
                         std::unique_ptr<Group> group)
    : env_(env), backend_(std::move(backend)), group_(std::move(group)) {}

Collectives::~Collectives() = default;

void Collectives::AllReduceSum(const std::vector<at::Tensor>& tensors) {
  if (!group_) return;
  OnFlatBuffers(tensors, [this](std::vector<at::Tensor>& flat) {
    group_->Wait(group_->group->allreduce(flat), "all-reduce");
  });
}

at::Tensor Collectives::AllGather(const at::Tensor& local) {
  if (!group_) return local;
  std::vector<at::Tensor> input = {local.detach().contiguous()};
  std::vector<std::vector<at::Tensor>> output(1);
  for (int64_t r = 0; r < env_.world_size; ++r) output[0].push_back(at::empty_like(input[0]));
  group_->Wait(group_->group->allgather(output, input), "all-gather");
  output[0][env_.rank] = local;
  return at::cat(output[0]);
}

void Collectives::Broadcast(const std::vector<at::Tensor>& tensors) {
  if (!group_) return;
  OnFlatBuffers(tensors, [this](std::vector<at::Tensor>& flat) {
    group_->Wait(group_->group->broadcast(flat), "broadcast");
  });
}

void Collectives::Barrier() {
  if (!group_) return;
  group_->Wait(group_->group->barrier(), "barrier");
}

}  // namespace hier::train
