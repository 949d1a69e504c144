// Prediction per series, in named steps (nnU-Net's nnUNetPredictor is the model):
//   predict_series   read the DICOM series -> harmonize as the training cases were -> predict_image
//                    -> each point placed on its DICOM instance; never throws (fallback row)
//   predict_image    roi_centre (the ROI finder + the model's offsets) -> roi_input -> predict_roi
//   predict_roi      ensemble_forward (every fold's network x left/right flip) -> the field of
//                    view's edge out of the maps -> series_probabilities -> points -> maps kept
// A Predictor reads a model folder (model.json + fold_<k>/<checkpoint>) or takes networks in
// memory, which is how training validates: the same code judges a run and predicts with it.
// A model of the 2.5D family (dualstream_2p5d, model/dualstream.hpp) has no ROI, maps or points:
// predict_image gives slice_probabilities over the harmonized image's axial slices.
#pragma once
#include <array>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "core/labels.hpp"
#include "core/volume.hpp"
#include "infer/components.hpp"
#include "infer/maps.hpp"
#include "infer/model_info.hpp"
#include "infer/vessels.hpp"
#include "model/dualstream.hpp"
#include "model/input.hpp"
#include "model/network.hpp"

namespace aneura {

struct SeriesPlan;

// A candidate stage's look at one place (world LPS): a maximum of the coarse model's heatmap, its
// value there, and the candidate stage's heatmap in its window around it (-1: not judged): the
// maximum over the window, the maximum over its central half (per axis) and the heat's sum in mm³.
struct Candidate {
  Vec3 world_lps{0, 0, 0};
  double coarse = 0, fine = -1, fine_centre = -1, fine_mm3 = -1;
  double head = -1;  // the label head's Present for the candidate's window (sigmoid; folds x flips mean)
  // Evidence of the candidate's location column: the label head's 13 location outputs (sigmoid), the
  // strongest probability of each class in the window's central half, and p(column | offset from the
  // ROI centre) of the model's location prior (uniform without one)
  std::array<double, kNumLocations> head_locations{}, fine_locations{}, prior_locations{};
};

// A candidate's location distribution (sums to 1): the share of each of the head's 13 location
// outputs, averaged with the location prior's p(column | offset) when `with_prior`.
std::array<double, kNumLocations> candidate_location(const Candidate& c, bool with_prior);

// A stage that finds its own candidates reads the series' 13 location columns from them: per column,
// the largest head Present x candidate_location over the candidates, so a column is as likely as
// the strongest window that both looks like an aneurysm and lies on that artery. The head's location
// outputs rank the held-out columns far better than the classes of its map (docs/EXPERIMENTS.md
// 2026-12-07, bench/location_sweep.py). Zero without candidates.
std::array<double, kNumLocations> candidate_location_columns(const std::vector<Candidate>& candidates, bool with_prior);

struct SeriesPrediction {
  std::string series_uid;  // from the DICOM headers (or the folder name on failure)
  std::array<double, kNumLabels> probability{};
  std::vector<PredictedPoint> points;  // best first; inside the image (none outside its field of view)
  std::string modality, predicted_modality;
  std::string model;  // the model folder that predicted it (a thick-slice series: the route's)
  // seconds: reading the series, harmonizing it, the vessel stage (its ROI input and networks), the ROI
  // input (finder, resampling to the network grid, blob features), the networks and maps
  double read_s = 0, harmonize_s = 0, vessels_s = 0, roi_s = 0, network_s = 0, candidates_s = 0;
  // With a vessel stage: whether it found vessels, how much, why not; windows run of all
  bool vessel_stage = false, vessels_found = false;
  double vessel_ml = 0;
  Vec3 vessel_lo{0, 0, 0}, vessel_hi{0, 0, 0};  // world LPS bounds of the vessels found
  std::string vessel_note;
  int64_t windows_run = 0, windows_total = 0;
  std::vector<Candidate> candidates;    // with PredictOptions::candidates > 0 (a candidate stage), strongest first
  int dropped_components = 0;           // aneurysm components under ComponentOptions::min_aneurysm_mm3
  std::vector<std::string> warnings;    // harmonization steps that fell back (no brain, no white-matter peak)
  bool fallback = false;                // the series could not be read: prior probabilities
  Volume<float> roi, heatmap, vessels;  // with PredictOptions::keep_maps: the ROI input (first
                                        // channel), 1 - p(background) and the vessel territory
                                        // map (cowseg values 0..13), on the ROI grid
  std::string error;
};

struct PredictOptions {
  std::vector<int> folds;  // empty: every fold with a checkpoint
  bool flip_tta = true;
  // "heatmap": heatmap_probabilities of the averaged maps; "head": the label head's
  std::string probabilities = "heatmap";
  // The aneurysm maps fade out within this many mm of the image's edge (field_edge_weights); < 0:
  // the model's configuration's
  double field_edge_mm = -1;
  // With "heatmap": kernel width of the location prior (model.json); 0 = the maps alone
  double location_sigma_mm = 5;
  // Per fold (the final weights); last.pt when the file asked for is missing
  std::string checkpoint = "last.pt";
  std::string device = "cpu";
  PointOptions points;
  ComponentOptions components;
  bool keep_maps = false;
  // > 0: list the N strongest maxima of the heatmap (SeriesPrediction::candidates; a candidate
  // stage's coarse model)
  int candidates = 0;
  // A candidate stage's Present: (1 - w) x the coarse model's + w x the largest sqrt(coarse x fine)
  // over the candidates (the place both stages agree on most)
  double candidate_weight = 0.5;
  // With flip_tta, a candidate stage mirrors only the windows of this many candidates, those it
  // judged strongest unmirrored (0: every candidate's). 4 of cpu_dots' 32 ranked the 76 held-out
  // CTA/TOF series as all 32 did (docs/EXPERIMENTS.md 2026-12-07), with 36 windows instead of 64.
  int flip_candidates = 4;
  // "": as the model's plans say (mixed_precision: bf16 autocast); "fp32"; "bf16" (CPU or CUDA)
  std::string precision;
};

// The networks' outputs over one ROI, averaged over every network and flip.
struct EnsembleOutput {
  torch::Tensor aneurysm;                      // [14, X, Y, Z] (CPU, float)
  torch::Tensor vessel;                        // [14, X, Y, Z] (only with keep_maps)
  torch::Tensor head_labels;                   // [14] (CPU, double)
  torch::Tensor modality;                      // [4] (CPU, double)
  int64_t windows_run = 0, windows_total = 0;  // per network and flip
};

// What the vessel stage hands the aneurysm stage, on the aneurysm stage's ROI grid.
struct VesselGuide {
  torch::Tensor where;        // [X, Y, Z] bool: within the margin of a vessel
  torch::Tensor territories;  // [13, X, Y, Z]: territory_distribution
  torch::Tensor labels;       // [X, Y, Z] cowseg values (with keep_maps)
  double territory_weight = 0.5;
};

// Throws Error(Usage, naming `where`) unless `theirs` (a `stage` model's, which sees images harmonized
// by `mine`) is `mine` but for the spacing and interpolation.
void check_same_harmonization(const HarmonizeParams& mine, const HarmonizeParams& theirs, const std::string& stage,
                              const std::string& where);

// Throws Error(Usage, naming `where`) unless `coarse` can be the coarse model of a candidate stage
// whose cases `mine` harmonized: a 3D model (it has a heatmap), harmonized alike but for the spacing.
void check_coarse_model(const ModelInfo& coarse, const HarmonizeParams& mine, const std::string& where);

class Predictor {
 public:
  // Loads model.json and the folds' checkpoints once. Throws Error (InputNotFound, CorruptInput, Usage).
  Predictor(const std::filesystem::path& model_dir, const PredictOptions& o);
  // Networks in memory (e.g. a run being trained; `info` as training writes it). The networks are
  // put in eval mode while they predict and left in the mode they were in.
  Predictor(ModelInfo info, std::vector<MultiTaskUNet> nets, const PredictOptions& o);

