#include "infer/predictor.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

#include "core/error.hpp"
#include "core/uid.hpp"
#include "harmonize/pipeline.hpp"
#include "io/dicom_series.hpp"
#include "model/registry.hpp"
#include "train/data.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace aneura {

namespace {
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
}  // namespace

Predictor::Predictor(const fs::path& model_dir, const PredictOptions& o) : o_(o) {
  info_ = read_model_info(model_dir);
  if (o.device == "cuda") {
    if (!torch::cuda::is_available()) throw Error(ErrorCode::Usage, "--device cuda, but this LibTorch has no CUDA device");
    dev_ = torch::Device(torch::kCUDA);
  }
  std::vector<int> wanted = o.folds;
  if (wanted.empty())
    for (int f = 0; f < info_.folds; ++f) wanted.push_back(f);
  for (int f : wanted) {
    const fs::path dir = model_dir / ("fold_" + std::to_string(f));
    fs::path ck = dir / o.checkpoint;
    std::error_code ec;
    if (!fs::exists(ck, ec)) ck = dir / "last.pt";
    if (!fs::exists(ck, ec)) {
      if (!o.folds.empty()) throw Error(ErrorCode::InputNotFound, "no checkpoint for fold " + std::to_string(f), dir.string());
      continue;  // folds not trained (yet) are skipped when none were asked for
    }
    MultiTaskUNet net = build_model(info_.cfg, info_.in_channels);
    load_weights(ck, net);
    net->to(dev_);
    net->eval();
    nets_.push_back(net);
    folds_.push_back(f);
  }
  if (nets_.empty()) throw Error(ErrorCode::InputNotFound, "no trained fold (fold_<k>/best.pt or last.pt)", model_dir.string());
}

SeriesPrediction Predictor::predict_image(const Volume<float>& image) {
  torch::NoGradGuard ng;
  SeriesPrediction r;
  const auto t0 = Clock::now();
  const Vec3 centre = find_roi_centre(image, info_.roi_offsets);
  const RoiInput in = roi_input(image, centre, info_.cfg);
  const Geometry& grid = in.grid;
  torch::Tensor prob, heat, modality, vessel;  // summed over models x flips
  int n = 0;
  for (auto& net : nets_) {
    for (int flip = 0; flip < (o_.flip_tta ? 2 : 1); ++flip) {
      const RoiOutput out = roi_forward(net, in.x, info_.cfg, flip == 1, o_.keep_maps);
      prob = prob.defined() ? prob + out.head_labels : out.head_labels;
      heat = heat.defined() ? heat + out.aneurysm : out.aneurysm;
      if (o_.keep_maps) vessel = vessel.defined() ? vessel + out.vessel : out.vessel;
      modality = modality.defined() ? modality + out.modality : out.modality;
      ++n;
    }
  }
  heat = (heat / n).to(torch::kCPU).contiguous();
  const auto field_mm = field_distance_mm(image.geom, grid);  // negative outside the image
  damp_field_edge(heat, field_edge_weights(field_mm, o_.field_edge_mm >= 0 ? o_.field_edge_mm : info_.cfg.field_edge_mm));
  // Series probabilities: from the maps averaged over models and flips (default), or the label head's.
  prob = o_.probabilities == "head" ? (prob / n).to(torch::kCPU, torch::kDouble).contiguous() : heatmap_probabilities(heat);
  for (int c = 0; c < kNumLabels; ++c) r.probability[c] = prob[c].item<double>();
  r.predicted_modality = modality_names()[modality.argmax().item<int64_t>()];
  // Location prior (src/train/location_prior.hpp): which artery an aneurysm found at a voxel sits
  // on, from where the voxel lies relative to the ROI centre. Location column c's probability is
  // the mean of the maps' own (the largest p(c)) and the largest (1 - p(background)) x p(c | offset)
  // over the voxels within a tenth of the series' largest 1 - p(background) (at most the 4096
  // largest, so the cost stays bounded with thousands of training points); a point's location
  // distribution is the mean of the map's and the prior's.
  const bool use_prior = o_.probabilities != "head" && o_.location_sigma_mm > 0 && !info_.locations.empty();
  auto offset_of = [&](int64_t a, int64_t b, int64_t c) { return grid.index_to_world({double(a), double(b), double(c)}) - centre; };
  if (use_prior) {
    const auto any_flat = (1 - heat[0]).flatten();
    const auto top = any_flat.topk(std::min<int64_t>(4096, any_flat.numel()));
    const auto values = std::get<0>(top).contiguous(), where = std::get<1>(top).contiguous();
    const float floor = 0.1f * values[0].item<float>();
    const int64_t ny = heat.size(2), nz = heat.size(3);
    std::array<double, kNumLabels - 1> best{};
    for (int64_t i = 0; i < values.numel(); ++i) {
      const float v = values.data_ptr<float>()[i];
      if (v < floor) break;  // sorted, largest first
      const int64_t flat = where.data_ptr<int64_t>()[i];
      const auto post = info_.locations.posterior(offset_of(flat / (ny * nz), (flat / nz) % ny, flat % nz), o_.location_sigma_mm);
      for (int k = 0; k < kNumLabels - 1; ++k) best[k] = std::max(best[k], v * post[k]);
    }
    for (int k = 0; k < kNumLabels - 1; ++k) r.probability[k] = 0.5 * r.probability[k] + 0.5 * best[k];
  }
  // Points: greedy maxima of 1 - p(background), at least point_separation_mm apart, inside the
  // image (the ROI may reach beyond the field of view, where nothing was imaged).
  auto any = (1 - heat[0]).masked_fill(field_mm < 0, -1).contiguous();
  auto acc = any.accessor<float, 3>();
  const auto hacc = heat.accessor<float, 4>();
  const int64_t nx = any.size(0), ny = any.size(1), nz = any.size(2);
  for (int k = 0; k < o_.max_points; ++k) {
    int64_t ix = 0, iy = 0, iz = 0;
    float pmax = -1;
    for (int64_t a = 0; a < nx; ++a)
      for (int64_t b = 0; b < ny; ++b)
        for (int64_t c = 0; c < nz; ++c)
          if (acc[a][b][c] > pmax) pmax = acc[a][b][c], ix = a, iy = b, iz = c;
    if (pmax < 0 || (k > 0 && pmax < o_.min_point_probability)) break;
    PredictedPoint pt;
    pt.world_lps = grid.index_to_world({double(ix), double(iy), double(iz)});
    pt.probability = pmax;
    double total = 0;
    for (int c = 1; c < kNumLabels; ++c) total += hacc[c][ix][iy][iz];
    total = std::max(total, 1e-12);
    const auto post = use_prior ? info_.locations.posterior(offset_of(ix, iy, iz), o_.location_sigma_mm)
                                : std::array<double, kNumLabels - 1>{};
    for (int c = 0; c < kNumLabels - 1; ++c) {
      pt.location[c] = hacc[c + 1][ix][iy][iz] / total;
      if (use_prior) pt.location[c] = 0.5 * pt.location[c] + 0.5 * post[c];
      if (pt.location[c] > pt.location[pt.column]) pt.column = c;
    }
    r.points.push_back(pt);
    const double rad = o_.point_separation_mm;  // suppress the neighbourhood
    for (int64_t a = 0; a < nx; ++a)
      for (int64_t b = 0; b < ny; ++b)
        for (int64_t c = 0; c < nz; ++c) {
          const double dx = (a - ix) * grid.spacing[0], dy = (b - iy) * grid.spacing[1], dz = (c - iz) * grid.spacing[2];
          if (dx * dx + dy * dy + dz * dz <= rad * rad) acc[a][b][c] = std::min(acc[a][b][c], 0.f);
        }
  }
  if (o_.keep_maps) {
    r.roi = Volume<float>(grid, 1);
    r.heatmap = Volume<float>(grid, 1);
    // tensor [X, Y, Z] -> volume i-fastest: permute to [Z, Y, X]
    const auto img = in.x[0].permute({2, 1, 0}).contiguous();
    const auto hm = (1 - heat[0]).permute({2, 1, 0}).contiguous();  // before suppression
    std::copy(img.data_ptr<float>(), img.data_ptr<float>() + img.numel(), r.roi.data.begin());
    std::copy(hm.data_ptr<float>(), hm.data_ptr<float>() + hm.numel(), r.heatmap.data.begin());
    r.vessels = Volume<float>(grid, 1);
    const auto vm = vessel.argmax(0).to(torch::kFloat).permute({2, 1, 0}).contiguous();
    std::copy(vm.data_ptr<float>(), vm.data_ptr<float>() + vm.numel(), r.vessels.data.begin());
  }
  r.network_s = since(t0);
  return r;
}

