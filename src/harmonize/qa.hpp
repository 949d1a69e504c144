// QA pictures: axial, coronal and sagittal slices through the centre of a mask, side by side,
// with the mask's contour in red, so a person can check nothing near the skull base was cut.
// Display convention (radiological): patient right on the image left, anterior / superior up;
// sagittal slices show anterior on the left.
#pragma once
#include <filesystem>

#include "core/volume.hpp"
#include "io/png.hpp"

namespace aneura {

// `image`: first volume used, grey levels from its p1..p99 (inside the mask when non-empty).
// Any orientation is accepted (the slices are taken in RAS).
RgbImage triplanar(const Volume<float>& image, const Volume<uint8_t>& mask);

void write_triplanar_png(const Volume<float>& image, const Volume<uint8_t>& mask, const std::filesystem::path& path);

}  // namespace aneura
