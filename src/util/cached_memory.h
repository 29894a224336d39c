// Giving memory that allocators keep for reuse back to the system, for a step retried after running out of memory:
// its first try's blocks sit free in LibTorch's caching allocator (GPU) or in the C library's heap (CPU), shaped
// for the policy that failed.
#pragma once

#include <string>

namespace abmll {

// Returns `device`'s ("cpu", "cuda", "cuda:N") unused cached blocks: on a GPU, the caching allocator's (as
// torch.cuda.empty_cache()); on the CPU, the free top and free pages of the C library's heap.
void release_cached_memory(const std::string& device);

}  // namespace abmll
