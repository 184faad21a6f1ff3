// The page's files (tools/web/assets/*), compiled into the binary by cmake/embed_assets.cmake:
// `mailtap web` works without network access and fetches nothing at run time.
#pragma once

#include <span>
#include <string_view>

namespace mailtap::tools::web {

struct Asset {
  std::string_view name;          // "app.js"
  std::string_view content_type;  // "text/javascript; charset=utf-8"
  std::string_view bytes;
};

std::span<const Asset> embedded_assets();
// nullptr if there is no such asset.
const Asset* find_asset(std::string_view name);

}  // namespace mailtap::tools::web
