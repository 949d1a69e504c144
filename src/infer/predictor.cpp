#include "infer/predictor.hpp"

#include "core/error.hpp"
#include "core/timer.hpp"
#include "harmonize/pipeline.hpp"
#include "harmonize/roi.hpp"
#include "infer/sliding_window.hpp"
#include "io/dicom_series.hpp"
#include "model/checkpoint.hpp"
#include "model/registry.hpp"

namespace fs = std::filesystem;

namespace aneura {

namespace {

// Eval mode for the guard's scope; the mode before is restored (a network being trained).
class EvalMode {
 public:
  explicit EvalMode(MultiTaskUNet& net) : net_(net), was_training_(net->is_training()) { net_->eval(); }
  ~EvalMode() {
    if (was_training_) net_->train();
  }
  EvalMode(const EvalMode&) = delete;
  EvalMode& operator=(const EvalMode&) = delete;

 private:
  MultiTaskUNet& net_;
  bool was_training_;
};

constexpr const char* kNoSliceVesselStage = "a vessel stage needs a 3D model with a vessel head, not the 2.5D family";

torch::Tensor sum_with(const torch::Tensor& sum, const torch::Tensor& t) { return sum.defined() ? sum + t : t; }

// A tensor [X, Y, Z] on `grid` as a volume (i fastest: permuted to [Z, Y, X]).
Volume<float> to_volume(const torch::Tensor& t, const Geometry& grid) {
  Volume<float> v(grid, 1);
  const auto zyx = t.to(torch::kFloat).permute({2, 1, 0}).contiguous();
  std::copy(zyx.data_ptr<float>(), zyx.data_ptr<float>() + zyx.numel(), v.data.begin());
  return v;
}

}  // namespace

namespace {

// The networks' precision: the plans' mixed_precision unless the options say which.
void set_precision(Configuration& cfg, const std::string& precision) {
  if (precision == "fp32")
    cfg.mixed_precision = false;
  else if (precision == "bf16")
    cfg.mixed_precision = true;
  else if (!precision.empty())
    throw Error(ErrorCode::Usage, "unknown precision '" + precision + "' (fp32 or bf16)");
}

}  // namespace

Predictor::Predictor(const fs::path& model_dir, const PredictOptions& o) : o_(o), model_(model_dir.string()) {
  info_ = read_model_info(model_dir);
  set_precision(info_.cfg, o.precision);
  torch::Device dev(torch::kCPU);
  if (o.device == "cuda") {
    if (!torch::cuda::is_available())
      throw Error(ErrorCode::Usage, "--device cuda, but this LibTorch has no CUDA device");
    dev = torch::Device(torch::kCUDA);
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
      if (!o.folds.empty())
        throw Error(ErrorCode::InputNotFound, "no checkpoint for fold " + std::to_string(f), dir.string());
      continue;  // folds not trained (yet) are skipped when none were asked for
    }
    Network net = build_network(info_.cfg, info_.in_channels);
    load_weights(ck, net.module());
    net.module().to(dev);
    net.module().eval();
    if (net.unet) nets_.push_back(net.unet);
    if (net.slices) slice_nets_.push_back(net.slices);
    folds_.push_back(f);
  }
  if (folds_.empty())
    throw Error(ErrorCode::InputNotFound, "no trained fold (fold_<k>/best.pt or last.pt)", model_dir.string());
}

Predictor::Predictor(ModelInfo info, std::vector<MultiTaskUNet> nets, const PredictOptions& o)
    : info_(std::move(info)), o_(o), nets_(std::move(nets)) {
  if (nets_.empty()) throw Error(ErrorCode::Usage, "a predictor needs at least one network");
  set_precision(info_.cfg, o.precision);
  for (size_t i = 0; i < nets_.size(); ++i) folds_.push_back(static_cast<int>(i));
}

bool Predictor::uses_location_prior() const {
  return o_.probabilities != "head" && o_.location_sigma_mm > 0 && !info_.locations.empty();
}

double Predictor::field_edge_mm() const { return o_.field_edge_mm >= 0 ? o_.field_edge_mm : info_.cfg.field_edge_mm; }

