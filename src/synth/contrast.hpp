// How each RSNA modality shows the synthetic tissues: mean value per tissue, noise, MR bias field
// and arbitrary MR scale. CTA is in HU; MR values are arbitrary scanner units.
#pragma once
#include <array>
#include <random>
#include <string>

#include "synth/anatomy.hpp"

namespace aneura::synth {

enum class Modality { CTA, MRA, T2, T1post };

const char* modality_name(Modality m);   // train.csv spelling: "CTA", "MRA", "MRI T2", "MRI T1post"
const char* dicom_modality(Modality m);  // "CT" or "MR"
// Drawn with the RSNA shares (CTA 41.5 %, MRA 28.8 %, T2 22.6 %, T1post 7.0 %).
Modality draw_modality(std::mt19937_64& rng);

struct Appearance {
  Modality modality = Modality::CTA;
  std::array<double, 7> mean{};  // per Tissue
  double noise_sd = 10;
  double scale = 1;  // MR global scale
  double bias = 0;   // MR bias field strength (0..0.3)
  Vec3 bias_dir{0, 0, 1};
  // Value at a world point for a tissue; `noise` is a standard normal draw.
  double value(Tissue t, const Vec3& world, double noise) const;
};

Appearance draw_appearance(Modality m, std::mt19937_64& rng);

}  // namespace aneura::synth
