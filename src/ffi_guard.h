// What every C++ shim of regulab's shares (optim_ops.cpp, rng_state.cpp): an ATen call run
// so that no C++ exception crosses into Rust. `guarded` returns nullptr on success or the
// exception's message from malloc, which the Rust side (src/ffi.rs) frees.
#pragma once

#include <cstdlib>
#include <cstring>
#include <exception>

namespace regulab_ffi {

inline char* error_message(const char* text) {
  // strdup allocates with malloc, so Rust can release it with libc::free.
  return strdup(text != nullptr ? text : "unknown libtorch error");
}

template <typename F>
char* guarded(F&& body) {
  try {
    body();
    return nullptr;
  } catch (const std::exception& e) {
    return error_message(e.what());
  } catch (...) {
    return error_message(nullptr);
  }
}

}  // namespace regulab_ffi
