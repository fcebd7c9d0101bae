#pragma once
// The GPU test programs' sections (test_cuda_gpu.cu, test_cudnn_gpu.cu): nvcc only, beside device_checks.hpp.
#include <cstdio>
#include <exception>
#include <string>

#include <cuda_runtime_api.h>

#include "device_checks.hpp"

namespace diffuse_device_checks {

// Runs one section of checks: its name first (so a run cut short by a time limit shows how far it got), an
// exception from it recorded as a failure instead of ending the program, and after it the device's sticky
// error state, which no later section could survive.
template <class F>
bool section(log& record, const char* name, F&& f) {
    std::printf("== %s\n", name);
    try {
        f();
    } catch (const std::exception& e) {
        record.fail(std::string(name) + ": " + e.what());
    }
    if (const cudaError_t e = cudaDeviceSynchronize(); e != cudaSuccess) {
        record.fail(std::string(name) + ": the device is in error (" + cudaGetErrorString(e) + "): the remaining sections are skipped");
        return false;
    }
    return true;
}

}  // namespace diffuse_device_checks