  // Never throws for a bad series: the result is the documented fallback with `error` set.
  SeriesPrediction predict_series(const std::filesystem::path& series_dir);
  // Series whose slices are more than `max_slice_mm` apart go to `thick` (e.g. a fine model's
  // thick-slice MR to a coarse one); null: none. `thick` must outlive this predictor.
  void route_thick_slices(Predictor* thick, double max_slice_mm);
  // Two stages: `vessels` (a model whose vessel head was trained) finds the arteries first, and this
  // predictor looks near them only (infer/vessels.hpp). Null: none. `vessels` must outlive this one.
  void use_vessel_stage(Predictor* vessels, const VesselStageOptions& o);
  // Two stages: `coarse` (a whole-ROI model) predicts the series and lists the strongest maxima of its
  // heatmap; this predictor (a configuration with candidates > 0, usually at a finer spacing) judges a
  // window around each, and its judgements mix into Present (PredictOptions::candidate_weight).
  // predict_series hands the coarse model the series harmonized at its own spacing (as it alone
  // would see it) and judges on the series harmonized at this one's; predict_image hands both the
  // one image (training's validation: the cached case). Null: none.
  // A stage that finds its own candidates (finds_own_candidates) takes no coarse model: null, and
  // `count` (> 0) replaces its configuration's number of candidates.
  void use_candidate_stage(Predictor* coarse, int count = 0);
  // A candidate stage whose candidates are the image's own (configuration candidate_source "dots":
  // model/input.hpp dot_candidates): it predicts alone, with no coarse model.
  bool finds_own_candidates() const;
  // This predictor as a candidate stage: its heatmap in the window around each candidate of `r`
  // (Candidate::fine, fine_centre, fine_mm3), and Present mixed from them; a stage that finds its own
  // candidates sets every probability and the points from its judgements alone (Present: its label
  // head's strongest window judgement; a location: its class's strongest map probability in a window's
  // central half).
  void judge_candidates(const Volume<float>& image, SeriesPrediction& r);
  // This predictor as a vessel stage: its vessel map of a harmonized image (its own ROI).
  VesselMap vessel_map(const Volume<float>& image, const VesselStageOptions& o);
  // The network part on a harmonized image: the ROI found on it.
  SeriesPrediction predict_image(const Volume<float>& image);
  // The network part on the ROI input `in` (roi_input of `image` around `centre`); `guide`: the
  // vessel stage's (windows and maps near the vessels, territory evidence), null: none.
  SeriesPrediction predict_roi(const Volume<float>& image, const Vec3& centre, const RoiInput& in,
                               const VesselGuide* guide = nullptr);

