#include "trainer/train/distributed.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "tests/core/error_message.h"
#include "tests/trainer/fake_fashion_mnist.h"
#include "tests/trainer/temp_dir_test.h"
#include "trainer/io/atomic_file.h"
#include "trainer/train/checkpoint.h"
#include "trainer/train/launcher.h"

namespace hier::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

// Sets environment variables for the life of the object, restoring the previous values after.
class ScopedEnv {
 public:
  explicit ScopedEnv(const std::map<std::string, std::optional<std::string>>& values) {
    for (const auto& [name, value] : values) {
      const char* old = std::getenv(name.c_str());
      saved_[name] = old ? std::optional<std::string>(old) : std::nullopt;
      Set(name, value);
    }
  }
  ~ScopedEnv() {
    for (const auto& [name, value] : saved_) Set(name, value);
  }

 private:
  static void Set(const std::string& name, const std::optional<std::string>& value) {
    if (value) {
      ::setenv(name.c_str(), value->c_str(), 1);
    } else {
      ::unsetenv(name.c_str());
    }
  }
  std::map<std::string, std::optional<std::string>> saved_;
};

TEST(DistributedEnvTest, WithoutVariablesItIsOneProcess) {
  ScopedEnv env({{"WORLD_SIZE", std::nullopt}, {"RANK", std::nullopt}});
  const train::DistributedEnv read = train::ReadDistributedEnv();
  EXPECT_EQ(read.world_size, 1);
  EXPECT_EQ(read.rank, 0);
}

TEST(DistributedEnvTest, ReadsTheUsualVariables) {
  ScopedEnv env({{"WORLD_SIZE", "4"},
                 {"RANK", "3"},
                 {"LOCAL_RANK", "1"},
                 {"MASTER_ADDR", "10.0.0.7"},
                 {"MASTER_PORT", "29555"}});
  const train::DistributedEnv read = train::ReadDistributedEnv();
  EXPECT_EQ(read.world_size, 4);
  EXPECT_EQ(read.rank, 3);
  EXPECT_EQ(read.local_rank, 1);
  EXPECT_EQ(read.master_addr, "10.0.0.7");
  EXPECT_EQ(read.master_port, 29555);
}

