// Secret helper commands: exit status, output, timeouts that kill everything the command
// started, and a clean environment for the helper.
#include "proxy/secrets/run_command.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "temp_dir.hpp"

namespace mailtap::secrets {
namespace {

using namespace std::chrono_literals;
using Status = CommandResult::Status;

CommandResult run(const std::string& cmd, std::chrono::milliseconds timeout = 10s,
                  std::size_t max_output = 64 * 1024) {
  CommandOptions o;
  o.timeout = timeout;
  o.max_output = max_output;
  return run_command(cmd, o);
}

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

TEST(RunCommand, CapturesStdoutOfASuccessfulCommand) {
  const CommandResult r = run("printf 'tok\\nmore\\n'");
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.status, Status::exited);
  EXPECT_EQ(r.output.view(), "tok\nmore\n");
}

TEST(RunCommand, ExitStatusIsChecked) {
  // oama prints some errors on stdout and exits 1: the output must not count as a secret.
  const CommandResult r = run("echo 'error: no refresh token'; exit 1");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status, Status::exited);
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(r.output.empty());
  EXPECT_EQ(describe_failure("--password-cmd", r, {}), "--password-cmd exited with status 1");
  EXPECT_EQ(describe_failure("--password-cmd", run("no-such-command-xyz 2>/dev/null"), {}),
            "--password-cmd exited with status 127 (command not found?)");
}

TEST(RunCommand, KilledBySignal) {
  const CommandResult r = run("kill -9 $$");
  EXPECT_EQ(r.status, Status::signalled);
  EXPECT_EQ(r.code, SIGKILL);
  EXPECT_NE(describe_failure("--x", r, {}).find("killed by signal 9"), std::string::npos);
}

TEST(RunCommand, ASigintWithoutTheTerminalIsNoCtrlCOfTheUsers) {
  // Only a helper that held the terminal got a Ctrl-C that mailtap did not: any other SIGINT
  // (someone's kill) is reported as the signal it is.
  const CommandResult r = run("kill -INT $$");
  EXPECT_EQ(r.status, Status::signalled);
  EXPECT_EQ(r.code, SIGINT);
}

TEST(RunCommand, TimeoutKillsTheCommandAndWhatItStarted) {
  test_support::TempDir dir;
  const std::string pid_file = dir.file("child.pid");
  CommandOptions o;
  o.timeout = 300ms;
  const CommandResult r = run_command("sleep 30 & echo $! > " + pid_file + "; wait", o);
  EXPECT_EQ(r.status, Status::timed_out);
  EXPECT_EQ(describe_failure("--oauth2-token-cmd", r, o),
            "--oauth2-token-cmd did not finish within 300ms and was killed");
  const pid_t grandchild = std::stoi(slurp(pid_file));
  // Killed with its process group: gone, or a zombie until its new parent reaps it.
  bool running = true;
  for (int i = 0; i < 200 && running; ++i) {
    const std::string stat = slurp("/proc/" + std::to_string(grandchild) + "/stat");
    running = !stat.empty() && stat.find(") Z") == std::string::npos;
    if (running) std::this_thread::sleep_for(10ms);
  }
  EXPECT_FALSE(running);
}

// A helper killed at its timeout (or at shutdown) may tidy up first: SIGTERM, then SIGKILL for
// whatever ignores it, so a helper that ignores SIGTERM still ends.
TEST(RunCommand, AKilledCommandGetsSigtermFirstThenSigkill) {
  test_support::TempDir dir;
  const std::string tidied = dir.file("tidied");
  CommandOptions o;
  o.timeout = 300ms;
  CommandResult r =
      run_command("trap 'echo yes > " + tidied + "; exit 1' TERM; sleep 30 & wait $!", o);
  EXPECT_EQ(r.status, Status::timed_out);
  EXPECT_EQ(slurp(tidied), "yes\n");

  const auto start = std::chrono::steady_clock::now();
  r = run_command("trap '' TERM; sleep 30", o);
  EXPECT_EQ(r.status, Status::timed_out);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 20s) << "SIGKILL follows the SIGTERM";
}

