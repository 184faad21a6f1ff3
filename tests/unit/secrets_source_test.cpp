// --password-env, --password-file, --password-cmd and the prompt without echo.
#include "proxy/secrets/secret_source.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "proxy/secrets/run_command.hpp"
#include "temp_dir.hpp"

namespace mailtap::secrets {
namespace {

using namespace std::chrono_literals;
using namespace std::string_view_literals;

std::string write_file(const test_support::TempDir& dir, const std::string& name,
                       const std::string& content, mode_t mode) {
  const std::string path = dir.file(name);
  {
    std::ofstream f(path, std::ios::binary);
    f << content;
  }
  ::chmod(path.c_str(), mode);
  return path;
}

std::string value(const SecretRead& r) {
  EXPECT_TRUE(r.secret) << r.error;
  return r.secret ? std::string(r.secret->view()) : std::string();
}

TEST(SecretSource, EnvTakesTheFirstLineAndRemovesTheVariable) {
  ::setenv("MAILTAP_TEST_PW", "s3cret\r\nsecond line", 1);
  EXPECT_EQ(value(read_secret_from_env("MAILTAP_TEST_PW")), "s3cret");
  EXPECT_EQ(std::getenv("MAILTAP_TEST_PW"), nullptr);
  // ... so a helper command started afterwards does not inherit it.
  ::setenv("MAILTAP_TEST_PW", "s3cret", 1);
  ASSERT_TRUE(read_secret_from_env("MAILTAP_TEST_PW").secret);
  const CommandResult r = run_command("env", {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.output.view().find("MAILTAP_TEST_PW"), std::string_view::npos);
  EXPECT_EQ(r.output.view().find("s3cret"), std::string_view::npos);
}

// execve allows a variable twice, and /proc/PID/environ shows every entry, not only the one
// getenv returns: each is wiped where it lies.
TEST(SecretSource, EnvWipesEveryEntryOfTheVariable) {
  char first[] = "MAILTAP_TEST_DUP=Dup1Secret";
  char other[] = "MAILTAP_TEST_DUP_NOT=keep";
  char second[] = "MAILTAP_TEST_DUP=Dup2Secret";
  char* entries[] = {first, other, second, nullptr};
  char** const saved = environ;
  environ = entries;
  const SecretRead r = read_secret_from_env("MAILTAP_TEST_DUP");
  const bool unset = std::getenv("MAILTAP_TEST_DUP") == nullptr;
  environ = saved;
  EXPECT_EQ(value(r), "Dup1Secret");
  EXPECT_TRUE(unset);
  EXPECT_EQ(std::string_view(first, sizeof first - 1), "MAILTAP_TEST_DUP=\0\0\0\0\0\0\0\0\0\0"sv);
  EXPECT_EQ(std::string_view(second, sizeof second - 1), "MAILTAP_TEST_DUP=\0\0\0\0\0\0\0\0\0\0"sv);
  EXPECT_STREQ(other, "MAILTAP_TEST_DUP_NOT=keep");
}

TEST(SecretSource, EnvErrors) {
  ::unsetenv("MAILTAP_TEST_UNSET");
  EXPECT_EQ(read_secret_from_env("MAILTAP_TEST_UNSET").error,
            "--password-env MAILTAP_TEST_UNSET: the variable is not set");
  ::setenv("MAILTAP_TEST_EMPTY", "", 1);
  EXPECT_EQ(read_secret_from_env("MAILTAP_TEST_EMPTY").error,
            "--password-env MAILTAP_TEST_EMPTY: the first line is empty");
}

TEST(SecretSource, PrivateFileFirstLine) {
  test_support::TempDir dir;
  EXPECT_EQ(value(read_secret_from_file(write_file(dir, "pw", "pass word \nrest\n", 0600))),
            "pass word ");  // spaces belong to the password
  EXPECT_EQ(value(read_secret_from_file(write_file(dir, "crlf", "pw\r\n", 0400))), "pw");
  EXPECT_EQ(value(read_secret_from_file(write_file(dir, "nonl", "pw", 0600))), "pw");
}

TEST(SecretSource, FileReadableByOthersIsRefusedAsSshDoes) {
  test_support::TempDir dir;
  const std::string path = write_file(dir, "pw", "secret\n", 0644);
  const SecretRead r = read_secret_from_file(path);
  EXPECT_FALSE(r.secret);
  EXPECT_EQ(r.error, "--password-file " + path +
                         ": permissions 0644 are too open; a password file must not be "
                         "accessible by group or others (chmod 600 " +
                         path + ")");
  for (mode_t m : {0640, 0604, 0620, 0602, 0610}) {
    ::chmod(path.c_str(), m);
    EXPECT_FALSE(read_secret_from_file(path).secret) << std::oct << m;
  }
}

TEST(SecretSource, FileErrors) {
  test_support::TempDir dir;
  EXPECT_NE(read_secret_from_file(dir.file("missing")).error.find("No such file"),
            std::string::npos);
  EXPECT_EQ(read_secret_from_file(write_file(dir, "empty", "\nsecond\n", 0600)).error,
            "--password-file " + dir.file("empty") + ": the first line is empty");
  ::mkdir(dir.file("d").c_str(), 0700);
  EXPECT_EQ(read_secret_from_file(dir.file("d")).error,
            "--password-file " + dir.file("d") + ": is a directory");
  const std::string long_line(70000, 'x');
  EXPECT_NE(read_secret_from_file(write_file(dir, "long", long_line, 0600))
                .error.find("longer than 64 KiB"),
            std::string::npos);
}

TEST(SecretSource, FileCanBeAPipe) {
  // --password-file <(pass show mail/gmail) hands mailtap a pipe.
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::thread writer([&] {
    (void)!::write(fds[1], "from-a-pipe\nnot this\n", 21);
    ::close(fds[1]);
  });
  const SecretRead r = read_secret_from_file("/dev/fd/" + std::to_string(fds[0]));
  writer.join();
  ::close(fds[0]);
  EXPECT_EQ(value(r), "from-a-pipe");
}

// --print-config refuses what the start refuses about a source, with the same words, and
// reads, wipes or runs nothing.
TEST(SecretSource, CheckRefusesWhatReadingRefusesWithoutReading) {
  test_support::TempDir dir;
  const std::string open_file = write_file(dir, "open", "secret\n", 0644);
  const std::string private_file = write_file(dir, "private", "secret\n", 0600);
  using Kind = SecretSource::Kind;
  EXPECT_EQ(check_secret_source({Kind::file, open_file}), read_secret_from_file(open_file).error);
  EXPECT_EQ(check_secret_source({Kind::file, dir.file("missing")}),
            read_secret_from_file(dir.file("missing")).error);
  EXPECT_EQ(check_secret_source({Kind::file, dir.file("")}),
            "--password-file " + dir.file("") + ": is a directory");
  EXPECT_EQ(check_secret_source({Kind::file, private_file}), "");
  ::unsetenv("MAILTAP_TEST_UNSET");
  EXPECT_EQ(check_secret_source({Kind::env, "MAILTAP_TEST_UNSET"}),
            "--password-env MAILTAP_TEST_UNSET: the variable is not set");
  ::setenv("MAILTAP_TEST_PW", "s3cret", 1);
  EXPECT_EQ(check_secret_source({Kind::env, "MAILTAP_TEST_PW"}), "");
  EXPECT_STREQ(std::getenv("MAILTAP_TEST_PW"), "s3cret");  // still there for the real read
  ::unsetenv("MAILTAP_TEST_PW");
  const std::string marker = dir.file("ran");
  EXPECT_EQ(check_secret_source({Kind::command, "touch " + marker + "; echo pw"}), "");
  EXPECT_NE(::access(marker.c_str(), F_OK), 0) << "the command ran";
}

TEST(SecretSource, CommandFirstLineAndExitStatus) {
  EXPECT_EQ(value(read_secret_from_command("printf 'pw1\\nignored\\n'")), "pw1");
  EXPECT_EQ(read_secret_from_command("echo oops; exit 2").error,
            "--password-cmd exited with status 2");
  EXPECT_EQ(read_secret_from_command("true").error, "--password-cmd printed nothing");
  EXPECT_EQ(read_secret_from_command("printf '\\nx\\n'").error,
            "--password-cmd: the first line is empty");
  EXPECT_EQ(read_secret_from_command("sleep 5", "--password-cmd", 200ms).error,
            "--password-cmd did not finish within 200ms and was killed");
}

// Only the first line is the secret, whatever follows it (a `pass show` entry with long notes
// under the password): the rest is read and dropped, never held, as --password-file reads only
// up to its first newline (auth-F5). Only a first line over 64 KiB is refused.
TEST(SecretSource, OnlyTheFirstLineCountsHoweverMuchFollows) {
  EXPECT_EQ(value(read_secret_from_command(
                "echo first-line-pw; head -c 3000000 /dev/zero | tr '\\0' x; echo; echo more")),
            "first-line-pw");
  EXPECT_EQ(read_secret_from_command("head -c 70000 /dev/zero | tr '\\0' x").error,
            "--password-cmd printed a first line longer than 65536 bytes; a secret helper "
            "prints the secret on its first line");
  ::setenv("MAILTAP_TEST_BIG", ("env-first-line\n" + std::string(70000, 'x')).c_str(), 1);
  EXPECT_EQ(value(read_secret_from_env("MAILTAP_TEST_BIG")), "env-first-line");
  EXPECT_EQ(std::getenv("MAILTAP_TEST_BIG"), nullptr);
  ::setenv("MAILTAP_TEST_BIG", std::string(70000, 'x').c_str(), 1);
  EXPECT_EQ(read_secret_from_env("MAILTAP_TEST_BIG").error,
            "--password-env MAILTAP_TEST_BIG: the first line is longer than 64 KiB");
  EXPECT_EQ(std::getenv("MAILTAP_TEST_BIG"), nullptr);
}

// 64 KiB is the longest secret whatever its source: a first line of exactly 65536 bytes is
// taken from each, with its LF or CRLF, and one byte more is refused by each.
TEST(SecretSource, EverySourceTakesAFirstLineOfExactly64KiB) {
  test_support::TempDir dir;
  const std::string longest(65536, 'x');
  for (const std::string end : {"", "\n", "\r\n", "\nmore\n"}) {
    SCOPED_TRACE(end.size());
    ::setenv("MAILTAP_TEST_BIG", (longest + end).c_str(), 1);
    EXPECT_EQ(value(read_secret_from_env("MAILTAP_TEST_BIG")), longest);
    EXPECT_EQ(value(read_secret_from_file(write_file(dir, "longest", longest + end, 0600))),
              longest);
    write_file(dir, "cat", longest + end, 0600);
    EXPECT_EQ(value(read_secret_from_command("cat " + dir.file("cat"))), longest);
  }
  const std::string over(65537, 'x');
  for (const std::string end : {"", "\n", "\r\n"}) {
    SCOPED_TRACE(end.size());
    ::setenv("MAILTAP_TEST_BIG", (over + end).c_str(), 1);
    EXPECT_EQ(read_secret_from_env("MAILTAP_TEST_BIG").error,
              "--password-env MAILTAP_TEST_BIG: the first line is longer than 64 KiB");
    EXPECT_NE(read_secret_from_file(write_file(dir, "over", over + end, 0600))
                  .error.find("the first line is longer than 64 KiB"),
              std::string::npos);
    write_file(dir, "cat", over + end, 0600);
    EXPECT_EQ(read_secret_from_command("cat " + dir.file("cat")).error,
              "--password-cmd printed a first line longer than 65536 bytes; a secret helper "
              "prints the secret on its first line");
  }
}

TEST(SecretSource, PromptNeedsATerminal) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const SecretRead r = read_secret_from_terminal("Password: ", fds[0], fds[1]);
  ::close(fds[0]);
  ::close(fds[1]);
  EXPECT_FALSE(r.secret);
  EXPECT_NE(r.error.find("--password-env VAR, --password-file PATH or --password-cmd CMD"),
            std::string::npos);
}

class Pty : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(::openpty(&master_, &slave_, nullptr, nullptr, nullptr), 0); }
  void TearDown() override {
    ::close(master_);
    ::close(slave_);
  }
  bool echo_on() const {
    termios t{};
    ::tcgetattr(slave_, &t);
    return (t.c_lflag & ECHO) != 0;
  }
  // Types `text` once the prompt has switched echo off, as a person would.
  std::thread type_when_quiet(std::string text) {
    return std::thread([this, text] {
      for (int i = 0; i < 500 && echo_on(); ++i) std::this_thread::sleep_for(5ms);
      (void)!::write(master_, text.data(), text.size());
    });
  }
  std::string screen() const {
    std::string out;
    char buf[256];
    const int flags = ::fcntl(master_, F_GETFL);
    ::fcntl(master_, F_SETFL, flags | O_NONBLOCK);
    for (ssize_t n; (n = ::read(master_, buf, sizeof buf)) > 0;) out.append(buf, n);
    ::fcntl(master_, F_SETFL, flags);
    return out;
  }
  int master_ = -1;
  int slave_ = -1;
};

