// Data-parallel training across processes with torch.distributed's c10d: rendezvous from the usual
// environment variables, a Gloo (CPU) or NCCL (CUDA, when built with it) process group, and the
// few collectives training needs, each bounded by a timeout so that a failed rank fails the job
// with a message instead of hanging it.
//
// Thread-safety: one thread calls the collectives, in the same order on every rank.
#pragma once

#include <ATen/core/Tensor.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace hier::train {

struct DistributedEnv {
  int64_t rank = 0;
  int64_t world_size = 1;
  int64_t local_rank = 0;  // picks the CUDA device on a multi-GPU machine
  std::string master_addr = "127.0.0.1";
  int64_t master_port = 29500;
};

// RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; without WORLD_SIZE a single process.
// Throws c10::Error naming the variable when one is malformed or inconsistent.
DistributedEnv ReadDistributedEnv();

class Collectives {
 public:
  // Joins the job `env` describes (rank 0 hosts the rendezvous store). `backend` is "gloo",
  // "nccl" or "auto" (NCCL for CUDA when built with it, else Gloo). Joining waits up to
  // max(`timeout`, 60 s) for all ranks; every collective fails after `timeout`. With world_size 1
  // every collective is a no-op.
  static std::unique_ptr<Collectives> Connect(const DistributedEnv& env,
                                              const std::string& backend, bool cuda,
                                              std::chrono::milliseconds timeout);
  ~Collectives();

  int64_t rank() const { return env_.rank; }
  int64_t world_size() const { return env_.world_size; }
  bool is_root() const { return env_.rank == 0; }
  const std::string& backend() const { return backend_; }

  // Sums `tensors` (one dtype and device, any shapes) over ranks, in place, as one flat buffer.
  void AllReduceSum(const std::vector<at::Tensor>& tensors);

  // Every rank's `local` [n, ...] in rank order [world_size * n, ...]; n must be equal on every
  // rank. The other ranks' rows carry no gradient; this rank's rows are `local` itself, so a loss
  // on the result back-propagates into this rank's model (as the reference's all-gather does).
  at::Tensor AllGather(const at::Tensor& local);

  // Overwrites `tensors` with rank 0's values.
  void Broadcast(const std::vector<at::Tensor>& tensors);

  void Barrier();

 private:
  struct Group;
  Collectives(const DistributedEnv& env, std::string backend, std::unique_ptr<Group> group);

  const DistributedEnv env_;
  const std::string backend_;
  std::unique_ptr<Group> group_;  // null for a single process
};

}  // namespace hier::train