  // Steps
  Vec3 roi_centre(const Volume<float>& image) const;
  // `vessels`: also the vessel maps (always with keep_maps); `where`: roi_forward's window selection.
  EnsembleOutput ensemble_forward(const torch::Tensor& x, bool vessels = false,
                                  const torch::Tensor& where = torch::Tensor());
  // The 14 probabilities from the ensemble's maps (damped at the field's edge) or the label head,
  // the location columns mixed with the location prior's evidence.
  std::array<double, kNumLabels> series_probabilities(const EnsembleOutput& e, const Geometry& grid, const Vec3& centre,
                                                      const VesselGuide* guide = nullptr) const;
  // Points of the maps, their location distribution mixed with the location prior's.
  std::vector<PredictedPoint> points(const EnsembleOutput& e, const torch::Tensor& field_mm, const Geometry& grid,
                                     const Vec3& centre, const VesselGuide* guide = nullptr) const;

  const ModelInfo& info() const { return info_; }
  const std::vector<int>& folds() const { return folds_; }
  const std::array<double, kNumLabels>& prior() const { return info_.prior; }

 private:
  // predict_series after the series is planned: read, harmonize, predict_image, points on instances
  SeriesPrediction predict_planned(const SeriesPlan& plan);
  // `r` as the documented fallback row for the error `e` (the training prevalence, the error's text)
  SeriesPrediction fallback(SeriesPrediction r, const std::exception& e) const;
  // predict_image for the 2.5D family
  SeriesPrediction predict_slices(const Volume<float>& image);
  bool uses_location_prior() const;
  double field_edge_mm() const;

  ModelInfo info_;
  PredictOptions o_;
  std::vector<int> folds_;
  std::vector<MultiTaskUNet> nets_;
  std::vector<DualStream2p5d> slice_nets_;  // the 2.5D family's (then nets_ is empty)
  std::string model_;                       // the model folder (empty: networks in memory)
  Predictor* thick_ = nullptr;
  double thick_mm_ = 0;
  Predictor* vessels_ = nullptr;
  VesselStageOptions vessel_options_;
  Predictor* coarse_ = nullptr;
};

}  // namespace aneura
