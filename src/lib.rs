//! regulab: regularization experiments (matrix factorization on MovieLens, an MLP on MNIST)
//! on PyTorch's C++ core through `tch`.
//!
//! Layout: `data` (one module per source), `model` (one per model), `regularization`
//! (every penalty form as data), `optim` (optimizer choice), `train` (the one training
//! loop), `report` (the versioned JSON document), `cli` (commands).

pub mod cli;
pub mod data;
pub mod device;
pub mod experiment;
pub mod info;
pub mod model;
pub mod optim;
pub mod plot;
pub mod regularization;
pub mod report;
pub mod sweep;
pub mod train;