Vec3 Predictor::roi_centre(const Volume<float>& image) const { return find_roi_centre(image, info_.roi_offsets); }

EnsembleOutput Predictor::ensemble_forward(const torch::Tensor& x, bool vessels, const torch::Tensor& where) {
  torch::NoGradGuard ng;
  EnsembleOutput e;
  vessels = vessels || o_.keep_maps;
  int n = 0;
  for (auto& net : nets_) {
    EvalMode eval(net);
    for (int flip = 0; flip < (o_.flip_tta ? 2 : 1); ++flip) {
      const RoiOutput out = roi_forward(net, x, info_.cfg, flip == 1, vessels, 4, where);
      e.head_labels = sum_with(e.head_labels, out.head_labels);
      e.aneurysm = sum_with(e.aneurysm, out.aneurysm);
      if (vessels) e.vessel = sum_with(e.vessel, out.vessel);
      e.modality = sum_with(e.modality, out.modality);
      e.windows_run = out.windows_run;
      e.windows_total = out.windows_total;
      ++n;
    }
  }
  e.aneurysm = (e.aneurysm / n).to(torch::kCPU).contiguous();
  if (vessels) e.vessel = e.vessel / n;
  e.head_labels = (e.head_labels / n).to(torch::kCPU, torch::kDouble).contiguous();
  e.modality = e.modality / n;
  return e;
}

std::array<double, kNumLabels> Predictor::series_probabilities(const EnsembleOutput& e, const Geometry& grid,
                                                               const Vec3& centre, const VesselGuide* guide) const {
  // From the maps averaged over models and flips (default), or the label head's.
  const auto prob = o_.probabilities == "head" ? e.head_labels : heatmap_probabilities(e.aneurysm);
  std::array<double, kNumLabels> p{};
  for (int c = 0; c < kNumLabels; ++c) p[c] = prob[c].item<double>();
  // A location column's probability: the mean of the maps' own and the location prior's evidence.
  if (uses_location_prior()) {
    const auto evidence = location_prior_evidence(e.aneurysm, grid, centre, info_.locations, o_.location_sigma_mm);
    for (int k = 0; k < kNumLocations; ++k) p[k] = 0.5 * p[k] + 0.5 * evidence[k];
  }
  // The territory under the detections (vessel stage)
  if (guide && guide->territories.defined() && guide->territory_weight > 0) {
    const double w = guide->territory_weight;
    const auto evidence = territory_evidence(e.aneurysm, guide->territories);
    for (int k = 0; k < kNumLocations; ++k) p[k] = (1 - w) * p[k] + w * evidence[k];
  }
  return p;
}

std::vector<PredictedPoint> Predictor::points(const EnsembleOutput& e, const torch::Tensor& field_mm,
                                              const Geometry& grid, const Vec3& centre,
                                              const VesselGuide* guide) const {
  auto pts = heatmap_points(e.aneurysm, field_mm, grid, o_.points);
  const bool territories = guide && guide->territories.defined() && guide->territory_weight > 0;
  if (!uses_location_prior() && !territories) return pts;
  for (auto& pt : pts) {
    if (uses_location_prior()) {  // a point's location distribution: the mean of the maps' and the prior's
      const auto post = info_.locations.posterior(pt.world_lps - centre, o_.location_sigma_mm);
      for (int c = 0; c < kNumLocations; ++c) pt.location[c] = 0.5 * pt.location[c] + 0.5 * post[c];
    }
    if (territories) {  // and the territory there, where one is near
      const Vec3 i = grid.world_to_index(pt.world_lps);
      const auto t =
          guide->territories.index({torch::indexing::Slice(), std::lround(i[0]), std::lround(i[1]), std::lround(i[2])});
      if (t.sum().item<double>() > 0.5)
        for (int c = 0; c < kNumLocations; ++c)
          pt.location[c] =
              (1 - guide->territory_weight) * pt.location[c] + guide->territory_weight * t[c].item<double>();
    }
    pt.column = 0;
    for (int c = 0; c < kNumLocations; ++c)
      if (pt.location[c] > pt.location[pt.column]) pt.column = c;
  }
  return pts;
}

