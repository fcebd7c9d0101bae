// space_buffer in device memory without diffuse/cuda/memory.hpp: one sentence naming that header.
#include "diffuse/core/space_buffer.hpp"

int main() {
#ifdef DIFFUSE_COMPILE_FAIL_CONTROL
    diffuse::space_buffer<float, diffuse::memory_space::host> buffer(4);
#else
    diffuse::space_buffer<float, diffuse::memory_space::device> buffer(4);
#endif
    return static_cast<int>(buffer.size());
}
