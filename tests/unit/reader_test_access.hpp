// What the unit tests reach inside a storage::Reader, and nothing else does: kept off the
// Reader's own API.
#pragma once

#include <functional>
#include <utility>

#include "storage/reader.hpp"
#include "storage/reader_impl.hpp"

namespace mailtap::storage {

struct ReaderTestAccess {
  // `fn` runs after each read statement of `reader` has run or failed to be prepared, as if
  // another process committed in between; an empty `fn` ends that.
  static void after_each_read(Reader& reader, std::function<void()> fn) {
    reader.impl_->after_read = std::move(fn);
  }
};

}  // namespace mailtap::storage
