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
#include <ATen/ops/empty.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <vector>

#include "ffi_guard.h"

namespace {

using regulab_ffi::guarded;

// The fused form of SparseAdam below: the same float32 arithmetic as the ATen op sequence in
// regulab_sparse_adam_, element by element, in one pass over the rows a gradient names. Each
// step of that sequence is one IEEE operation per element (sub, mul by a float scalar, add,
// square, div), so computing it in a plain loop gives the same bits, except the square root
// (see below); what has to be matched besides is coalesce()'s summation of duplicate rows,
// which adds them in the order of ATen's sort of the row indices. The file is compiled with -ffp-contract=off so that
// no multiply-add is fused. tests: optim::tests (fused against the op sequence) and
// tests/parity.rs (against torch.optim.SparseAdam).
bool fused_sparse_adam_applies(const at::Tensor& param, const at::Tensor& grad,
                               const at::Tensor& exp_avg, const at::Tensor& exp_avg_sq) {
  const auto dense_float = [](const at::Tensor& t) {
    return t.device().is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous();
  };
  if (!(grad.is_sparse() && grad.device().is_cpu() && grad.sparse_dim() == 1 &&
        grad._values().scalar_type() == at::kFloat && dense_float(param) &&
        dense_float(exp_avg) && dense_float(exp_avg_sq) && param.dim() >= 1 &&
        grad.sizes() == param.sizes() && exp_avg.sizes() == param.sizes() &&
        exp_avg_sq.sizes() == param.sizes())) {
    return false;
  }
  // Each value row must be one parameter row.
  const int64_t nnz = grad._indices().size(1);
  const int64_t row_width = param.size(0) == 0 ? 0 : param.numel() / param.size(0);
  return grad._values().numel() == nnz * row_width;
}

void fused_sparse_adam(const at::Tensor& param, const at::Tensor& grad,
                       const at::Tensor& exp_avg, const at::Tensor& exp_avg_sq, double beta1,
                       double beta2, double eps, double step_size) {
  const at::Tensor indices = grad._indices().contiguous();
  const at::Tensor values = grad._values().contiguous();
  const int64_t nnz = indices.size(1);
  if (nnz == 0 || values.numel() == 0) {
    return;
  }
  const int64_t width = values.numel() / nnz;
  const int64_t rows = param.size(0);
  const int64_t* index = indices.data_ptr<int64_t>();
  const float* value = values.data_ptr<float>();
  for (int64_t k = 0; k < nnz; ++k) {
    if (index[k] < 0 || index[k] >= rows) {
      throw std::out_of_range("sparse gradient names a row outside the parameter");
    }
  }
  // coalesce() adds duplicates in the order of ATen's (unstable) sort of the indices: the
  // same sort call gives the same order.
  const at::Tensor order_tensor = std::get<1>(indices.select(0, 0).sort(0, false));
  const int64_t* order = order_tensor.data_ptr<int64_t>();
  // Python floats enter the kernels as float32 scalars.
  const float one_minus_beta1 = static_cast<float>(1 - beta1);
  const float one_minus_beta2 = static_cast<float>(1 - beta2);
  const float eps_f = static_cast<float>(eps);
  const float minus_step_size = static_cast<float>(-step_size);
  float* p = param.data_ptr<float>();
  float* m = exp_avg.data_ptr<float>();
  float* v = exp_avg_sq.data_ptr<float>();
  // Pass 1: the coalesced gradient, one row per distinct index in ascending order (the
  // layout of coalesce()'s values), its duplicates added in sorted order.
  std::vector<int64_t> unique_rows;
  std::vector<float> g;
  g.reserve(nnz * width);
  for (int64_t k = 0; k < nnz;) {
    const int64_t row = index[order[k]];
    unique_rows.push_back(row);
    const int64_t at = static_cast<int64_t>(g.size());
    g.insert(g.end(), value + order[k] * width, value + (order[k] + 1) * width);
    for (++k; k < nnz && index[order[k]] == row; ++k) {
      const float* more = value + order[k] * width;
      for (int64_t j = 0; j < width; ++j) {
        g[at + j] = g[at + j] + more[j];
      }
    }
  }
  // Pass 2: the moments; numer and the new second moment kept for the division.
  const int64_t count = static_cast<int64_t>(g.size());
  std::vector<float> numer(count);
  at::Tensor second = at::empty({count}, param.options());
  float* second_data = second.data_ptr<float>();
  for (size_t r = 0; r < unique_rows.size(); ++r) {
    float* m_row = m + unique_rows[r] * width;
    float* v_row = v + unique_rows[r] * width;
    for (int64_t j = 0; j < width; ++j) {
      const int64_t e = static_cast<int64_t>(r) * width + j;
      const float old_m = m_row[j];
      const float update_m = (g[e] - old_m) * one_minus_beta1;
      m_row[j] = old_m + update_m;
      const float old_v = v_row[j];
      const float update_v = (g[e] * g[e] - old_v) * one_minus_beta2;
      v_row[j] = old_v + update_v;
      numer[e] = update_m + old_m;
      second_data[e] = update_v + old_v;
    }
  }
  // ATen's vectorized float sqrt is not always the correctly rounded one (AVX-512), and which
  // elements take the vector path depends on their position: the same op on a tensor of the
  // same length as torch.optim's gives the same bits.
  second.sqrt_();
  // Pass 3: the parameter rows.
  for (size_t r = 0; r < unique_rows.size(); ++r) {
    float* p_row = p + unique_rows[r] * width;
    for (int64_t j = 0; j < width; ++j) {
      const int64_t e = static_cast<int64_t>(r) * width + j;
      const float denom = second_data[e] + eps_f;
      p_row[j] = p_row[j] + (numer[e] / denom) * minus_step_size;
    }
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
// caller in double as Python does. With `allow_fused`, float32 CPU tensors take the fused loop
// above (the same bits, a fraction of the time); otherwise the ATen ops run one by one.
char* regulab_sparse_adam_(const at::Tensor* param, const at::Tensor* grad_in,
                           const at::Tensor* exp_avg, const at::Tensor* exp_avg_sq, double beta1,
                           double beta2, double eps, double step_size, int allow_fused) {
  return guarded([&] {
    if (allow_fused != 0 && fused_sparse_adam_applies(*param, *grad_in, *exp_avg, *exp_avg_sq)) {
      fused_sparse_adam(*param, *grad_in, *exp_avg, *exp_avg_sq, beta1, beta2, eps, step_size);
      return;
    }
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

// Whether regulab_sparse_adam_ would take the fused loop for these tensors (1) or not (0).
int regulab_sparse_adam_fuses(const at::Tensor* param, const at::Tensor* grad,
                              const at::Tensor* exp_avg, const at::Tensor* exp_avg_sq) {
  try {
    return fused_sparse_adam_applies(*param, *grad, *exp_avg, *exp_avg_sq) ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

}  // extern "C"
