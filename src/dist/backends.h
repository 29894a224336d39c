// Construction of LibTorch's c10d backends (the process groups it ships), one file per backend so that each
// backend's headers stay in its own translation unit: gloo_backend.cpp (CPU tensors, TCP) and nccl_backend.cpp
// (CUDA tensors). Internal to src/dist; callers use process_group.h.
#pragma once

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>

namespace abmll::dist {

// Gloo over TCP on the interfaces named by GLOO_SOCKET_IFNAME (comma-separated), or else the interface of this
// host's name (loopback when the name does not resolve to a usable address), as torch.distributed chooses.
c10::intrusive_ptr<c10d::Backend> make_gloo_backend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                    std::chrono::milliseconds timeout);

// NCCL on CUDA device `device_index` (made current). Throws InputError when this build has no NCCL.
c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                    std::chrono::milliseconds timeout, int device_index);
bool nccl_built();

}  // namespace abmll::dist
