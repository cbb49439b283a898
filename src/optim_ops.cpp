// The optimizer updates that src/optim/ hands to C++: torch.optim.Adam's and SparseAdam's
// updates fused into a few passes (bit-identical to torch's op sequences, which are here
// too), and the few ATen calls tch cannot make: tch's generated bindings
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

#include <ATen/Parallel.h>
#include <ATen/TensorIterator.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/_sparse_coo_tensor_unsafe.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/maximum.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <vector>

#include "ffi_guard.h"

namespace {

using regulab_ffi::guarded;

// The scalars of one torch.optim.Adam step, as Python floats (doubles).
struct AdamScalars {
  double beta1;
  double beta2;
  double eps;
  double step_size;
  double bias_correction2_sqrt;
};

// The fused form of SparseAdam below: the same float32 arithmetic as the ATen op sequence in
// regulab_sparse_adam_, element by element, in one pass over the rows a gradient names. Each
// step of that sequence is one IEEE operation per element (sub, mul by a float scalar, add,
// square, div), so computing it in a plain loop gives the same bits, except the square root
// (see below); what has to be matched besides is coalesce()'s summation of duplicate rows,
// which adds them in the order of ATen's sort of the row indices. The file is compiled with -ffp-contract=off so that
// no multiply-add is fused. tests: optim::ops::tests (fused against the op sequence) and
// tests/parity.rs (against torch.optim.SparseAdam).
// coalesce() adds duplicates in the order of ATen's (unstable) sort of the indices, so the
// same sort call must give the order here. A factor table and its bias vector are indexed by
// the same ids in one step, so the last order is kept and reused when the indices are equal
// element for element: the same input gives the same sort, and one sort is saved per table.
const int64_t* coalesce_order(const at::Tensor& rows) {
  thread_local std::vector<int64_t> last_rows;
  thread_local at::Tensor last_order;
  const int64_t n = rows.numel();
  const at::Tensor contiguous = rows.contiguous();
  const int64_t* data = contiguous.data_ptr<int64_t>();
  const bool same = last_order.defined() && static_cast<int64_t>(last_rows.size()) == n &&
                    std::memcmp(last_rows.data(), data, n * sizeof(int64_t)) == 0;
  if (!same) {
    last_order = std::get<1>(contiguous.sort(0, false)).contiguous();
    last_rows.assign(data, data + n);
  }
  return last_order.data_ptr<int64_t>();
}

// The rows an update touches are scattered over tables larger than the caches, and each
// first touch of a row waits on memory: asking for the rows a few ahead lets those loads
// overlap with the arithmetic on the current one.
constexpr size_t kPrefetchAhead = 8;

inline void prefetch_row(const float* row, int64_t width) {
  constexpr int64_t kFloatsPerLine = 64 / sizeof(float);
  for (int64_t j = 0; j < width; j += kFloatsPerLine) {
    __builtin_prefetch(row + j, 1);
  }
}

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
  const int64_t* order = coalesce_order(indices.select(0, 0));
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
  const size_t unique = unique_rows.size();
  for (size_t r = 0; r < unique; ++r) {
    if (r + kPrefetchAhead < unique) {
      const int64_t ahead = unique_rows[r + kPrefetchAhead] * width;
      prefetch_row(m + ahead, width);
      prefetch_row(v + ahead, width);
      prefetch_row(p + ahead, width);
    }
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
  for (size_t r = 0; r < unique; ++r) {
    float* p_row = p + unique_rows[r] * width;
    for (int64_t j = 0; j < width; ++j) {
      const int64_t e = static_cast<int64_t>(r) * width + j;
      const float denom = second_data[e] + eps_f;
      p_row[j] = p_row[j] + (numer[e] / denom) * minus_step_size;
    }
  }
}

// torch.optim.Adam's tensor update (the single-tensor form, the CPU default), after weight
// decay, op for op as torch/optim/adam.py writes it: the reference the fused loop below must
// equal bit for bit. `max_exp_avg_sq` is undefined unless amsgrad.
void adam_op_sequence(const at::Tensor& param, const at::Tensor& grad, const at::Tensor& exp_avg,
                      const at::Tensor& exp_avg_sq, const at::Tensor& max_exp_avg_sq,
                      const AdamScalars& s) {
  exp_avg.lerp_(grad, 1 - s.beta1);
  exp_avg_sq.mul_(s.beta2).addcmul_(grad, grad, 1 - s.beta2);
  at::Tensor second = exp_avg_sq;
  if (max_exp_avg_sq.defined()) {
    // torch.maximum(max_exp_avg_sqs[i], exp_avg_sq, out=max_exp_avg_sqs[i])
    at::Tensor max = max_exp_avg_sq;
    at::maximum_out(max, max, exp_avg_sq);
    second = max;
  }
  at::Tensor denom = second.sqrt().div(s.bias_correction2_sqrt);
  denom.add_(s.eps);
  param.addcdiv_(exp_avg, denom, -s.step_size);
}

// x86-64 machines get clones of the loops with hardware fma and AVX2, picked at load time;
// std::fma is exact in every clone, so the choice changes the speed only.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define REGULAB_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define REGULAB_VECTOR_CLONES
#endif

// exp_avg.lerp_(grad, 1 - beta1); exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2)
REGULAB_VECTOR_CLONES
void adam_moments(float* m, float* v, const float* g, int64_t n, const AdamScalars& s) {
  // Python floats enter the kernels as float32 scalars.
  const float weight = static_cast<float>(1 - s.beta1);
  const float beta2 = static_cast<float>(s.beta2);
  const float one_minus_beta2 = static_cast<float>(1 - s.beta2);
  // lerp's two forms: self + w * (end - self) for |w| < 0.5, else end - (1 - w) * (end - self).
  const bool small_weight = std::abs(weight) < 0.5f;
  const float coefficient = small_weight ? weight : weight - 1.0f;
  for (int64_t i = 0; i < n; ++i) {
    m[i] = std::fma(coefficient, g[i] - m[i], small_weight ? m[i] : g[i]);
    v[i] = std::fma(one_minus_beta2 * g[i], g[i], v[i] * beta2);
  }
}

// param.addcdiv_(exp_avg, (root / bias_correction2_sqrt).add_(eps), value=-step_size)
REGULAB_VECTOR_CLONES
void adam_params(float* p, const float* m, const float* root, int64_t n, const AdamScalars& s) {
  const float bias_correction2_sqrt = static_cast<float>(s.bias_correction2_sqrt);
  const float eps = static_cast<float>(s.eps);
  const float minus_step_size = static_cast<float>(-s.step_size);
  for (int64_t i = 0; i < n; ++i) {
    const float denom = root[i] / bias_correction2_sqrt + eps;
    p[i] = p[i] + (minus_step_size * m[i]) / denom;
  }
}

// The same update as adam_op_sequence in two passes over the elements instead of nine
// kernels. ATen's CPU kernels compute lerp with a fused multiply-add (Vectorized fmadd), and
// addcmul's `self + value * t1 * t2` is contracted into one as well; division and the scalar
// add round once each. Only the square root is left to ATen, on the whole tensor, because
// its vectorized form is not always correctly rounded. Whether this machine's ATen rounds that
// way is checked once by fused_adam_matches_aten() before the fused loop is ever used.
void fused_adam(const at::Tensor& param, const at::Tensor& grad, const at::Tensor& exp_avg,
                const at::Tensor& exp_avg_sq, const AdamScalars& s) {
  const int64_t n = param.numel();
  adam_moments(exp_avg.data_ptr<float>(), exp_avg_sq.data_ptr<float>(),
               grad.data_ptr<float>(), n, s);
  const at::Tensor root = exp_avg_sq.sqrt();
  adam_params(param.data_ptr<float>(), exp_avg.data_ptr<float>(), root.data_ptr<float>(), n, s);
}

bool adam_fuses(const at::Tensor& param, const at::Tensor& grad, const at::Tensor& exp_avg,
                const at::Tensor& exp_avg_sq, const at::Tensor& max_exp_avg_sq) {
  const auto dense_float = [&](const at::Tensor& t) {
    return t.device().is_cpu() && t.layout() == at::kStrided &&
           t.scalar_type() == at::kFloat && t.is_contiguous() && t.sizes() == param.sizes();
  };
  // The fused loops run on one thread: they replace kernels that ATen would run on one thread
  // too, and leave large tensors on several threads (the MLP's layers) to ATen's kernels.
  const bool one_thread = at::get_num_threads() == 1 || param.numel() < at::internal::GRAIN_SIZE;
  return one_thread && !max_exp_avg_sq.defined() && dense_float(param) && dense_float(grad) &&
         dense_float(exp_avg) && dense_float(exp_avg_sq);
}

// Runs both forms on the same made-up state (every length from 1 to 80, so every position
// within ATen's vector blocks and loop tails, then a long one) and compares the bits. The
// values come from a fixed integer sequence, not from torch's generator, whose state decides
// the training batches.
bool fused_adam_matches_aten() {
  uint64_t state = 0x9e3779b97f4a7c15ULL;
  const auto next = [&state](float scale) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return scale * (static_cast<float>(state >> 40) / static_cast<float>(1 << 24) - 0.5f);
  };
  const AdamScalars steps[] = {{0.9, 0.999, 1e-8, 0.01 / 0.1, std::sqrt(1 - 0.999)},
                               {0.3, 0.99, 1e-6, 0.5, 0.7}};
  for (const AdamScalars& s : steps) {
    for (int64_t n = 1; n <= 81; ++n) {
      const int64_t len = n == 81 ? 4099 : n;
      std::vector<at::Tensor> fused(4), reference(4);
      for (size_t t = 0; t < 4; ++t) {
        fused[t] = at::empty({len}, at::kFloat);
        float* data = fused[t].data_ptr<float>();
        for (int64_t i = 0; i < len; ++i) {
          const float x = next(t == 3 ? 0.02f : 2.0f);
          data[i] = t == 3 ? std::abs(x) : x;  // the second moment is non-negative
        }
        reference[t] = fused[t].clone();
      }
      fused_adam(fused[0], fused[1], fused[2], fused[3], s);
      adam_op_sequence(reference[0], reference[1], reference[2], reference[3], at::Tensor(), s);
      for (size_t t = 0; t < 4; ++t) {
        if (std::memcmp(fused[t].data_ptr<float>(), reference[t].data_ptr<float>(),
                        len * sizeof(float)) != 0) {
          return false;
        }
      }
    }
  }
  return true;
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

// One torch.optim.Adam update of `param` after weight decay (torch/optim/adam.py,
// _single_tensor_adam, PyTorch 2.11); `max_exp_avg_sq` is null unless amsgrad. With
// `allow_fused`, float32 CPU tensors take the fused loops when this machine's ATen was found to
// round as they do (checked once per process); otherwise the ATen ops run one by one. Sets
// *fused to whether the fused loops ran.
char* regulab_adam_(const at::Tensor* param, const at::Tensor* grad, const at::Tensor* exp_avg,
                    const at::Tensor* exp_avg_sq, const at::Tensor* max_exp_avg_sq, double beta1,
                    double beta2, double eps, double step_size, double bias_correction2_sqrt,
                    int allow_fused, int* fused) {
  return guarded([&] {
    static const bool matches = fused_adam_matches_aten();
    const AdamScalars s{beta1, beta2, eps, step_size, bias_correction2_sqrt};
    const at::Tensor max = max_exp_avg_sq == nullptr ? at::Tensor() : *max_exp_avg_sq;
    *fused = allow_fused != 0 && matches && adam_fuses(*param, *grad, *exp_avg, *exp_avg_sq, max);
    if (*fused != 0) {
      fused_adam(*param, *grad, *exp_avg, *exp_avg_sq, s);
    } else {
      adam_op_sequence(*param, *grad, *exp_avg, *exp_avg_sq, max, s);
    }
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