TEST_F(Pty, PromptReadsWithoutEchoAndRestoresTheTerminal) {
  ASSERT_TRUE(echo_on());
  std::thread typist = type_when_quiet("hunter2\n");
  const SecretRead r = read_secret_from_terminal("Password for alice: ", slave_, slave_);
  typist.join();
  EXPECT_EQ(value(r), "hunter2");
  EXPECT_TRUE(echo_on());
  const std::string shown = screen();
  EXPECT_NE(shown.find("Password for alice: "), std::string::npos) << shown;
  EXPECT_EQ(shown.find("hunter2"), std::string::npos) << shown;
}

// A terminal's own line editing keeps 4095 characters of a line and drops the rest unseen;
// access tokens (Microsoft 365's) are often longer.
TEST_F(Pty, APasteLongerThanATerminalLineIsReadWhole) {
  const std::string token = "eyJ0eXAi." + std::string(10000, 'k') + "-end";
  std::thread typist = type_when_quiet(token + "\n");
  const SecretRead r = read_secret_from_terminal("Access token: ", slave_, slave_);
  typist.join();
  EXPECT_EQ(value(r).size(), token.size());
  EXPECT_EQ(value(r), token);
  termios t{};
  ::tcgetattr(slave_, &t);
  EXPECT_NE(t.c_lflag & ICANON, 0U) << "the terminal's line editing is back";
  EXPECT_EQ(screen().find("kkkk"), std::string::npos);
}

