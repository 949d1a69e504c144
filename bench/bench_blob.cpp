// The blob feature channels (model/input: Frangi's blob measure at two scales, bright and dark) on
// a ROI-sized volume: blob_channels (one eigen analysis per voxel for both channels) against ITK's
// HessianToObjectnessMeasureImageFilter run per channel, in one run on the same volume.
//   aneura_bench_blob [--size X Y Z] [--repeats N]
// Prints wall and CPU seconds of each for 1 and 2 threads, their ratio and the largest difference.
#include <sys/resource.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>

#include "model/input.hpp"

using namespace aneura;
using Clock = std::chrono::steady_clock;

static double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

int main(int argc, char** argv) {
  int64_t size[3] = {128, 128, 112};  // the cpu_fine ROI at 1 mm
  int repeats = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--size" && i + 3 < argc)
      for (int k = 0; k < 3; ++k) size[k] = std::stoll(argv[++i]);
    else if (a == "--repeats" && i + 1 < argc)
      repeats = std::stoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: aneura_bench_blob [--size X Y Z] [--repeats N]\n");
      return 2;
    }
  }
  // z-scored noise with bright tubes and blobs, the scale of an angiography ROI
  torch::manual_seed(1);
  auto img = torch::randn({size[0], size[1], size[2]}) * 0.5;
  auto acc = img.accessor<float, 3>();
  for (int64_t x = 0; x < size[0]; ++x)
    for (int64_t y = 0; y < size[1]; ++y)
      for (int64_t z = 0; z < size[2]; ++z) {
        if (std::hypot(double(y % 32) - 16, double(z % 28) - 14) < 2) acc[x][y][z] += 4;
        if (std::hypot(double(x % 40) - 20, double(y % 32) - 12, double(z % 28) - 14) < 3) acc[x][y][z] += 4;
      }
  const Vec3 spacing{1, 1, 1};
  std::printf("blob channels of a %ldx%ldx%ld volume, best of %d\n", long(size[0]), long(size[1]), long(size[2]),
              repeats);
  for (const int threads : {1, 2}) {
    double wall[2] = {1e9, 1e9}, cpu[2] = {1e9, 1e9};
    torch::Tensor out[2];
    for (int r = 0; r < repeats; ++r)
      for (int m = 0; m < 2; ++m) {
        const auto t = Clock::now();
        const double c = cpu_seconds();
        out[m] = m == 0 ? blob_channels(img, spacing, threads) : blob_channels_itk(img, spacing, threads);
        wall[m] = std::min(wall[m], std::chrono::duration<double>(Clock::now() - t).count());
        cpu[m] = std::min(cpu[m], cpu_seconds() - c);
      }
    std::printf(
        "%d thread(s): blob_channels %.3f s (cpu %.3f)  ITK filters %.3f s (cpu %.3f)  ratio %.2f  max diff %.2e\n",
        threads, wall[0], cpu[0], wall[1], cpu[1], wall[0] / wall[1], (out[0] - out[1]).abs().max().item<double>());
  }
  return 0;
}