VesselMap Predictor::vessel_map(const Volume<float>& image, const VesselStageOptions& o) {
  if (!slice_nets_.empty()) throw Error(ErrorCode::Usage, kNoSliceVesselStage, model_);
  const Vec3 centre = roi_centre(image);
  const RoiInput in = roi_input(image, centre, info_.cfg);
  const EnsembleOutput e = ensemble_forward(in.x, true);
  return make_vessel_map(e.vessel, in.grid, o);
}

void Predictor::use_vessel_stage(Predictor* vessels, const VesselStageOptions& o) {
  if (vessels && !slice_nets_.empty())
    throw Error(ErrorCode::Usage, "the 2.5D family classifies slices: it takes no vessel stage", model_);
  if (vessels && !vessels->slice_nets_.empty()) throw Error(ErrorCode::Usage, kNoSliceVesselStage, vessels->model_);
  // (the vessel model sees this model's harmonized image)
  if (vessels) check_same_harmonization(info_.harmonize, vessels->info_.harmonize, "vessel", vessels->model_);
  vessels_ = vessels;
  vessel_options_ = o;
}

void check_same_harmonization(const HarmonizeParams& mine, const HarmonizeParams& theirs, const std::string& stage,
                              const std::string& where) {
  auto a = harmonize_params_to_json(mine), b = harmonize_params_to_json(theirs);
  for (const char* k : {"spacing_mm", "interp"}) {
    a.erase(k);
    b.erase(k);
  }
  if (a != b)
    throw Error(ErrorCode::Usage,
                "the " + stage + " model's cases were harmonized otherwise than this model's (" + b.dump() +
                    " against " + a.dump() + "); a " + stage + " stage must share all but the spacing",
                where);
}

void check_coarse_model(const ModelInfo& coarse, const HarmonizeParams& mine, const std::string& where) {
  if (slice_model(coarse.cfg))
    throw Error(ErrorCode::Usage, "a candidate stage needs a 3D coarse model with a heatmap, not the 2.5D family",
                where);
  check_same_harmonization(mine, coarse.harmonize, "coarse", where);
}

void Predictor::use_candidate_stage(Predictor* coarse, int count) {
  if (coarse && finds_own_candidates())
    throw Error(
        ErrorCode::Usage,
        "configuration '" + info_.cfg.name + "' finds its own candidates (candidate_source dots): no coarse model",
        coarse->model_);
  if (!coarse && finds_own_candidates() && count > 0) o_.candidates = count;
  if (coarse) {
    if (info_.cfg.candidates <= 0 || !slice_nets_.empty())
      throw Error(ErrorCode::Usage,
                  "configuration '" + info_.cfg.name + "' is not a candidate stage (its plans have no candidates)",
                  model_);
    check_coarse_model(coarse->info_, info_.harmonize, coarse->model_);
    coarse->o_.candidates = count > 0 ? count : info_.cfg.candidates;
  }
  coarse_ = coarse;
}

bool Predictor::finds_own_candidates() const { return aneura::finds_own_candidates(info_.cfg); }

std::array<double, kNumLocations> candidate_location(const Candidate& c, bool with_prior) {
  double sum = 0;
  for (double h : c.head_locations) sum += std::max(0.0, h);
  std::array<double, kNumLocations> p{};
  for (int k = 0; k < kNumLocations; ++k) {
    const double share = sum > 0 ? std::max(0.0, c.head_locations[k]) / sum : 1.0 / kNumLocations;
    p[k] = with_prior ? 0.5 * share + 0.5 * c.prior_locations[k] : share;
  }
  return p;
}

std::array<double, kNumLocations> candidate_location_columns(const std::vector<Candidate>& candidates,
                                                             bool with_prior) {
  std::array<double, kNumLocations> columns{};
  for (const auto& c : candidates) {
    const auto where = candidate_location(c, with_prior);
    for (int k = 0; k < kNumLocations; ++k) columns[k] = std::max(columns[k], std::max(0.0, c.head) * where[k]);
  }
  return columns;
}

