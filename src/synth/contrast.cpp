#include "synth/contrast.hpp"

#include <cmath>

namespace aneura::synth {

const char* modality_name(Modality m) {
  switch (m) {
    case Modality::CTA:
      return "CTA";
    case Modality::MRA:
      return "MRA";
    case Modality::T2:
      return "MRI T2";
    case Modality::T1post:
      return "MRI T1post";
  }
  return "?";
}

const char* dicom_modality(Modality m) { return m == Modality::CTA ? "CT" : "MR"; }

Modality draw_modality(std::mt19937_64& rng) {
  std::discrete_distribution<int> d({1804, 1252, 982, 310});
  return static_cast<Modality>(d(rng));
}

Appearance draw_appearance(Modality m, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Appearance a;
  a.modality = m;
  auto set = [&](double air, double scalp, double skull, double csf, double brain, double vessel) {
    a.mean = {air, scalp, skull, csf, brain, vessel, vessel};
  };
  switch (m) {
    case Modality::CTA:  // HU; contrast bolus varies
      set(-1000, 30, 900 + 600 * u(rng), 5, 30 + 10 * u(rng), 250 + 250 * u(rng));
      a.noise_sd = 4 + 12 * u(rng);
      break;
    case Modality::MRA:  // TOF: bright inflow, dark bone
      set(0, 180, 25, 50, 200, 650 + 300 * u(rng));
      a.noise_sd = 10 + 20 * u(rng);
      break;
    case Modality::T2:  // bright CSF, flow voids in arteries
      set(0, 300, 30, 900, 420, 50);
      a.noise_sd = 10 + 25 * u(rng);
      break;
    case Modality::T1post:  // enhancing vessels
      set(0, 380, 40, 120, 360, 560 + 200 * u(rng));
      a.noise_sd = 8 + 20 * u(rng);
      break;
  }
  if (m != Modality::CTA) {
    a.scale = 0.5 + 2.5 * u(rng);
    a.bias = 0.3 * u(rng);
    a.bias_dir = normalized(Vec3{u(rng) - 0.5, u(rng) - 0.5, u(rng) - 0.5});
  }
  return a;
}

double Appearance::value(Tissue t, const Vec3& world, double noise) const {
  double v = mean[static_cast<int>(t)] + noise_sd * noise;
  if (modality != Modality::CTA) {
    v *= scale * (1.0 + bias * std::sin(dot(world, bias_dir) / 60.0));
    v = std::fabs(v);  // magnitude images are never negative (Rician-like floor)
  }
  return v;
}

}  // namespace aneura::synth
