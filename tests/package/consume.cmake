# Builds and runs one consumer project of tests/package/ in a fresh directory.
#   cmake -DMODE=find_package|subdirectory -DCONSUMER_DIR=<tests/package/MODE> -DWORK_DIR=<scratch>
#         -DDIFFUSE_SOURCE_DIR=<repo> -DDIFFUSE_BINARY_DIR=<configured build of diffuse>
#         -DCXX=<compiler> -DGENERATOR=<generator> [-DBUILD_TYPE=Release] [-DWITH_MPI=ON] [-DWITH_TORCH=ON]
#         -P consume.cmake
# find_package mode first installs DIFFUSE_BINARY_DIR into WORK_DIR/prefix (cmake --install) and lets
# the consumer find the package only there. WITH_MPI adds the MPI consumer, WITH_TORCH the libtorch one
# (tests/package/CMakeLists.txt asks for it in find_package mode only: one libtorch compile is enough).
foreach(var IN ITEMS MODE CONSUMER_DIR WORK_DIR DIFFUSE_SOURCE_DIR DIFFUSE_BINARY_DIR CXX GENERATOR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "consume.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT BUILD_TYPE)
  set(BUILD_TYPE Release)
endif()

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " command "${ARGN}")
    message(FATAL_ERROR "failed (${rc}): ${command}\n${out}")
  endif()
  message(STATUS "ok: ${ARGV0} ${ARGV1} ${ARGV2}")
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(configure_args -S ${CONSUMER_DIR} -B ${WORK_DIR}/build -G ${GENERATOR}
  -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=${BUILD_TYPE})

if(MODE STREQUAL "find_package")
  run(${CMAKE_COMMAND} --install ${DIFFUSE_BINARY_DIR} --prefix ${WORK_DIR}/prefix --config ${BUILD_TYPE})
  # Only the fresh prefix: no package registry, no other install of diffuse.
  list(APPEND configure_args -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DEXPECTED_PREFIX=${WORK_DIR}/prefix
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)
elseif(MODE STREQUAL "subdirectory")
  list(APPEND configure_args -DDIFFUSE_SOURCE_DIR=${DIFFUSE_SOURCE_DIR})
else()
  message(FATAL_ERROR "consume.cmake: MODE must be find_package or subdirectory, not '${MODE}'")
endif()

foreach(component IN ITEMS MPI TORCH)
  if(WITH_${component})
    list(APPEND configure_args -DWITH_${component}=ON)
  endif()
endforeach()
run(${CMAKE_COMMAND} ${configure_args})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build --config ${BUILD_TYPE})

# Runs the consumer program `name`, which must have been built and must exit 0.
function(run_consumer name)
  find_program(program_${name} ${name} PATHS ${WORK_DIR}/build ${WORK_DIR}/build/${BUILD_TYPE} NO_DEFAULT_PATH)
  if(NOT program_${name})
    message(FATAL_ERROR "the consumer program ${name} was not built")
  endif()
  execute_process(COMMAND ${program_${name}} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  message(STATUS "${out}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "the consumer program ${name} failed (${rc}): ${out}")
  endif()
endfunction()
run_consumer(consumer)
if(WITH_MPI)
  run_consumer(mpi_consumer)
endif()
if(WITH_TORCH)
  run_consumer(torch_consumer)
endif()