// A candidate stage's forward passes in batches of this many windows: the 32³ U-Net of cpu_dots
// runs ~40 ms per window in batches of 2-16 on 2 cores and ~65 ms in one batch of 32
// (bench_network, 2026-12-07); instance normalisation makes the outputs independent of the batch.
constexpr int64_t kJudgeBatch = 8;

void Predictor::judge_candidates(const Volume<float>& image, SeriesPrediction& r) {
  torch::NoGradGuard ng;
  const auto t0 = SteadyClock::now();
  if (r.candidates.empty() || nets_.empty()) return;
  const Configuration& cfg = info_.cfg;
  const Vec3 centre = roi_centre(image);
  const float outside = outside_value(image);
  std::vector<torch::Tensor> windows;
  for (const auto& c : r.candidates)
    windows.push_back(grid_input(image, window_grid(c.world_lps, cfg, kRasDirection, 1.0), centre, cfg, outside, 1));
  const auto x = torch::stack(windows);  // [K, C, X, Y, Z]
  const int64_t count = x.size(0);
  // Every network's softmax maps and label-head sigmoids for the windows `rows` of x, summed over
  // the networks, each window mirrored first if `flip` (and its outputs mirrored back).
  const auto judge = [&](const torch::Tensor& rows, bool flip) {
    torch::Tensor probs, head;
    for (auto& net : nets_) {
      EvalMode eval(net);
      const torch::Device dev = net->parameters().front().device();
      std::vector<torch::Tensor> p_parts, h_parts;
      for (int64_t b = 0; b < rows.size(0); b += kJudgeBatch) {
        const auto in = x.index_select(0, rows.narrow(0, b, std::min(kJudgeBatch, rows.size(0) - b)));
        NetworkOutput out;
        {
          Autocast ac(dev, cfg.mixed_precision);
          out = net->forward((flip ? mirror_input(in) : in).to(dev));
        }
        auto p = torch::softmax(out.aneurysm.to(torch::kFloat), 1).to(torch::kCPU);
        if (flip) p = p.index_select(1, aneurysm_value_twin_lut()).flip({2});  // column c mirrored is twin(c)
        auto h = torch::sigmoid(out.labels.to(torch::kCPU, torch::kFloat));
        if (flip) h = h.index_select(1, label_twin_lut());  // a mirrored window's column c is twin(c)
        p_parts.push_back(p);
        h_parts.push_back(h);
      }
      probs = sum_with(probs, torch::cat(p_parts));
      head = sum_with(head, torch::cat(h_parts));
    }
    return std::make_pair(probs, head);
  };
  // [K, 14, X, Y, Z] softmax and [K, 14] label head, summed over networks and flips, divided below
  auto [probs, head] = judge(torch::arange(count), false);
  auto views = torch::full({count}, static_cast<double>(nets_.size()), torch::kFloat);
  if (o_.flip_tta) {
    // The mirrored windows of the candidates judged strongest without them (o_.flip_candidates of
    // them; all when 0): a dot stage ranks by its label head's Present, a stage behind a coarse
    // model by the place both agree on, sqrt(coarse x its map's maximum).
    torch::Tensor strength = head.select(1, kPresentColumn);
    if (!finds_own_candidates()) {
      std::vector<float> coarse;
      for (const auto& c : r.candidates) coarse.push_back(static_cast<float>(std::max(0.0, c.coarse)));
      const auto fine = (1 - probs.select(1, 0) / static_cast<double>(nets_.size())).flatten(1).amax(1);
      strength = (torch::tensor(coarse) * fine.clamp_min(0)).sqrt();
    }
    const int64_t m = o_.flip_candidates > 0 ? std::min<int64_t>(o_.flip_candidates, count) : count;
    const auto rows = m < count ? std::get<0>(torch::sort(std::get<1>(strength.topk(m)))) : torch::arange(count);
    const auto [fp, fh] = judge(rows, true);
    probs.index_add_(0, rows, fp);
    head.index_add_(0, rows, fh);
    views.index_add_(0, rows, torch::full({rows.size(0)}, static_cast<double>(nets_.size()), torch::kFloat));
  }
  probs = probs / views.view({count, 1, 1, 1, 1});
  head = head / views.view({count, 1});
  const auto heat = 1 - probs.select(1, 0);  // [K, X, Y, Z]
  const auto whole = heat.flatten(1).amax(1);
  auto centre_part = probs;  // the windows' central half
  for (int a = 0; a < 3; ++a) {
    const int64_t size = probs.size(a + 2);
    centre_part = centre_part.narrow(a + 2, size / 4, size - 2 * (size / 4));
  }
  const auto centre_max = (1 - centre_part.select(1, 0)).flatten(1).amax(1);
  const auto columns = centre_part.narrow(1, 1, kNumLocations).flatten(2).amax(2);  // [K, 13]
  const Vec3 sp = window_spacing(cfg);
  const auto mm3 = heat.flatten(1).sum(1) * (sp[0] * sp[1] * sp[2]);
  double best = 0;  // the strongest candidate both stages agree on: max sqrt(coarse x fine)
  for (size_t k = 0; k < r.candidates.size(); ++k) {
    const auto i = static_cast<int64_t>(k);
    Candidate& c = r.candidates[k];
    c.fine = whole[i].item<double>();
    c.fine_centre = centre_max[i].item<double>();
    c.fine_mm3 = mm3[i].item<double>();
    c.head = head[i][kPresentColumn].item<double>();
    const auto prior = info_.locations.posterior(c.world_lps - centre, o_.location_sigma_mm);
    for (int k = 0; k < kNumLocations; ++k) {
      c.head_locations[k] = head[i][k].item<double>();
      c.fine_locations[k] = columns[i][k].item<double>();
      c.prior_locations[k] = prior[k];
    }
    best = std::max(best, std::sqrt(std::max(0.0, c.coarse) * c.fine));
  }
  if (finds_own_candidates()) {
    // Alone: Present is the strongest window judgement of the label head (its map's maximum calls
    // nearly every bright blob an aneurysm: docs/EXPERIMENTS.md 2026-12-07), the location columns
    // candidate_location_columns, the points the candidates judged strongest.
    const bool with_prior = o_.location_sigma_mm > 0 && !info_.locations.empty();
    double present = 0;
    for (const auto& c : r.candidates) present = std::max(present, c.head);
    r.probability[kPresentColumn] = present;
    const auto locations = candidate_location_columns(r.candidates, with_prior);
    for (int k = 0; k < kNumLocations; ++k) r.probability[k] = locations[k];
    std::vector<size_t> order(r.candidates.size());
    for (size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return r.candidates[a].head > r.candidates[b].head; });
    r.points.clear();
    for (size_t k : order) {
      if (static_cast<int>(r.points.size()) >= o_.points.max_points) break;
      PredictedPoint p;
      p.world_lps = r.candidates[k].world_lps;
      p.probability = r.candidates[k].head;
      const auto where = candidate_location(r.candidates[k], with_prior);
      p.column = 0;
      for (int c = 0; c < kNumLocations; ++c) {
        p.location[c] = where[c];
        if (where[c] > where[p.column]) p.column = c;
      }
      r.points.push_back(p);
    }
  } else {
    const double w = o_.candidate_weight;
    r.probability[kPresentColumn] = (1 - w) * r.probability[kPresentColumn] + w * best;
  }
  r.candidates_s = seconds_since(t0);
}

