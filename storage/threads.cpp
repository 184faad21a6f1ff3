#include "storage/threads.hpp"

#include <pthread.h>

namespace mailtap::storage {

void name_thread(std::thread& thread, const char* name) {
  pthread_setname_np(thread.native_handle(), name);
}

}  // namespace mailtap::storage
