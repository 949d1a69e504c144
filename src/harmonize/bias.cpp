#include "harmonize/bias.hpp"

#include <itkImage.h>
#include <itkN4BiasFieldCorrectionImageFilter.h>

#include <algorithm>

#include "core/error.hpp"
#include "harmonize/resample.hpp"
#include "io/itk_image.hpp"

namespace aneura {

Volume<float> n4_correct(const Volume<float>& v, const Volume<uint8_t>& mask, const N4Options& o) {
  if (v.volumes != 1 || mask.geom.size != v.geom.size)
    throw Error(ErrorCode::Internal, "N4 expects one volume and its mask");
  float lo = std::numeric_limits<float>::max();
  for (size_t i = 0; i < v.data.size(); ++i)
    if (mask.data[i]) lo = std::min(lo, v.data[i]);
  if (lo == std::numeric_limits<float>::max()) return v;  // empty mask: nothing to estimate
  const float shift = lo <= 0 ? 1.0f - lo : 0.0f;
  Volume<float> pos(v.geom);
  for (size_t i = 0; i < v.data.size(); ++i) pos.data[i] = v.data[i] + shift;

  // Coarse grid for the estimate.
  const Vec3 coarse_spacing{v.geom.spacing[0] * o.shrink, v.geom.spacing[1] * o.shrink, v.geom.spacing[2] * o.shrink};
  const Geometry coarse = resampled_grid(v.geom, coarse_spacing);
  const Volume<float> small = resample_to(pos, coarse, Interp::Linear, 1.0f);
  Volume<float> mask_f(mask.geom);
  for (size_t i = 0; i < mask.data.size(); ++i) mask_f.data[i] = mask.data[i];
  const Volume<float> small_mask_f = resample_to(mask_f, coarse, Interp::Nearest, 0.0f);
  Volume<uint8_t> small_mask(coarse);
  for (size_t i = 0; i < small_mask.data.size(); ++i) small_mask.data[i] = small_mask_f.data[i] > 0.5f;

  using Image = itk::Image<float, 3>;
  using Mask = itk::Image<uint8_t, 3>;
  auto filter = itk::N4BiasFieldCorrectionImageFilter<Image, Mask, Image>::New();
  filter->SetInput(to_itk(small));
  filter->SetMaskImage(to_itk(small_mask));
  filter->SetNumberOfFittingLevels(static_cast<unsigned>(o.levels));
  typename decltype(filter)::ObjectType::VariableSizeArrayType iters(static_cast<unsigned>(o.levels));
  iters.Fill(static_cast<unsigned>(o.iterations));
  filter->SetMaximumNumberOfIterations(iters);
  filter->Update();
  const float* corrected = filter->GetOutput()->GetBufferPointer();

  // Multiplicative field on the coarse grid, then onto the full grid.
  Volume<float> field(coarse);
  for (size_t i = 0; i < field.data.size(); ++i) field.data[i] = corrected[i] > 0 ? small.data[i] / corrected[i] : 1.0f;
  const Volume<float> full = resample_to(field, v.geom, Interp::Linear, 1.0f);
  Volume<float> out(v.geom);
  for (size_t i = 0; i < out.data.size(); ++i) {
    const float f = full.data[i] > 1e-3f ? full.data[i] : 1.0f;
    out.data[i] = pos.data[i] / f - shift;
  }
  return out;
}

}  // namespace aneura
