#pragma once
// The start of each GPU program (test_cuda_gpu, test_cudnn_gpu, bench_cuda, bench_cudnn): nvcc only.
#include <cstdio>

#include <cuda_runtime_api.h>

namespace diffuse_device_checks {

// Makes stdout line-buffered (a run stopped by its time limit keeps what it printed) and says whether the
// machine has a CUDA device; when it has none, prints "<program>: no CUDA device: skipped" and the caller
// returns 77 (CTest's SKIP_RETURN_CODE for the GPU tests).
[[nodiscard]] inline bool start_gpu_program(const char* program) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    int devices = 0;
    if (cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0) return true;
    std::printf("%s: no CUDA device: skipped\n", program);
    return false;
}

}  // namespace diffuse_device_checks