// The whole line is read, with the echo off, to its end: the rest of a paste is neither shown
// once the echo is back nor left for the shell to run.
TEST_F(Pty, ALineOverTheLimitIsRefusedNotCut) {
  std::thread typist = type_when_quiet(std::string(70000, 'k') + "TAILSECRET\n");
  const SecretRead r = read_secret_from_terminal("Access token: ", slave_, slave_);
  typist.join();
  EXPECT_FALSE(r.secret);
  EXPECT_EQ(r.error, "no secret was entered (the line is longer than 65536 bytes)");
  EXPECT_TRUE(echo_on());
  EXPECT_EQ(screen().find("TAILSECRET"), std::string::npos);
  int queued = -1;
  ASSERT_EQ(::ioctl(slave_, FIONREAD, &queued), 0);
  EXPECT_EQ(queued, 0) << "bytes of the paste left for whoever reads next";
}

// The prompt edits the line itself, with the terminal's keys, as its line editing would have.
TEST_F(Pty, TheTerminalsEditingKeysWorkAtThePrompt) {
  termios t{};
  ::tcgetattr(slave_, &t);
  t.c_cc[VERASE] = 0x7f;
  t.c_cc[VKILL] = 0x15;    // Ctrl-U
  t.c_cc[VWERASE] = 0x17;  // Ctrl-W
  t.c_cc[VLNEXT] = 0x16;   // Ctrl-V
  t.c_iflag |= IUTF8;
  t.c_iflag &= ~static_cast<tcflag_t>(ICRNL);  // Enter arrives as CR
  t.c_lflag |= IEXTEN;
  ::tcsetattr(slave_, TCSANOW, &t);
  const std::pair<std::string, std::string> typed_and_meant[] = {
      {"hunter3\x7f"
       "2\n",
       "hunter2"},
      {"oops\x15"
       "hunter2\n",
       "hunter2"},
      {"\x7f\x7f"
       "ab\n",
       "ab"},  // nothing to erase yet
      {"hunter2 wrong-word\x17\x17"
       "word\n",
       "hunter2 word"},
      {"caf\xc3\xa9\x7f"
       "e\n",
       "cafe"},  // a whole UTF-8 character
      {"a\x16\x15"
       "b\x16\x7f"
       "\n",
       "a\x15"
       "b\x7f"},  // Ctrl-V takes the next key as it is
      {"half\x04"
       "done\n",
       "halfdone"},    // Ctrl-D inside a line ends nothing
      {"pw\r", "pw"},  // a terminal that sends CR for Enter
  };
  for (const auto& [typed, meant] : typed_and_meant) {
    std::thread typist = type_when_quiet(typed);
    const SecretRead r = read_secret_from_terminal("Password: ", slave_, slave_);
    typist.join();
    EXPECT_EQ(value(r), meant) << typed;
    EXPECT_TRUE(echo_on());
  }
}