SeriesPrediction Predictor::predict_slices(const Volume<float>& image) {
  const auto t0 = SteadyClock::now();
  SeriesPrediction r;
  r.probability = image_slice_probabilities(slice_nets_, image, info_.cfg, o_.flip_tta, &r.windows_run);
  r.windows_total = r.windows_run;
  r.network_s = seconds_since(t0);
  return r;
}

SeriesPrediction Predictor::predict_image(const Volume<float>& image) {
  if (!slice_nets_.empty()) return predict_slices(image);
  if (coarse_) {  // the coarse model predicts, this one judges its candidates
    SeriesPrediction r = coarse_->predict_image(image);
    judge_candidates(image, r);
    return r;
  }
  if (finds_own_candidates()) {  // the image's own candidates (dot filter), judged alone
    const auto t0 = SteadyClock::now();
    SeriesPrediction r;
    const int count = o_.candidates > 0 ? o_.candidates : info_.cfg.candidates;
    for (const auto& d : dot_candidates(image, roi_centre(image), info_.cfg, count))
      r.candidates.push_back({d.world_lps, 0, -1});
    r.roi_s = seconds_since(t0);
    if (r.candidates.empty())
      r.warnings.push_back("the dot filter found no bright blob in the ROI: no candidate, every probability 0");
    judge_candidates(image, r);
    return r;
  }
  auto t0 = SteadyClock::now();
  VesselMap vmap;
  if (vessels_) vmap = vessels_->vessel_map(image, vessel_options_);
  const double vessels_s = seconds_since(t0);
  t0 = SteadyClock::now();
  const Vec3 centre = roi_centre(image);
  const RoiInput in = roi_input(image, centre, info_.cfg);
  VesselGuide guide;
  if (vessels_ && vmap.found) {
    guide.where = vessel_neighbourhood(vmap, in.grid, vessel_options_);
    guide.territories = territory_distribution(vmap, in.grid, vessel_options_);
    guide.territory_weight = vessel_options_.territory_weight;
    if (o_.keep_maps) guide.labels = vessel_labels_on(vmap, in.grid);
  }
  const double roi_s = seconds_since(t0);
  SeriesPrediction r = predict_roi(image, centre, in, vessels_ && vmap.found ? &guide : nullptr);
  r.roi_s = roi_s;
  r.vessels_s = vessels_s;
  r.vessel_stage = vessels_ != nullptr;
  r.vessels_found = vmap.found;
  r.vessel_ml = vmap.volume_ml;
  r.vessel_lo = vmap.lo;
  r.vessel_hi = vmap.hi;
  r.vessel_note = vmap.note;
  return r;
}