// The leader of a killed group is kept as a zombie (its id is not reused while the group is
// signalled), and kill(-pgid, 0) still finds it: the group is gone once nothing else lives, so
// a helper that dies of SIGTERM at once is reaped at once, not after the SIGKILL's grace.
TEST(RunCommand, AGroupWhoseLeaderIsAZombieIsNoLongerAlive) {
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::setpgid(0, 0);
    ::pause();
    ::_exit(0);
  }
  ::setpgid(pid, pid);  // as the child does: whichever runs first
  EXPECT_TRUE(process_group_alive(pid));
  ::kill(pid, SIGKILL);
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT), 0);
  EXPECT_EQ(::kill(-pid, 0), 0) << "the zombie is still a member";
  EXPECT_FALSE(process_group_alive(pid));
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_FALSE(process_group_alive(pid));
}

// Out of descriptors, /proc's listing may open and each /proc/PID/stat not (EMFILE): that says
// nothing of the group, which must not be taken for gone (the helper's children would get the
// SIGKILL at once, without the grace to tidy up that SIGTERM gives them).
TEST(RunCommand, AGroupIsNotTakenForGoneWhenNoDescriptorIsLeftToLookAtIt) {
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::setpgid(0, 0);
    ::pause();
    ::_exit(0);
  }
  ::setpgid(pid, pid);
  rlimit was{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &was), 0);
  // One descriptor left: opendir("/proc") takes it, and no /proc/PID/stat opens after it.
  rlimit few = was;
  few.rlim_cur = std::min<rlim_t>(was.rlim_cur, 512);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &few), 0);
  std::vector<int> held;
  for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) held.push_back(fd);
  ASSERT_FALSE(held.empty());
  ::close(held.back());
  held.pop_back();
  const int last = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const int none = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ::close(last);
  const bool alive = process_group_alive(pid);
  ::setrlimit(RLIMIT_NOFILE, &was);
  for (const int fd : held) ::close(fd);
  ASSERT_GE(last, 0) << "one descriptor was left";
  ASSERT_LT(none, 0) << "and only one";
  EXPECT_TRUE(alive);
  ::kill(pid, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
}

TEST(RunCommand, AnInteractiveCommandIsKilledWithWhatItStartedToo) {
  test_support::TempDir dir;
  const std::string pid_file = dir.file("child.pid");
  CommandOptions o;
  o.timeout = 300ms;
  o.interactive = true;
  const CommandResult r = run_command("sleep 30 & echo $! > " + pid_file + "; wait", o);
  EXPECT_EQ(r.status, Status::timed_out);
  const pid_t grandchild = std::stoi(slurp(pid_file));
  bool running = true;
  for (int i = 0; i < 200 && running; ++i) {
    const std::string stat = slurp("/proc/" + std::to_string(grandchild) + "/stat");
    running = !stat.empty() && stat.find(") Z") == std::string::npos;
    if (running) std::this_thread::sleep_for(10ms);
  }
  EXPECT_FALSE(running);
}

TEST(RunCommand, ACommandThatClosesStdoutButLingersTimesOut) {
  const CommandResult r = run("echo tok; exec >&-; sleep 30", 300ms);
  EXPECT_EQ(r.status, Status::timed_out);
  EXPECT_TRUE(r.output.empty());
}

// A helper that starts an agent on first use leaves it holding stdout: the command is done when
// it exits, and the agent is none of mailtap's business (it keeps running).
TEST(RunCommand, ACommandThatExitsWhileItsBackgroundChildHoldsStdoutIsDone) {
  test_support::TempDir dir;
  const std::string pid_file = dir.file("agent.pid");
  const auto start = std::chrono::steady_clock::now();
  const CommandResult r =
      run("echo tok; sleep 30 2>/dev/null & echo $! > " + pid_file, std::chrono::seconds(3));
  const auto took = std::chrono::steady_clock::now() - start;
  const pid_t agent = std::stoi(slurp(pid_file));
  const bool agent_alive = ::kill(agent, 0) == 0;
  ::kill(agent, SIGKILL);
  EXPECT_TRUE(r.ok()) << describe_failure("--password-cmd", r, {});
  EXPECT_EQ(r.output.view(), "tok\n");
  EXPECT_LT(took, std::chrono::seconds(1));
  EXPECT_TRUE(agent_alive);
}

