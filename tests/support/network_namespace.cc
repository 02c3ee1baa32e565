#include "tests/support/network_namespace.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace hier::testing {
namespace {

// iproute2's ip, where Debian installs it.
std::string FindIp() {
  for (const char* path : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (std::filesystem::exists(path)) return path;
  }
  return "";
}

// Octets 2 and 3 of the namespace's addresses: 10.B.C.x, from the process id, so concurrent test
// processes do not collide.
std::string Prefix() {
  const long pid = static_cast<long>(getpid());
  return absl::StrCat("10.", 200 + pid % 50, ".", (pid / 50) % 256, ".");
}

}  // namespace

absl::StatusOr<std::unique_ptr<NetworkNamespace>> NetworkNamespace::Create(int links) {
  const std::string ip = FindIp();
  if (ip.empty()) return absl::FailedPreconditionError("iproute2's ip is not installed");
  if (geteuid() != 0) {
    return absl::FailedPreconditionError("making network namespaces needs root (CAP_NET_ADMIN)");
  }
  std::unique_ptr<NetworkNamespace> made(
      new NetworkNamespace(ip, absl::StrCat("hier-test-", getpid()), links));
  (void)made->Ip({"netns", "delete", made->name_});  // left by a crashed run of this pid
  if (absl::Status added = made->Ip({"netns", "add", made->name_}); !added.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("cannot make a network namespace: ",
                                                      added.message()));
  }
  std::vector<std::vector<std::string>> commands = {
      {"-n", made->name_, "link", "set", "lo", "up"}};
  for (int link = 0; link < links; ++link) {
    const std::string host = made->HostLink(link), inside = made->InsideLink(link);
    commands.push_back({"link", "add", host, "type", "veth", "peer", "name", inside});
    commands.push_back({"link", "set", inside, "netns", made->name_});
    commands.push_back({"addr", "add", made->HostAddress(link) + "/30", "dev", host});
    commands.push_back({"-n", made->name_, "addr", "add", made->InsideAddress(link) + "/30",
                        "dev", inside});
    commands.push_back({"link", "set", host, "up"});
    commands.push_back({"-n", made->name_, "link", "set", inside, "up"});
  }
  for (const std::vector<std::string>& command : commands) {
    if (absl::Status done = made->Ip(command); !done.ok()) return done;
  }
  return made;
}

NetworkNamespace::NetworkNamespace(std::string ip, std::string name, int links)
    : ip_(std::move(ip)), name_(std::move(name)), links_(links) {}

NetworkNamespace::~NetworkNamespace() {
  // Deleting the namespace deletes the links' inside ends, and with them the veth pairs.
  (void)Ip({"netns", "delete", name_});
  for (int link = 0; link < links_; ++link) (void)Ip({"link", "delete", HostLink(link)});
}

std::string NetworkNamespace::HostAddress(int link) const {
  return absl::StrCat(Prefix(), 4 * link + 1);
}
std::string NetworkNamespace::InsideAddress(int link) const {
  return absl::StrCat(Prefix(), 4 * link + 2);
}
std::string NetworkNamespace::HostLink(int link) const {
  return absl::StrCat("hh", getpid(), "x", link);
}
std::string NetworkNamespace::InsideLink(int link) const {
  return absl::StrCat("hn", getpid(), "x", link);
}

absl::Status NetworkNamespace::SetLinkUp(int link, bool up) const {
  return Ip({"link", "set", HostLink(link), up ? "up" : "down"});
}

std::vector<std::string> NetworkNamespace::Inside(const std::vector<std::string>& argv) const {
  std::vector<std::string> command = {"netns", "exec", name_};
  command.insert(command.end(), argv.begin(), argv.end());
  return command;
}

absl::Status NetworkNamespace::Ip(const std::vector<std::string>& args) const {
  std::string command = ip_;
  for (const std::string& arg : args) absl::StrAppend(&command, " '", arg, "'");
  absl::StrAppend(&command, " 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return absl::InternalError(absl::StrCat("cannot run ", command));
  std::string output;
  char buffer[512];
  while (fgets(buffer, sizeof(buffer), pipe) != nullptr) output += buffer;
  const int status = pclose(pipe);
  if (status != 0) {
    return absl::InternalError(absl::StrCat(ip_, " ", absl::StrJoin(args, " "), ": ", output));
  }
  return absl::OkStatus();
}

}  // namespace hier::testing
