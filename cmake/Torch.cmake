# Finds LibTorch (the torch wheel's, or an official zip through CMAKE_PREFIX_PATH) and CUDA, undoing what
# find_package(Torch) does to a project's CUDA settings:
#  - it replaces CMAKE_CUDA_ARCHITECTURES with OFF and appends -gencode flags for every architecture it knows;
#    we keep our own list (ABMLL_CUDA_ARCHITECTURES, Hopper = 90 by default);
#  - it links the CUDA toolkit's libnvrtc, while the wheel carries its own CUDA libraries (nvidia/*/lib): those
#    must come first at link and run time, or the linker resolves libtorch_cuda's NCCL and cuBLAS against the
#    toolkit's older copies.
# Sets ABMLL_HAVE_CUDA, ABMLL_TORCH_RPATH (directories for the binary's run path).

set(ABMLL_CUDA_ARCHITECTURES "90" CACHE STRING "CUDA architectures for cuda/ (Hopper = 90)")
option(ABMLL_WITH_CUDA "Build cuda/ when a CUDA toolkit is found" ON)

set(ABMLL_HAVE_CUDA OFF)
if(ABMLL_WITH_CUDA)
  include(CheckLanguage)
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    enable_language(CUDA)
    set(ABMLL_HAVE_CUDA ON)
  endif()
endif()

set(_abmll_cuda_flags "${CMAKE_CUDA_FLAGS}")
if(NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(ENV{TORCH_CUDA_ARCH_LIST} "9.0")
endif()
find_package(Torch REQUIRED)
set(CMAKE_CUDA_FLAGS "${_abmll_cuda_flags}")
set(CMAKE_CUDA_ARCHITECTURES ${ABMLL_CUDA_ARCHITECTURES})

# Torch built with CUDA needs its CUDA libraries at link time even when we do not build cuda/.
get_filename_component(_abmll_torch_libdir "${TORCH_LIBRARY}" DIRECTORY)
file(GLOB _abmll_wheel_nvidia LIST_DIRECTORIES true "${_abmll_torch_libdir}/../../nvidia/*/lib")
set(ABMLL_TORCH_RPATH ${_abmll_wheel_nvidia} ${_abmll_torch_libdir})
if(_abmll_wheel_nvidia)
  list(FILTER TORCH_LIBRARIES EXCLUDE REGEX "^/usr/local/cuda")
  string(REPLACE ";" ":" _abmll_rpath_link "${_abmll_wheel_nvidia}")
  set(ABMLL_TORCH_LINK_OPTIONS "LINKER:-rpath-link=${_abmll_rpath_link}")
endif()

# Some LibTorch builds (the 2.11 wheels, for one) export their own copy of std::filesystem from libtorch.so and
# libtorch_cpu.so. An executable that needs libtorch before libstdc++ binds its std::filesystem calls to that copy,
# which crashes (remove_all jumped to address 0 in abmll_tests). libstdc++ named first among the needed libraries
# makes every std:: symbol resolve to libstdc++ itself.
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang" AND CMAKE_SYSTEM_NAME STREQUAL "Linux")
  list(PREPEND ABMLL_TORCH_LINK_OPTIONS "LINKER:--push-state,--no-as-needed,-lstdc++,--pop-state")
endif()

# Does this LibTorch carry CUDA support? (The CPU-only zip does not; cuda/ then still builds, but the tensors it
# would receive can never be on a GPU.)
if(TARGET torch_cuda OR TORCH_CUDA_LIBRARIES)
  set(ABMLL_TORCH_HAS_CUDA ON)
else()
  set(ABMLL_TORCH_HAS_CUDA OFF)
endif()

# The profiler's event tree (src/util/memory_at_peak.cpp) needs Kineto's headers, which the wheel ships apart,
# under include/kineto.
set(ABMLL_KINETO_INCLUDE_DIR "")
foreach(_abmll_dir IN LISTS TORCH_INCLUDE_DIRS)
  if(EXISTS "${_abmll_dir}/kineto/ActivityType.h")
    set(ABMLL_KINETO_INCLUDE_DIR "${_abmll_dir}/kineto")
  endif()
endforeach()
if(NOT ABMLL_KINETO_INCLUDE_DIR)
  message(FATAL_ERROR "abmll: LibTorch at ${_abmll_torch_libdir} comes without Kineto's headers (include/kineto)")
endif()

message(STATUS "abmll: LibTorch ${Torch_VERSION} at ${_abmll_torch_libdir} (CUDA in LibTorch: ${ABMLL_TORCH_HAS_CUDA})")
message(STATUS "abmll: cuda/ kernels: ${ABMLL_HAVE_CUDA} (architectures ${CMAKE_CUDA_ARCHITECTURES})")
