// ProcessGroupLook: whether a killed command's process group lives on, from what kill(-pgid, 0)
// and /proc said. process_group_alive (secrets_run_command_test) asks them of real processes;
// what a test cannot make a real process do (a member mailtap may not look at, one gone between
// the listing and the open) is told to the look here.
#include "proxy/secrets/process_group_look.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace mailtap::secrets {
namespace {

constexpr pid_t kGroup = 4242;

ProcessSeen stat_of(const std::string& line) {
  ProcessSeen p;
  p.stat = line;
  return p;
}

// A process whose stat could not be read (`error`), of which getpgid() said `group`.
ProcessSeen unreadable(int error, pid_t group) {
  ProcessSeen p;
  p.stat_error = error;
  p.group = group;
  return p;
}

// A process whose stat could not be read (`error`), nor its group (`group_error`).
ProcessSeen unknown(int error, int group_error) {
  ProcessSeen p;
  p.stat_error = error;
  p.group = -1;
  p.group_error = group_error;
  return p;
}

const std::string kInit = "1 (systemd) S 0 1 1 0 -1 4194560";
const std::string kZombieLeader = "4242 (sh) Z 100 4242 100 0 -1 4227084";
const std::string kSleeping = "4243 (sleep) S 4242 4242 100 0 -1 4194304";
const std::string kOtherGroup = "5000 (sleep) S 1 5000 5000 0 -1 4194304";

TEST(ProcessGroupLook, AGroupWithAMemberThatRunsIsAlive) {
  ProcessGroupLook look(kGroup, 0);
  look.seen(stat_of(kInit));
  look.seen(stat_of(kZombieLeader));
  EXPECT_FALSE(look.settled());
  look.seen(stat_of(kSleeping));
  EXPECT_TRUE(look.settled()) << "no further process need be read";
  EXPECT_TRUE(look.alive());
}

TEST(ProcessGroupLook, AGroupOfOnlyItsLeadersZombieIsGone) {
  ProcessGroupLook look(kGroup, 0);
  for (const auto& line : {kInit, kZombieLeader, kOtherGroup}) look.seen(stat_of(line));
  EXPECT_FALSE(look.settled());
  EXPECT_FALSE(look.alive());
}

TEST(ProcessGroupLook, AGroupKillFindsNoMemberOfIsGoneWithoutALook) {
  ProcessGroupLook look(kGroup, ESRCH);
  EXPECT_TRUE(look.settled());
  EXPECT_FALSE(look.alive());
  look.seen(stat_of(kSleeping));  // a settled look takes nothing more
  EXPECT_FALSE(look.alive());
}

// kill()'s EPERM: the group has members, none of which mailtap may signal (each runs a
// set-user-ID program). They are not taken for gone.
TEST(ProcessGroupLook, AGroupWhoseMembersMailtapMayNotSignalIsNotGone) {
  ProcessGroupLook look(kGroup, EPERM);
  EXPECT_TRUE(look.settled());
  EXPECT_TRUE(look.alive());
}

// hidepid=1 or an LSM: a member running a set-user-ID program is not ours to look at. getpgid()
// finds it in the group; whether it is a zombie nobody can say, and kill()'s answer stands.
TEST(ProcessGroupLook, AMemberWhoseStatMayNotBeReadIsNotTakenForGone) {
  for (const int error : {EACCES, EPERM}) {
    ProcessGroupLook look(kGroup, 0);
    look.seen(stat_of(kZombieLeader));
    look.seen(unreadable(error, kGroup));
    EXPECT_TRUE(look.settled()) << std::strerror(error);
    EXPECT_TRUE(look.alive()) << std::strerror(error);
  }
}

// Another user's process under hidepid=1 is as unreadable, and of another group: passed over,
// or a command's kill would wait its whole grace out on any such machine.
TEST(ProcessGroupLook, AnotherGroupsProcessThatMayNotBeReadIsPassedOver) {
  for (const int error : {EACCES, EPERM}) {
    ProcessGroupLook look(kGroup, 0);
    look.seen(stat_of(kZombieLeader));
    look.seen(unreadable(error, 5000));
    look.seen(unreadable(error, 1));
    EXPECT_FALSE(look.settled()) << std::strerror(error);
    EXPECT_FALSE(look.alive()) << std::strerror(error);
  }
}

// A process gone between the listing and the open (or the read) is no member.
TEST(ProcessGroupLook, AProcessGoneSinceTheListingIsPassedOver) {
  for (const int error : {ENOENT, ESRCH}) {
    ProcessGroupLook look(kGroup, 0);
    look.seen(stat_of(kZombieLeader));
    look.seen(unknown(error, ESRCH));
    EXPECT_FALSE(look.settled()) << std::strerror(error);
    EXPECT_FALSE(look.alive()) << std::strerror(error);
  }
  ProcessGroupLook look(kGroup, 0);
  look.seen(unknown(EACCES, ESRCH));  // gone before getpgid() asked
  EXPECT_FALSE(look.alive());
}

// Out of descriptors, no stat opens; getpgid() needs none: only a member keeps the group alive.
TEST(ProcessGroupLook, WithoutADescriptorGetpgidTellsWhoIsAMember) {
  for (const int error : {EMFILE, ENFILE}) {
    ProcessGroupLook look(kGroup, 0);
    look.seen(unreadable(error, 1));
    EXPECT_FALSE(look.settled()) << std::strerror(error);
    look.seen(unreadable(error, kGroup));
    EXPECT_TRUE(look.settled()) << std::strerror(error);
    EXPECT_TRUE(look.alive()) << std::strerror(error);
  }
}

// Neither the stat nor the group could be read (an LSM refusing getpgid too): cannot tell.
TEST(ProcessGroupLook, AProcessNothingCanBeLearntOfLeavesKillsAnswer) {
  ProcessGroupLook look(kGroup, 0);
  look.seen(unknown(EACCES, EPERM));
  EXPECT_TRUE(look.alive());
}

TEST(ProcessGroupLook, WithoutAListingKillsAnswerStands) {
  ProcessGroupLook look(kGroup, 0);
  look.no_listing();
  EXPECT_TRUE(look.alive());
}

// comm may hold anything, a ')' and what looks like the fields too: they are read after its
// last ')'.
TEST(ProcessGroupLook, TheFieldsAreReadAfterTheCommandsName) {
  ProcessGroupLook tricked(kGroup, 0);
  tricked.seen(stat_of("77 (x) S 1 4242 ) Z 1 5000 5000 0 -1 0"));
  EXPECT_FALSE(tricked.alive()) << "a zombie of another group";
  ProcessGroupLook member(kGroup, 0);
  member.seen(stat_of("77 (a) Z 1 5000 (b) S 1 4242 4242 0 -1 0"));
  EXPECT_TRUE(member.alive());
  ProcessGroupLook cut(kGroup, 0);
  cut.seen(stat_of("77 (sleep"));  // nothing to read after it
  cut.seen(stat_of(""));
  EXPECT_FALSE(cut.alive());
}

}  // namespace
}  // namespace mailtap::secrets
