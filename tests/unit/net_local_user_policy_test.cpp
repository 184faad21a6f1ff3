// Which local users mailtap serves: its own, those --allow-local-user names, everyone with
// `any`; and what a refused one is told.
#include "proxy/net/local_user_policy.hpp"

#include <gtest/gtest.h>

#include <string>

namespace mailtap::net {
namespace {

std::string name_of(std::uint32_t uid) {
  if (uid == 1000) return "alice";
  if (uid == 65534) return "nobody";
  return {};
}

LocalUserPolicy alice_only() {
  LocalUserPolicy p;
  p.own = 1000;
  return p;
}

PeerOwner user(std::uint32_t uid) {
  return {PeerOwner::Kind::user, uid, {}};
}

TEST(LocalUserPolicyTest, MailtapsOwnUserIsServed) {
  EXPECT_EQ(local_user_refusal(alice_only(), user(1000), true, name_of), "");
}

TEST(LocalUserPolicyTest, AnotherUserIsToldWhoAndWhatToDo) {
  const std::string why = local_user_refusal(alice_only(), user(65534), true, name_of);
  EXPECT_NE(why.find("local user nobody (uid 65534)"), std::string::npos) << why;
  EXPECT_NE(why.find("alice (uid 1000)"), std::string::npos) << why;
  EXPECT_NE(why.find("--allow-local-user nobody"), std::string::npos) << why;
  // A user with no name is named by its uid, which the option takes too.
  const std::string unnamed = local_user_refusal(alice_only(), user(4242), true, name_of);
  EXPECT_NE(unnamed.find("local user uid 4242"), std::string::npos) << unnamed;
  EXPECT_NE(unnamed.find("--allow-local-user 4242"), std::string::npos) << unnamed;
}

TEST(LocalUserPolicyTest, AllowedUsersAndAnyAreServed) {
  LocalUserPolicy p = alice_only();
  p.others = {65534};
  EXPECT_EQ(local_user_refusal(p, user(65534), true, name_of), "");
  EXPECT_NE(local_user_refusal(p, user(0), true, name_of), "");
  LocalUserPolicy any = alice_only();
  any.any = true;
  EXPECT_EQ(local_user_refusal(any, user(0), true, name_of), "");
  EXPECT_EQ(local_user_refusal(any, {PeerOwner::Kind::unknown, 0, "x"}, true, name_of), "");
}

TEST(LocalUserPolicyTest, AnUnknownLoopbackClientIsRefusedWithTheWayOut) {
  const std::string why = local_user_refusal(
      alice_only(), {PeerOwner::Kind::unknown, 0, "netlink sock_diag: denied; /proc/net/tcp: gone"},
      true, name_of);
  EXPECT_NE(why.find("cannot tell which local user"), std::string::npos) << why;
  EXPECT_NE(why.find("netlink sock_diag: denied"), std::string::npos) << why;
  EXPECT_NE(why.find("--allow-local-user any"), std::string::npos) << why;
  // A loopback client is of this machine: not found is a failure to tell, not a remote client.
  EXPECT_NE(local_user_refusal(alice_only(), {PeerOwner::Kind::elsewhere, 0, {}}, true, name_of),
            "");
}

TEST(LocalUserPolicyTest, ARemoteClientIsLeftToAllowRemote) {
  EXPECT_EQ(local_user_refusal(alice_only(), {PeerOwner::Kind::elsewhere, 0, {}}, false, name_of),
            "");
  EXPECT_EQ(local_user_refusal(alice_only(), {PeerOwner::Kind::unknown, 0, "x"}, false, name_of),
            "");
  // A local user connecting to a non-loopback address of this machine is still a local user.
  EXPECT_NE(local_user_refusal(alice_only(), user(65534), false, name_of), "");
}

// Under the systemd unit's PrivateUsers=yes every other user shows as the overflow uid:
// allowing nobody there must not let them all in.
TEST(LocalUserPolicyTest, TheUidStandingForEveryUnmappedUserIsNeverServed) {
  LocalUserPolicy p = alice_only();
  p.others = {65534};
  p.unmapped = 65534;
  const std::string why = local_user_refusal(p, user(65534), true, name_of);
  EXPECT_NE(why.find("outside mailtap's user namespace"), std::string::npos) << why;
  EXPECT_NE(why.find("PrivateUsers=no"), std::string::npos) << why;
  EXPECT_EQ(local_user_refusal(p, user(1000), true, name_of), "");
}

TEST(LocalUserPolicyTest, StartUpLineNamesOthersAndWarnsOfAny) {
  EXPECT_EQ(describe_local_users(alice_only(), "relay", name_of), "");
  LocalUserPolicy p = alice_only();
  p.others = {65534};
  EXPECT_EQ(describe_local_users(p, "relay", name_of),
            "local users who may relay besides alice (uid 1000): nobody (uid 65534) "
            "(--allow-local-user)");
  p.any = true;
  EXPECT_NE(describe_local_users(p, "relay", name_of).find("WARNING: --allow-local-user any"),
            std::string::npos);
}

TEST(LocalUserPolicyTest, AClientGoneBeforeItWasToldIsRefusedWhateverItsUid) {
  // Root's own mailtap: an orphaned socket's uid 0 must not pass for root's.
  LocalUserPolicy root;
  root.own = 0;
  const PeerOwner gone{PeerOwner::Kind::gone, 0, {}};
  for (bool loopback : {true, false}) {
    const std::string why = local_user_refusal(root, gone, loopback, name_of);
    EXPECT_NE(why.find("closed"), std::string::npos) << why;
    EXPECT_NE(why.find("before mailtap could tell"), std::string::npos) << why;
    EXPECT_EQ(why.find("--allow-local-user"), std::string::npos) << why;
  }
  LocalUserPolicy any = root;
  any.any = true;
  EXPECT_EQ(local_user_refusal(any, gone, true, name_of), "");
}

TEST(UserNameCacheTest, EachUidIsLookedUpOnce) {
  int lookups = 0;
  UserNameCache names([&lookups](std::uint32_t uid) {
    ++lookups;
    return name_of(uid);
  });
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(names(65534), "nobody");
    EXPECT_EQ(names(4242), "");  // no name is remembered too
  }
  EXPECT_EQ(lookups, 2);
  for (std::uint32_t uid = 0; uid < 2 * UserNameCache::kMaxNames; ++uid) names(100000 + uid);
  EXPECT_LE(lookups, static_cast<int>(2 + 2 * UserNameCache::kMaxNames));  // bounded, working
}

}  // namespace
}  // namespace mailtap::net
