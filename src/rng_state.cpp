// The state of torch's default CPU generator, which tch does not expose: what Python's
// torch.get_rng_state() / torch.set_rng_state() read and write. A checkpoint saves it so
// that a resumed run draws the same batch orders as an uninterrupted one.
//
// Same conventions as optim_ops.cpp: tch tensor handles in and out, errors through
// ffi_guard.h.

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/Tensor.h>

#include <mutex>

#include "ffi_guard.h"

using regulab_ffi::guarded;

extern "C" {

// *out = torch.get_rng_state()
char* regulab_get_cpu_rng_state(at::Tensor** out) {
  return guarded([&] {
    auto generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    *out = new at::Tensor(generator.get_state());
  });
}

// torch.set_rng_state(state)
char* regulab_set_cpu_rng_state(const at::Tensor* state) {
  return guarded([&] {
    auto generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(*state);
  });
}

}  // extern "C"
