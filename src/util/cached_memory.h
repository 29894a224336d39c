// Memory that allocators keep for reuse: the C library heap's policy for the CPU's tensors, and giving what is kept
// back to the system, for a step retried after running out of memory (its first try's blocks sit free in LibTorch's
// caching allocator (GPU) or in the C library's heap (CPU), shaped for the policy that failed).
#pragma once

#include <cstddef>
#include <string>

namespace abmll {

// Returns `device`'s ("cpu", "cuda", "cuda:N") unused cached blocks: on a GPU, the caching allocator's (as
// torch.cuda.empty_cache()); on the CPU, the free top and free pages of the C library's heap.
void release_cached_memory(const std::string& device);

// Keeps freed CPU tensors' memory in the process for the next ones of their size (glibc: blocks up to
// `mmap_threshold` bytes come from the heap, and its free top is returned to the system only beyond 1 GiB). Without
// it, blocks above glibc's default threshold (128 KiB, adapting up to 32 MiB) are mapped when allocated and unmapped
// when freed, so every forward and step takes its activations' pages back one zeroed page fault at a time.
void keep_freed_memory_for_reuse(std::size_t mmap_threshold);

// The commands' threshold: 32 MiB, above a ~100M model's activations (but its [batch x tokens x vocabulary] logits).
// Against 4 MiB (meta-train's before; glibc's default faulted as often), on the shared 2-core development machine, a
// ~125M Llama-shaped model's forward (4 x 256 tokens, float32) took 377,000 page faults instead of 743,000 and 1.94 s
// instead of 2.12 (medians of 4 alternating runs; fastest 1.42 against 1.53 s); ICL scoring on the ~100M model ran at
// 186 queries/s instead of 177; the ~100M model's meta-step kept its peak (1,093 MB against 1,103). 256 MiB took the
// faults to 109,000 and the forward to 1.72 s, but kept a failed try's memory in the heap's address space, which a
// retry after running out of it then lacked (RLIMIT_AS in tests/python/test_recompute_on_oom.py).
constexpr std::size_t kReusedBlockLimit = std::size_t{32} << 20;

}  // namespace abmll
