#pragma once
// All tensor primitives: lincomb, transform, clamp, fill_normal and the per-sample reductions.

#include "diffuse/core/elementwise.hpp"
#include "diffuse/core/fill_normal.hpp"
#include "diffuse/core/parallel.hpp"
#include "diffuse/core/reduce.hpp"
