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
#include <ATen/ops/_sparse_coo_tensor_unsafe.h>

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

// One step of torch.optim.SparseAdam on one parameter (torch/optim/_functional.py, sparse_adam,
// PyTorch 2.11), op for op: the same ATen calls with the same Scalars, so the rounding is the
// same. `step_size` is `lr * math.sqrt(1 - beta2**step) / (1 - beta1**step)`, computed by the
// caller in double as Python does. One call instead of a dozen keeps the per-step cost of a
// small batch down (each ATen call from Rust is a separate FFI crossing and allocation).
char* regulab_sparse_adam_(const at::Tensor* param, const at::Tensor* grad_in,
                           const at::Tensor* exp_avg, const at::Tensor* exp_avg_sq, double beta1,
                           double beta2, double eps, double step_size) {
  return guarded([&] {
    // The update is non-linear, so duplicate indices are summed first.
    const at::Tensor grad = grad_in->coalesce();
    const at::Tensor grad_indices = grad._indices();
    const at::Tensor grad_values = grad._values();
    if (grad_values.numel() == 0) {
      return;
    }
    const auto make_sparse = [&](const at::Tensor& values) {
      return at::_sparse_coo_tensor_unsafe(grad_indices, values, grad.sizes(),
                                           grad.options());
    };
    // old <- b * old + (1 - b) * new  <==>  old += (1 - b) * (new - old)
    const at::Tensor old_exp_avg_values = exp_avg->sparse_mask(grad)._values();
    at::Tensor exp_avg_update_values = grad_values.sub(old_exp_avg_values).mul_(1 - beta1);
    exp_avg->add_(make_sparse(exp_avg_update_values));
    const at::Tensor old_exp_avg_sq_values = exp_avg_sq->sparse_mask(grad)._values();
    at::Tensor exp_avg_sq_update_values =
        grad_values.pow(2).sub_(old_exp_avg_sq_values).mul_(1 - beta2);
    exp_avg_sq->add_(make_sparse(exp_avg_sq_update_values));
    // Dense additions again, as torch.optim does, instead of another sparse_mask.
    at::Tensor numer = exp_avg_update_values.add_(old_exp_avg_values);
    exp_avg_sq_update_values.add_(old_exp_avg_sq_values);
    const at::Tensor denom = exp_avg_sq_update_values.sqrt_().add_(eps);
    // param.add_(make_sparse(-step_size * numer.div_(denom)))
    param->add_(make_sparse(numer.div_(denom).mul(-step_size)));
  });
}

}  // extern "C"
