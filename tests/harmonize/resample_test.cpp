#include "harmonize/resample.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "harmonize/orient.hpp"

namespace aneura {
namespace {

Geometry oblique(Vec3 spacing, std::array<int64_t, 3> size) {
  Geometry g;
  g.size = size;
  g.spacing = spacing;
  g.origin = {-20, 15, -30};
  const double c = std::cos(0.3), s = std::sin(0.3);
  g.direction = {{{c, 0, s}, {0, 1, 0}, {-s, 0, c}}};
  return g;
}

double ramp(const Vec3& w) { return 3.0 * w[0] - 2.0 * w[1] + 0.5 * w[2] + 7.0; }

Volume<float> ramp_volume(const Geometry& g) {
  Volume<float> v(g);
  for (int64_t k = 0; k < g.size[2]; ++k)
    for (int64_t j = 0; j < g.size[1]; ++j)
      for (int64_t i = 0; i < g.size[0]; ++i)
        v.at(i, j, k) = static_cast<float>(ramp(g.index_to_world({double(i), double(j), double(k)})));
  return v;
}

// Interior voxels of `out` must hold the ramp at their own world position.
void expect_ramp_inside(const Volume<float>& out, int margin, double tol) {
  const auto& n = out.geom.size;
  size_t checked = 0;
  for (int64_t k = margin; k < n[2] - margin; ++k)
    for (int64_t j = margin; j < n[1] - margin; ++j)
      for (int64_t i = margin; i < n[0] - margin; ++i) {
        ASSERT_NEAR(out.at(i, j, k), ramp(out.geom.index_to_world({double(i), double(j), double(k)})), tol)
            << i << " " << j << " " << k;
        ++checked;
      }
  EXPECT_GT(checked, 100u);
}

TEST(Resample, GridKeepsOriginAndDirection) {
  const Geometry g = oblique({0.5, 0.5, 3.0}, {40, 30, 10});
  const Geometry r = resampled_grid(g, {1, 1, 1});
  EXPECT_EQ(r.size, (std::array<int64_t, 3>{20, 15, 30}));
  EXPECT_EQ(r.origin, g.origin);
  EXPECT_EQ(r.direction, g.direction);
}

TEST(Resample, LinearRampStaysARamp) {
  const Volume<float> v = ramp_volume(oblique({0.7, 0.9, 1.1}, {30, 25, 20}));
  ResampleOptions o;
  o.spacing = {1, 1, 1};
  expect_ramp_inside(resample(v, o), 1, 1e-3);
}

TEST(Resample, AnisotropicBSplineRampStaysARamp) {
  // 0.5 x 0.5 x 4 mm: in-plane B-spline, then linear along the thick axis.
  const Volume<float> v = ramp_volume(oblique({0.5, 0.5, 4.0}, {60, 50, 10}));
  ResampleOptions o;
  o.spacing = {1, 1, 1};
  o.interp = Interp::BSpline;
  expect_ramp_inside(resample(v, o), 4, 2e-2);
}

TEST(Resample, SphereKeepsItsWorldCentreThroughReorientAndResample) {
  const Geometry g = oblique({0.6, 0.8, 2.5}, {70, 60, 24});
  const Vec3 centre = g.index_to_world({33.3, 27.6, 11.2});
  Volume<float> v(g);
  for (int64_t k = 0; k < g.size[2]; ++k)
    for (int64_t j = 0; j < g.size[1]; ++j)
      for (int64_t i = 0; i < g.size[0]; ++i)
        v.at(i, j, k) = norm(g.index_to_world({double(i), double(j), double(k)}) - centre) < 9.0 ? 100.f : 0.f;
  ResampleOptions o;
  o.spacing = {1, 1, 1};
  const Volume<float> out = resample(reorient(v, "RAS"), o);
  Vec3 sum{0, 0, 0};
  double mass = 0;
  for (int64_t k = 0; k < out.geom.size[2]; ++k)
    for (int64_t j = 0; j < out.geom.size[1]; ++j)
      for (int64_t i = 0; i < out.geom.size[0]; ++i) {
        const double w = out.at(i, j, k);
        sum = sum + w * out.geom.index_to_world({double(i), double(j), double(k)});
        mass += w;
      }
  const Vec3 c = (1.0 / mass) * sum;
  EXPECT_LT(norm(c - centre), 0.5);  // half a 1 mm voxel
}

TEST(Resample, NearestKeepsTheLabelSet) {
  const Geometry g = oblique({0.4, 0.4, 1.5}, {50, 50, 20});
  Volume<float> labels(g);
  for (int64_t k = 0; k < g.size[2]; ++k)
    for (int64_t j = 0; j < g.size[1]; ++j)
      for (int64_t i = 0; i < g.size[0]; ++i) labels.at(i, j, k) = static_cast<float>((i / 5 + j / 7 + k) % 14);
  ResampleOptions o;
  o.spacing = {1.1, 0.9, 1.0};
  o.interp = Interp::Nearest;
  const Volume<float> out = resample(labels, o);
  std::set<float> in_set(labels.data.begin(), labels.data.end()), out_set(out.data.begin(), out.data.end());
  EXPECT_EQ(in_set, out_set);  // no new values, none lost
}

TEST(Resample, SeparableLinearEqualsItk) {
  // axis-aligned target: permuted and flipped axes, other spacing, shifted origin reaching outside
  Geometry g;
  g.size = {23, 17, 11};
  g.spacing = {0.7, 0.9, 2.3};
  g.origin = {-5, 8, 12};
  Volume<float> v(g);
  uint32_t x = 12345;
  for (float& f : v.data) f = static_cast<float>((x = x * 1664525u + 1013904223u) >> 20);
  // then: source slices read in reverse and skipped (downsampling along the slowest source axis,
  // which the plane-by-plane pass walks), and a target axis of one voxel
  Geometry t1, t2;
  t1.direction = {{{0, 0, -1}, {-1, 0, 0}, {0, 1, 0}}};  // i <- -y, j <- +z, k <- -x
  t1.spacing = {1.1, 0.6, 0.8};
  t1.size = {40, 30, 26};
  t1.origin = g.index_to_world({20.3, 15.1, -0.4});
  t2.direction = {{{1, 0, 0}, {0, 0, 1}, {0, -1, 0}}};  // i <- +x, j <- -z, k <- +y
  t2.spacing = {0.5, 5.1, 1.0};
  t2.size = {30, 6, 1};
  t2.origin = g.index_to_world({1.2, 7.3, 10.6});
  for (const Geometry& t : {t1, t2}) {
    const Volume<float> fast = resample_to(v, t, Interp::Linear, -7.f);
    const Volume<float> itk = resample_to(v, t, Interp::Linear, -7.f, true);
    size_t outside = 0;
    for (size_t i = 0; i < fast.data.size(); ++i) {
      ASSERT_NEAR(fast.data[i], itk.data[i], 1e-3 * (1 + std::fabs(itk.data[i]))) << i;
      outside += itk.data[i] == -7.f;
    }
    EXPECT_GT(outside, 0u);                // the target reaches outside the source
    EXPECT_LT(outside, fast.data.size());  // and inside
  }
}

TEST(Resample, OutsideGetsTheDefault) {
  const Volume<float> v = ramp_volume(oblique({1, 1, 1}, {10, 10, 10}));
  Geometry far = v.geom;
  far.origin = {500, 500, 500};
  const Volume<float> out = resample_to(v, far, Interp::Linear, -1024.f);
  for (float x : out.data) ASSERT_EQ(x, -1024.f);
}

}  // namespace
}  // namespace aneura