SeriesPrediction Predictor::predict_roi(const Volume<float>& image, const Vec3& centre, const RoiInput& in,
                                        const VesselGuide* guide) {
  const auto t0 = SteadyClock::now();
  SeriesPrediction r;
  EnsembleOutput e = ensemble_forward(in.x, false, guide ? guide->where : torch::Tensor());
  r.windows_run = e.windows_run;
  r.windows_total = e.windows_total;
  const auto field_mm = field_distance_mm(image.geom, in.grid);  // negative outside the image
  damp_field_edge(e.aneurysm, field_edge_weights(field_mm, field_edge_mm()));
  if (guide) damp_field_edge(e.aneurysm, guide->where.to(torch::kFloat));  // aneurysms sit on arteries
  if (o_.candidates > 0)  // before small components go: a small aneurysm is a small component
    for (const auto& v : channel_maxima(1 - e.aneurysm[0], o_.candidates)) {
      const Vec3 ijk{static_cast<double>(v[0]), static_cast<double>(v[1]), static_cast<double>(v[2])};
      r.candidates.push_back({in.grid.index_to_world(ijk), 1 - e.aneurysm[0][v[0]][v[1]][v[2]].item<double>(), -1});
    }
  const ComponentOptions& co = o_.components;
  r.dropped_components = drop_small_components(e.aneurysm, in.grid, co.threshold, co.min_aneurysm_mm3);
  r.probability = series_probabilities(e, in.grid, centre, guide);
  r.predicted_modality = modality_names()[e.modality.argmax().item<int64_t>()];
  r.points = points(e, field_mm, in.grid, centre, guide);
  if (co.centre_of_mass) points_to_centres(r.points, e.aneurysm, in.grid, co.threshold);
  if (o_.keep_maps) {
    r.roi = to_volume(in.x[0], in.grid);
    r.heatmap = to_volume(1 - e.aneurysm[0], in.grid);
    r.vessels = to_volume(guide ? guide->labels : e.vessel.argmax(0), in.grid);
  }
  r.network_s = seconds_since(t0);
  return r;
}