TEST(DistributedEnvTest, BadValuesNameTheVariable) {
  const std::vector<std::pair<std::map<std::string, std::optional<std::string>>, std::string>>
      cases = {
          {{{"WORLD_SIZE", "two"}, {"RANK", "0"}}, "WORLD_SIZE must be an integer >= 1"},
          {{{"WORLD_SIZE", "0"}, {"RANK", "0"}}, "WORLD_SIZE must be an integer >= 1"},
          {{{"WORLD_SIZE", "2"}, {"RANK", "-1"}}, "RANK must be an integer >= 0"},
          {{{"WORLD_SIZE", "2"}, {"RANK", "2"}}, "RANK 2 must be below WORLD_SIZE 2"},
          {{{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_PORT", "70000"}}, "MASTER_PORT"},
          {{{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_PORT", "12ab"}}, "MASTER_PORT"},
      };
  for (const auto& [values, message] : cases) {
    ScopedEnv env(values);
    EXPECT_THAT(ErrorMessage([] { train::ReadDistributedEnv(); }), HasSubstr(message)) << message;
  }
}

train::DistributedEnv Rank(int64_t rank, int64_t world, int port) {
  train::DistributedEnv env;
  env.rank = rank;
  env.world_size = world;
  env.master_port = port;
  return env;
}

// Runs body(rank) for every rank of a job of `world` on its own thread, each with its own
// connection to the job (as separate processes would have).
void RunRanks(int64_t world, std::chrono::milliseconds timeout,
              const std::function<void(train::Collectives&)>& body) {
  const int port = train::FreeLoopbackPort();
  std::vector<std::thread> threads;
  std::vector<std::string> errors(world);
  for (int64_t rank = 0; rank < world; ++rank) {
    threads.emplace_back([&, rank] {
      errors[rank] = ErrorMessage([&] {
        auto collectives =
            train::Collectives::Connect(Rank(rank, world, port), "gloo", false, timeout);
        body(*collectives);
      });
    });
  }
  for (std::thread& t : threads) t.join();
  for (int64_t rank = 0; rank < world; ++rank) EXPECT_EQ(errors[rank], "no error") << "rank " << rank;
}

TEST(CollectivesTest, OneProcessIsANoOp) {
  auto single = train::Collectives::Connect(Rank(0, 1, 1), "auto", false, std::chrono::seconds(1));
  EXPECT_EQ(single->backend(), "gloo");
  const at::Tensor x = at::arange(6.0).reshape({3, 2});
  single->AllReduceSum({x});
  EXPECT_TRUE(at::equal(x, at::arange(6.0).reshape({3, 2})));
  EXPECT_TRUE(at::equal(single->AllGather(x), x));
}

TEST(CollectivesTest, SumGatherAndBroadcastAcrossTwoRanks) {
  std::vector<at::Tensor> sums(2), gathered(2), broadcast(2), grads(2);
  RunRanks(2, std::chrono::seconds(20), [&](train::Collectives& dist) {
    const int64_t r = dist.rank();
    const at::Tensor a = at::full({2, 3}, static_cast<double>(r + 1), at::kFloat);
    const at::Tensor b = at::full({4}, static_cast<double>(10 * (r + 1)), at::kFloat);
    dist.AllReduceSum({a, b});  // two shapes, one flat message
    sums[r] = at::cat({a.flatten(), b});

    const at::Tensor local = at::full({2, 2}, static_cast<double>(r), at::kFloat).requires_grad_();
    const at::Tensor all = dist.AllGather(local);
    gathered[r] = all.detach().clone();
    all.sum().backward();  // only this rank's rows reach its own tensor
    grads[r] = local.grad().clone();

    // Mixed dtypes (parameters and an integer counter) in one call.
    const at::Tensor weights = at::full({3}, static_cast<double>(r + 5), at::kFloat);
    const at::Tensor counter = at::full({1}, r + 7, at::kLong);
    dist.Broadcast({weights, counter});
    broadcast[r] = at::cat({weights, counter.to(at::kFloat)});
    dist.Barrier();
  });
  for (int r = 0; r < 2; ++r) {
    EXPECT_TRUE(at::equal(sums[r], at::cat({at::full({6}, 3.0), at::full({4}, 30.0)})));
    EXPECT_TRUE(at::equal(gathered[r], at::cat({at::zeros({2, 2}), at::ones({2, 2})})));
    EXPECT_TRUE(at::equal(grads[r], at::ones({2, 2})));
    EXPECT_TRUE(at::equal(broadcast[r], at::tensor({5.0f, 5.0f, 5.0f, 7.0f})));
  }
}

TEST(CollectivesTest, ARankThatStopsRespondingFailsTheOthersAfterTheTimeout) {
  const auto timeout = std::chrono::milliseconds(1500);
  std::string error;
  double waited = 0;
  std::atomic<bool> done{false};
  RunRanks(2, timeout, [&](train::Collectives& dist) {
    if (dist.rank() == 1) {  // stays connected but never takes part in the collective
      while (!done.load()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      return;
    }
    const auto start = Clock::now();
    error = ErrorMessage([&] { dist.AllReduceSum({at::ones({4})}); });
    waited = std::chrono::duration<double>(Clock::now() - start).count();
    done.store(true);
  });
  EXPECT_THAT(error, HasSubstr("distributed: all-reduce failed"));
  EXPECT_GE(waited, 1.0);  // it did wait for the peer, about the configured 1.5 s
  EXPECT_LT(waited, 10.0);
}

TEST(CollectivesTest, ARankThatLeavesFailsTheOthersAtOnce) {
  std::string error;
  RunRanks(2, std::chrono::seconds(60), [&](train::Collectives& dist) {
    if (dist.rank() == 1) return;  // its connection closes when it goes
    error = ErrorMessage([&] { dist.AllReduceSum({at::ones({4})}); });
  });
  EXPECT_THAT(error, HasSubstr("another rank probably exited"));
}

TEST(CollectivesTest, NcclNeedsABuildWithIt) {
  EXPECT_THAT(ErrorMessage([] {
                train::Collectives::Connect(Rank(0, 1, 1), "nccl", false, std::chrono::seconds(1));
              }),
              HasSubstr("--dist-backend: nccl needs CUDA"));
}

// hier-train run as a child process, with its stderr kept.
class Process {
 public:
  Process(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
          const std::string& log) {
    pid_ = ::fork();
    if (pid_ != 0) return;
    for (const auto& [name, value] : env) ::setenv(name.c_str(), value.c_str(), 1);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, STDERR_FILENO);
    ::dup2(fd, STDOUT_FILENO);
    std::vector<char*> argv = {const_cast<char*>(HIER_TRAIN_BINARY)};
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    ::execv(HIER_TRAIN_BINARY, argv.data());
    ::_exit(127);
  }

  pid_t pid() const { return pid_; }

  // The exit code (128 + signal when killed), or nullopt if still running after `limit`.
  std::optional<int> Wait(std::chrono::duration<double> limit) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return std::nullopt;
  }

  ~Process() {
    if (pid_ > 0 && !Wait(std::chrono::seconds(0))) {
      ::kill(pid_, SIGKILL);
      Wait(std::chrono::seconds(5));
    }
  }

 private:
  pid_t pid_ = -1;
};

class DataParallelTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    fs::create_directory(Path("data"));
    WriteFakeFashionMnist(Path("data"), 20, 5);
  }

  // A small run; BatchNorm frozen so the per-rank batch statistics cannot differ from one
  // process's (everything else is exact data parallelism).
  std::vector<std::string> Flags(const std::string& run, int64_t batch, int64_t steps) const {
    return {"--data-dir", Path("data"),   "--run-dir",         Path(run),
            "--batch-size", std::to_string(batch), "--ipc", "2",
            "--emb",        "16",         "--num-proxies",      "32",
            "--topk",       "4",          "--epochs",           "1",
            "--steps-per-epoch", std::to_string(steps), "--recall-k", "1,2",
            "--log-every",  "1",          "--threads",          "1",
            "--bn-freeze",  "--dist-timeout", "20"};
  }

  std::vector<double> Losses(const std::string& run) const {
    std::vector<double> losses;
    std::istringstream in(io::ReadFile(Path(run) + "/metrics.jsonl"));
    for (std::string line; std::getline(in, line);) {
      const Json record = Json::parse(line);
      if (record["kind"] == "train") losses.push_back(record["loss"].get<double>());
    }
    return losses;
  }

  // The pid of the launcher's child that runs `rank`, once it has started.
  pid_t RankPid(pid_t launcher, int rank) const {
    for (int attempt = 0; attempt < 500; ++attempt) {
      std::ifstream children("/proc/" + std::to_string(launcher) + "/task/" +
                             std::to_string(launcher) + "/children");
      for (pid_t child; children >> child;) {
        std::ifstream environ("/proc/" + std::to_string(child) + "/environ");
        std::string all((std::istreambuf_iterator<char>(environ)), {});
        if (all.find("RANK=" + std::to_string(rank) + '\0') != std::string::npos &&
            all.find("WORLD_SIZE=") != std::string::npos) {
          return child;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }
};

TEST_F(DataParallelTest, TwoGlooProcessesTrainAsOneWithTheSameGlobalBatch) {
  auto one_flags = Flags("one", 40, 3);
  Process one(one_flags, {}, Path("one.log"));
  ASSERT_EQ(one.Wait(std::chrono::seconds(120)), 0) << io::ReadFile(Path("one.log"));
  std::vector<std::string> two_flags = Flags("two", 20, 3);
  two_flags.insert(two_flags.end(), {"--nproc", "2"});
  Process two(two_flags, {}, Path("two.log"));
  ASSERT_EQ(two.Wait(std::chrono::seconds(120)), 0) << io::ReadFile(Path("two.log"));

  const std::vector<double> one_losses = Losses("one"), two_losses = Losses("two");
  ASSERT_EQ(one_losses.size(), 3u);
  ASSERT_EQ(two_losses.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(two_losses[i], one_losses[i], 1e-4 * one_losses[i]);
  const train::InferenceModel a = train::LoadInferenceModel(Path("one/best"));
  const train::InferenceModel b = train::LoadInferenceModel(Path("two/best"));
  const auto pa = a.net->named_parameters(), pb = b.net->named_parameters();
  for (const auto& item : pa) {
    EXPECT_TRUE(at::allclose(item.value(), pb[item.key()], 1e-4, 1e-5)) << item.key();
  }
  const Json status = Json::parse(io::ReadFile(Path("two/status.json")));
  EXPECT_EQ(status["world_size"], 2);
  EXPECT_EQ(status["state"], "finished");
}

TEST_F(DataParallelTest, KillingOneRankEndsTheJobWithAnError) {
  std::vector<std::string> flags = Flags("run", 20, 100000);
  flags.insert(flags.end(), {"--nproc", "2"});
  Process launcher(flags, {}, Path("run.log"));
  const pid_t rank1 = RankPid(launcher.pid(), 1);
  ASSERT_GT(rank1, 0);
  std::this_thread::sleep_for(std::chrono::seconds(2));  // both ranks training
  const auto start = Clock::now();
  ::kill(rank1, SIGKILL);
  const std::optional<int> code = launcher.Wait(std::chrono::seconds(20));
  ASSERT_TRUE(code.has_value()) << "the job still runs 20 s after a rank was killed";
  EXPECT_NE(*code, 0);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 20.0);
  EXPECT_THAT(io::ReadFile(Path("run.log")), HasSubstr("rank 1 was killed by signal 9"));
}

TEST_F(DataParallelTest, ASurvivingRankFailsWhenItsPeerDies) {
  const std::string port = std::to_string(train::FreeLoopbackPort());
  auto env = [&](int rank) {
    return std::map<std::string, std::string>{{"RANK", std::to_string(rank)},
                                              {"WORLD_SIZE", "2"},
                                              {"MASTER_ADDR", "127.0.0.1"},
                                              {"MASTER_PORT", port}};
  };
  const std::vector<std::string> flags = Flags("run", 20, 100000);
  Process rank0(flags, env(0), Path("rank0.log"));
  Process rank1(flags, env(1), Path("rank1.log"));
  std::this_thread::sleep_for(std::chrono::seconds(4));
  ASSERT_FALSE(rank0.Wait(std::chrono::seconds(0))) << io::ReadFile(Path("rank0.log"));
  ::kill(rank1.pid(), SIGKILL);
  const std::optional<int> code = rank0.Wait(std::chrono::seconds(30));  // dist-timeout 20
  ASSERT_TRUE(code.has_value()) << "rank 0 still runs 30 s after its peer died";
  EXPECT_EQ(*code, 1);
  EXPECT_THAT(io::ReadFile(Path("rank0.log")),
              HasSubstr("hier-train (rank 0): distributed:"));
}

}  // namespace
}  // namespace hier::testing
