// NCCL through LibTorch's ProcessGroupNCCL (libtorch_cuda.so), built when LibTorch carries CUDA and NCCL's header
// is found (the wheel's nvidia-nccl package, whose library libtorch_cuda.so loads): ABMLL_HAVE_NCCL. Otherwise
// asking for NCCL is an InputError that says so.
//
// Timeouts: NCCL collectives run on CUDA streams, and by default a hung peer is caught by torch's watchdog thread,
// which tears the process down. We ask for blocking waits (TORCH_NCCL_BLOCKING_WAIT=1, unless the user set it),
// so that Work::wait throws after the timeout on the host and the caller can name the missing rank, as with Gloo.
#include "dist/backends.h"

#include <fmt/format.h>

#include <cstdlib>

#include "util/error.h"

#ifdef ABMLL_HAVE_NCCL
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace abmll::dist {

#ifdef ABMLL_HAVE_NCCL

bool nccl_built() { return true; }

c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                    std::chrono::milliseconds timeout, int device_index) {
  if (device_index < 0 || device_index >= static_cast<int>(c10::cuda::device_count()))
    throw InputError(fmt::format("--dist-backend nccl: this rank's GPU is cuda:{}, but {} GPU(s) are visible "
                                 "(one process per GPU: LOCAL_RANK / SLURM_LOCALID selects it)",
                                 device_index, c10::cuda::device_count()));
  c10::cuda::set_device(static_cast<c10::DeviceIndex>(device_index));
  ::setenv("TORCH_NCCL_BLOCKING_WAIT", "1", /*overwrite=*/0);
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, options);
}

#else

bool nccl_built() { return false; }

c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>&, int, int,
                                                    std::chrono::milliseconds, int) {
  throw InputError("--dist-backend nccl: this build of abmll has no NCCL (LibTorch without CUDA, or NCCL's header "
                   "was not found at configure time); use --dist-backend gloo");
}

#endif

}  // namespace abmll::dist
