// The few ATen calls that src/optim.rs needs and tch cannot make: tch's generated bindings
// drop every defaulted Scalar argument, so `add(other, alpha)`, `addcmul(t1, t2, value)` and
// `addcdiv(t1, t2, value)` are only reachable with alpha = value = 1. torch.optim's update
// rules pass those scalars, and the CPU kernels fuse them (fmadd), so composing the same
// arithmetic from separate tch ops would round differently. These wrappers call the very
// methods Python reaches, with the scalar as a double, as a Python float arrives.
//
// Tensors are tch's handles (a heap `at::Tensor*`, the same layout torch-sys uses). They are
// const here as in ATen itself: an in-place op writes the tensor's data, not the handle.
// Every function returns nullptr on success, or an error message from malloc that the
// caller frees.

#include <ATen/core/Tensor.h>

#include <cstdlib>
#include <cstring>
#include <exception>

namespace {

char* error_message(const char* text) {
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

}  // namespace

extern "C" {

// self.add_(other, alpha=alpha)
char* regulab_add_(const at::Tensor* self, const at::Tensor* other, double alpha) {
  return guarded([&] { self->add_(*other, alpha); });
}

// *out = self.add(other, alpha=alpha)
char* regulab_add(at::Tensor** out, const at::Tensor* self, const at::Tensor* other,
                  double alpha) {
  return guarded([&] { *out = new at::Tensor(self->add(*other, alpha)); });
}

// self.addcmul_(tensor1, tensor2, value=value)
char* regulab_addcmul_(const at::Tensor* self, const at::Tensor* tensor1, const at::Tensor* tensor2,
                       double value) {
  return guarded([&] { self->addcmul_(*tensor1, *tensor2, value); });
}

// *out = self.addcmul(tensor1, tensor2, value=value)
char* regulab_addcmul(at::Tensor** out, const at::Tensor* self, const at::Tensor* tensor1,
                      const at::Tensor* tensor2, double value) {
  return guarded([&] { *out = new at::Tensor(self->addcmul(*tensor1, *tensor2, value)); });
}

// self.addcdiv_(tensor1, tensor2, value=value)
char* regulab_addcdiv_(const at::Tensor* self, const at::Tensor* tensor1, const at::Tensor* tensor2,
                       double value) {
  return guarded([&] { self->addcdiv_(*tensor1, *tensor2, value); });
}

// `param.grad = None`: what torch.optim's zero_grad() does by default (set_to_none=True).
// tch's zero_grad() fills the old gradient with zeros instead, and the next backward then
// accumulates into it rather than handing over a fresh tensor.
char* regulab_clear_grad(const at::Tensor* self) {
  return guarded([&] { self->mutable_grad().reset(); });
}

}  // extern "C"