void Predictor::route_thick_slices(Predictor* thick, double max_slice_mm) {
  thick_ = thick;
  thick_mm_ = max_slice_mm;
}

SeriesPrediction Predictor::predict_series(const fs::path& series_dir) {
  const std::string folder_name =
      series_dir.filename().empty() ? series_dir.parent_path().filename().string() : series_dir.filename().string();
  SeriesPlan plan;
  double plan_s = 0;
  try {
    const auto t = SteadyClock::now();
    plan = plan_series(series_dir, SeriesOptions{});
    plan_s = seconds_since(t);
  } catch (const std::exception& e) {
    SeriesPrediction r;
    r.series_uid = folder_name;
    r.model = model_;
    return fallback(std::move(r), e);
  }
  if (plan.series_uid.empty()) plan.series_uid = folder_name;
  Predictor& by = thick_ && plan.geometry.spacing[2] > thick_mm_ + 1e-6 ? *thick_ : *this;
  SeriesPrediction r = by.predict_planned(plan);
  r.read_s += plan_s;
  return r;
}

SeriesPrediction Predictor::predict_planned(const SeriesPlan& plan) {
  SeriesPrediction r;
  r.series_uid = plan.series_uid;
  r.model = model_;
  r.modality = plan.modality;
  try {
    auto t = SteadyClock::now();
    const bool i16 = volume_fits_int16(plan);
    Volume<int16_t> v16;
    Volume<float> vf;
    if (i16)
      v16 = load_volume<int16_t>(plan);
    else
      vf = load_volume<float>(plan);
    r.read_s = seconds_since(t);
    t = SteadyClock::now();
    auto harmonized = [&](const HarmonizeParams& p) {
      // (no foreground statistics: the fingerprint's, not prediction's)
      return i16 ? harmonize(v16, plan.modality, p, nullptr, false) : harmonize(vf, plan.modality, p, nullptr, false);
    };
    const Harmonized h = harmonized(info_.harmonize);
    // a candidate stage's coarse model sees the series as it would alone: harmonized at its own spacing
    const bool coarse_own =
        coarse_ && harmonize_params_to_json(coarse_->info_.harmonize) != harmonize_params_to_json(info_.harmonize);
    Harmonized hc;
    if (coarse_own) hc = harmonized(coarse_->info_.harmonize);
    r.harmonize_s = seconds_since(t);
    const int channels = input_channels(info_.cfg, static_cast<int>(h.image.volumes));
    if (channels != info_.in_channels)
      throw Error(ErrorCode::Unsupported, "harmonized to " + std::to_string(h.image.volumes) +
                                              " channel(s), which make " + std::to_string(channels) +
                                              " input channels; the model takes " + std::to_string(info_.in_channels) +
                                              " (a " + plan.modality +
                                              " series on a model trained on other modalities?)");
    SeriesPrediction n;
    if (coarse_own) {
      n = coarse_->predict_image(hc.image);
      judge_candidates(h.image, n);
    } else {
      n = predict_image(h.image);
    }
    n.series_uid = r.series_uid;
    n.model = r.model;
    n.modality = r.modality;
    n.read_s = r.read_s;
    n.harmonize_s = r.harmonize_s;
    n.warnings.insert(n.warnings.begin(), h.warnings.begin(), h.warnings.end());
    for (auto& p : n.points) {  // on the DICOM instance nearest to the point
      try {
        const LocalizerPoint lp = world_to_localizer(plan, p.world_lps);
        p.sop_uid = lp.sop_uid;
        p.frame = lp.frame;
        p.x = lp.x;
        p.y = lp.y;
      } catch (const Error&) {}
    }
    return n;
  } catch (const std::exception& e) {
    return fallback(std::move(r), e);
  }
}

SeriesPrediction Predictor::fallback(SeriesPrediction r, const std::exception& e) const {
  r.fallback = true;
  r.error = e.what();
  if (const auto* ae = dynamic_cast<const Error*>(&e); ae && !ae->where().empty()) r.error += " (" + ae->where() + ")";
  r.probability = info_.prior;
  return r;
}

}  // namespace aneura