TEST(RunCommand, AllTheOutputInThePipeWhenTheCommandExitsIsKept) {
  test_support::TempDir dir;
  const std::string pid_file = dir.file("agent.pid");
  // More than one read's worth, still in the pipe when the shell exits.
  const CommandResult r =
      run("head -c 50000 /dev/zero | tr '\\0' a; echo; sleep 30 2>/dev/null & "
          "echo $! > " +
              pid_file,
          std::chrono::seconds(3));
  ::kill(std::stoi(slurp(pid_file)), SIGKILL);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.output.view(), std::string(50000, 'a') + "\n");
}

TEST(RunCommand, TooMuchOutputIsRefused) {
  const CommandResult r = run("yes", 10s, 1000);
  EXPECT_EQ(r.status, Status::too_much_output);
  EXPECT_TRUE(r.output.empty());
}

TEST(RunCommand, CancelFromAnotherThread) {
  std::atomic<bool> cancel{false};
  CommandOptions o;
  o.cancel = &cancel;
  std::thread t([&] {
    std::this_thread::sleep_for(100ms);
    cancel = true;
  });
  const CommandResult r = run_command("sleep 30", o);
  t.join();
  EXPECT_EQ(r.status, Status::cancelled);
}

TEST(RunCommand, NonInteractiveCommandsReadDevNull) {
  const CommandResult r = run("cat; echo done");
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.output.view(), "done\n");
}

// A descriptor the test opened, closed when the test ends.
struct OpenFd {
  int fd;
  explicit OpenFd(int f) : fd(f) {}
  OpenFd(const OpenFd&) = delete;
  OpenFd& operator=(const OpenFd&) = delete;
  ~OpenFd() {
    if (fd >= 0) ::close(fd);
  }
};

// mailtap's listening socket and its sessions' sockets are open without close-on-exec (Asio
// opens them so): a helper, and an agent it leaves running, must not hold any of them.
TEST(RunCommand, TheHelperInheritsOnlyStdinStdoutAndStderr) {
  const OpenFd socket{::socket(AF_INET, SOCK_STREAM, 0)};
  const OpenFd file{::open("/dev/null", O_RDONLY)};
  ASSERT_GE(socket.fd, 3);
  ASSERT_GE(file.fd, 3);
  for (const bool interactive : {false, true}) {
    CommandOptions o;
    o.interactive = interactive;
    // ls lists the shell's descriptors from a process of its own.
    const CommandResult r = run_command("ls /proc/$$/fd", o);
    ASSERT_TRUE(r.ok()) << describe_failure("--password-cmd", r, o);
    EXPECT_EQ(std::string(r.output.view()), "0\n1\n2\n") << "interactive: " << interactive;
  }
}

TEST(RunCommand, StderrGoesToMailtapsStderr) {
  test_support::TempDir dir;
  const std::string path = dir.file("stderr");
  const int saved = ::dup(2);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ::dup2(fd, 2);
  ::close(fd);
  const CommandResult r = run("echo 'helper: please authorize' >&2; echo tok");
  ::dup2(saved, 2);
  ::close(saved);
  EXPECT_EQ(r.output.view(), "tok\n");
  EXPECT_EQ(slurp(path), "helper: please authorize\n");
}

TEST(RunCommand, HelperGetsDefaultSignalsEvenWhenMailtapIgnoresSigpipe) {
  struct sigaction ignore {
  }, saved{};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ignore, &saved);
  const CommandResult r = run("grep SigIgn /proc/self/status");
  sigaction(SIGPIPE, &saved, nullptr);
  ASSERT_TRUE(r.ok());
  const std::string line(r.output.view());
  const unsigned long long ignored = std::stoull(line.substr(line.find(':') + 1), nullptr, 16);
  EXPECT_EQ(ignored & (1ull << (SIGPIPE - 1)), 0u) << line;
}

}  // namespace
}  // namespace mailtap::secrets
