// How the storage threads show up in `top -H`, `ps -L` and perf.
#pragma once

#include <thread>

namespace mailtap::storage {

// Names `thread` (at most 15 characters). Best effort: only a label.
void name_thread(std::thread& thread, const char* name);

}  // namespace mailtap::storage
