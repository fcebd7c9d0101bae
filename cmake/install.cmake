# Install rules: the headers, the targets diffuse::diffuse, diffuse::eigen, diffuse::xtensor, diffuse::mpi, diffuse::cuda (one export
# set each, so that a component's dependency is looked for only when that component is requested), and
# the package files diffuse-config.cmake / diffuse-config-version.cmake.
#
# Consumers:  find_package(diffuse 0.1 CONFIG REQUIRED COMPONENTS eigen xtensor)
#             target_link_libraries(app PRIVATE diffuse::diffuse diffuse::eigen diffuse::xtensor)
include(CMakePackageConfigHelpers)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/diffuse
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.hpp" PATTERN "*.cuh" PATTERN "*.h")

install(TARGETS diffuse EXPORT diffuse-targets)
install(EXPORT diffuse-targets NAMESPACE diffuse:: DESTINATION ${DIFFUSE_INSTALL_CMAKEDIR})

# Components built here; diffuse-config.cmake knows a component is installed by its targets file.
set(DIFFUSE_INSTALLED_COMPONENTS "")
foreach(component IN ITEMS eigen xtensor mpi torch cuda)
  if(TARGET diffuse_${component})
    install(TARGETS diffuse_${component} EXPORT diffuse-${component}-targets)
    install(EXPORT diffuse-${component}-targets NAMESPACE diffuse:: DESTINATION ${DIFFUSE_INSTALL_CMAKEDIR})
    list(APPEND DIFFUSE_INSTALLED_COMPONENTS ${component})
  endif()
endforeach()

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/diffuse-config.cmake.in
  ${PROJECT_BINARY_DIR}/diffuse-config.cmake
  INSTALL_DESTINATION ${DIFFUSE_INSTALL_CMAKEDIR})
# Header-only: the same package serves any architecture.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/diffuse-config-version.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMajorVersion
  ARCH_INDEPENDENT)
install(FILES ${PROJECT_BINARY_DIR}/diffuse-config.cmake ${PROJECT_BINARY_DIR}/diffuse-config-version.cmake
  DESTINATION ${DIFFUSE_INSTALL_CMAKEDIR})
if(EXISTS ${PROJECT_SOURCE_DIR}/LICENSE)
  install(FILES ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/diffuse)
endif()
