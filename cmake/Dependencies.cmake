# Every dependency is a Debian package installed by scripts/setup.
find_package(Threads REQUIRED)
find_package(GDCM REQUIRED)   # Debian: needs libgdcm-tools for its exported targets
find_package(ITK 5 REQUIRED COMPONENTS ITKCommon ITKIOImageBase ITKIONIFTI ITKIOPNG ITKImageGrid ITKBiasCorrection ITKImageFeature ITKBinaryMathematicalMorphology ITKMathematicalMorphology)
include(${ITK_USE_FILE})
find_package(CLI11 REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(spdlog REQUIRED)
find_package(ZLIB REQUIRED)
if(ANEURA_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(ANEURA_BUILD_BENCH)
  find_package(benchmark QUIET)
endif()
# CPU LibTorch from Debian by default; point Torch_DIR at the official CUDA build on GPU machines.
find_package(Torch REQUIRED)

# GDCM's exported libraries we link (decoders for JPEG, JPEG-LS, JPEG 2000, RLE live in MSFF).
set(ANEURA_GDCM_LIBS gdcmMSFF gdcmDSED gdcmDICT gdcmCommon)

# c10d's Gloo process group for data-parallel training (src/train/distributed.cpp): Debian's
# LibTorch has it compiled in, its headers need libgloo-dev. Without them, training runs one process.
include(CheckIncludeFileCXX)
set(CMAKE_REQUIRED_INCLUDES ${TORCH_INCLUDE_DIRS})
check_include_file_cxx(gloo/algorithm.h ANEURA_HAVE_GLOO)
unset(CMAKE_REQUIRED_INCLUDES)
