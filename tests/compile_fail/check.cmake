# cmake -DCXX=<compiler> -DSTD_FLAG=-std=c++20 -DINCLUDES="dir1|dir2" -DSOURCE=<file.cpp>
#       -DEXPECTED=<regex> [-DERRORS=only|first] -P check.cmake
# Passes when SOURCE compiles with DIFFUSE_COMPILE_FAIL_CONTROL defined, and fails to compile without it
# with diffuse's sentence (EXPECTED, a regular expression) as the first "error:" line of the compiler's
# output; with ERRORS=only (the default) that error must also be the only one. ERRORS=first is for calls
# whose later code cannot be compiled without the argument the sentence rejects (the sentence still comes
# first, which is what a reader sees).
foreach(var IN ITEMS CXX STD_FLAG SOURCE EXPECTED)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT DEFINED ERRORS)
  set(ERRORS only)
endif()
if(NOT ERRORS STREQUAL "only" AND NOT ERRORS STREQUAL "first")
  message(FATAL_ERROR "check.cmake: -DERRORS must be 'only' or 'first', not '${ERRORS}'")
endif()

set(include_flags "")
string(REPLACE "|" ";" include_dirs "${INCLUDES}")
foreach(dir IN LISTS include_dirs)
  if(dir)
    list(APPEND include_flags "-I${dir}")
  endif()
endforeach()

execute_process(
  COMMAND ${CXX} ${STD_FLAG} -fsyntax-only -DDIFFUSE_COMPILE_FAIL_CONTROL ${include_flags} ${SOURCE}
  RESULT_VARIABLE control_rc OUTPUT_VARIABLE control_out ERROR_VARIABLE control_out)
if(NOT control_rc EQUAL 0)
  message(FATAL_ERROR "the control variant of ${SOURCE} must compile, but:\n${control_out}")
endif()

execute_process(
  COMMAND ${CXX} ${STD_FLAG} -fsyntax-only ${include_flags} ${SOURCE}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but it must not")
endif()
if(NOT out MATCHES "${EXPECTED}")
  message(FATAL_ERROR "${SOURCE} failed to compile without the expected sentence '${EXPECTED}':\n${out}")
endif()
string(REGEX MATCH "[^\n]*error:[^\n]*" first_error "${out}")
if(NOT first_error MATCHES "${EXPECTED}")
  message(FATAL_ERROR "${SOURCE}: the first error is not the expected sentence '${EXPECTED}' but\n"
                      "  ${first_error}\nin:\n${out}")
endif()
string(REGEX MATCHALL "error:" errors "${out}")
list(LENGTH errors error_count)
if(ERRORS STREQUAL "only" AND NOT error_count EQUAL 1)
  message(FATAL_ERROR "${SOURCE}: expected exactly one error, got ${error_count}:\n${out}")
endif()
message(STATUS "${SOURCE} fails to compile as expected: the first of ${error_count} error(s) matches '${EXPECTED}'")
