// The database schema: identity checks, forward migrations and the meta table.
// docs/schema.md documents every table and column; keep it in step with kMigrations.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "storage/database.hpp"

namespace mailtap::storage {

// PRAGMA user_version after all migrations ran. Bump it with every entry added to the migration
// list in schema.cpp; never edit a migration that has shipped.
inline constexpr std::int64_t kSchemaVersion = 11;

// PRAGMA application_id: "MTAP". Tells our files from other SQLite databases (file(1) knows
// the field too), so a mistyped --db path never gets migrated into a mailtap database.
inline constexpr std::int64_t kApplicationId = 0x4d544150;

using FingerprintKey = std::array<std::uint8_t, 32>;

// For the writer: refuses files that are not mailtap databases or whose schema is newer than
// this build, switches the file to WAL, runs pending migrations and creates the meta entries
// (a fresh random fingerprint key on first use). Returns the database's fingerprint key.
Status prepare_for_writing(Database& db, std::string_view created_by, FingerprintKey& key);

// For read-only users: refuses files that are not mailtap databases or not at exactly
// kSchemaVersion (an older file is migrated by the next proxy run, a newer one needs a newer
// mailtap). Writes nothing.
Status check_for_reading(Database& db);

Status read_fingerprint_key(Database& db, FingerprintKey& key);

}  // namespace mailtap::storage