SeriesPrediction Predictor::predict_series(const fs::path& series_dir) {
  SeriesPrediction r;
  const std::string folder_name = series_dir.filename().empty() ? series_dir.parent_path().filename().string()
                                                                 : series_dir.filename().string();
  r.series_uid = folder_name;
  try {
    auto t = Clock::now();
    SeriesOptions so;
    const SeriesPlan plan = plan_series(series_dir, so);
    if (!plan.series_uid.empty()) r.series_uid = plan.series_uid;
    r.modality = plan.modality;
    const bool i16 = volume_fits_int16(plan);
    Volume<int16_t> v16;
    Volume<float> vf;
    if (i16) v16 = load_volume<int16_t>(plan);
    else vf = load_volume<float>(plan);
    r.read_s = since(t);
    t = Clock::now();
    const Harmonized h = i16 ? harmonize(v16, plan.modality, info_.harmonize) : harmonize(vf, plan.modality, info_.harmonize);
    r.harmonize_s = since(t);
    if (input_channels(info_.cfg, static_cast<int>(h.image.volumes)) != info_.in_channels)
      throw Error(ErrorCode::Unsupported, "harmonized to " + std::to_string(h.image.volumes) + " channel(s), which make " +
                  std::to_string(input_channels(info_.cfg, static_cast<int>(h.image.volumes))) + " input channels; the model takes " +
                  std::to_string(info_.in_channels) + " (a " + plan.modality + " series on a model trained on other modalities?)");
    SeriesPrediction n = predict_image(h.image);
    n.series_uid = r.series_uid;
    n.modality = r.modality;
    n.read_s = r.read_s;
    n.harmonize_s = r.harmonize_s;
    // (roi and heatmap stay with n)
    for (auto& p : n.points) {
      try {
        const LocalizerPoint lp = world_to_localizer(plan, p.world_lps);
        p.sop_uid = lp.sop_uid;
        p.frame = lp.frame;
        p.x = lp.x;
        p.y = lp.y;
      } catch (const Error&) {
      }
    }
    return n;
  } catch (const std::exception& e) {
    r.fallback = true;
    r.error = e.what();
    if (const auto* ae = dynamic_cast<const Error*>(&e); ae && !ae->where().empty()) r.error += " (" + ae->where() + ")";
    r.probability = info_.prior;
    return r;
  }
}

}  // namespace aneura