// The second end-of-line key ends a line only with IEXTEN, as in Linux's line discipline.
TEST_F(Pty, TheSecondEndOfLineKeyNeedsIexten) {
  termios t{};
  ::tcgetattr(slave_, &t);
  t.c_cc[VEOL2] = '#';
  t.c_lflag &= ~static_cast<tcflag_t>(IEXTEN);
  ::tcsetattr(slave_, TCSANOW, &t);
  std::thread typist = type_when_quiet("ab#cd\n");
  SecretRead r = read_secret_from_terminal("Password: ", slave_, slave_);
  typist.join();
  EXPECT_EQ(value(r), "ab#cd");
  t.c_lflag |= IEXTEN;
  ::tcsetattr(slave_, TCSANOW, &t);
  typist = type_when_quiet("ab#");
  r = read_secret_from_terminal("Password: ", slave_, slave_);
  typist.join();
  EXPECT_EQ(value(r), "ab");
}

TEST_F(Pty, EndOfInputIsNoSecretAndRestoresTheTerminal) {
  std::thread typist = type_when_quiet("\x04");  // Ctrl-D on an empty line
  const SecretRead r = read_secret_from_terminal("Password: ", slave_, slave_);
  typist.join();
  EXPECT_FALSE(r.secret);
  EXPECT_EQ(r.error, "no secret was entered (no input)");
  EXPECT_TRUE(echo_on());
}

volatile sig_atomic_t test_signal = 0;
extern "C" void note_signal(int s) {
  test_signal = s;
}

TEST_F(Pty, ASignalRestoresTheTerminalThenTakesItsCourse) {
  struct sigaction mine {
  }, saved{};
  mine.sa_handler = note_signal;
  sigaction(SIGTERM, &mine, &saved);
  test_signal = 0;
  const pthread_t me = ::pthread_self();
  std::thread killer([&] {
    for (int i = 0; i < 500 && echo_on(); ++i) std::this_thread::sleep_for(5ms);
    ::pthread_kill(me, SIGTERM);
  });
  const SecretRead r = read_secret_from_terminal("Password: ", slave_, slave_);
  killer.join();
  sigaction(SIGTERM, &saved, nullptr);
  EXPECT_FALSE(r.secret);
  EXPECT_EQ(r.error, "no secret was entered (interrupted)");
  EXPECT_TRUE(echo_on());
  EXPECT_EQ(test_signal, SIGTERM);  // re-raised to the handler the process had
}

}  // namespace
}  // namespace mailtap::secrets
