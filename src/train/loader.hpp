// The asynchronous loader (as the background loaders of nnU-Net and MONAI): worker threads cut and augment samples into
// a bounded queue while the model trains on the previous batch. Batches come out in order and each sample's random
// numbers derive from (seed, epoch, position) only, so a run is deterministic whatever the number of workers, and a
// resumed run sees the same samples as an uninterrupted one.
#pragma once
#include <torch/torch.h>

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "train/data.hpp"

namespace aneura {

// Cases of a run: held in memory when they fit the budget, else read from the cache per sample
// (the uncompressed NIfTI files then live in the OS page cache).
class CaseStore {
 public:
  // `maps`: what the cases' label maps hold (load_case).
  CaseStore(std::filesystem::path work, std::vector<std::string> ids, double ram_budget_bytes,
            CaseMaps maps = CaseMaps::Labels);
  size_t size() const { return ids_.size(); }
  const std::string& id(size_t i) const { return ids_[i]; }
  std::shared_ptr<const TrainCase> get(size_t i) const;
  bool preloaded() const { return !cached_.empty(); }
  // Whether a sample is cut from memory (cases, ROIs or crops kept), not from a case read per sample.
  bool in_memory() const { return !cached_.empty() || !rois_.empty() || !sites_.empty(); }
  // The network's input channels for these cases (the first one's). Throws Error(CorruptInput)
  // naming a case in memory with another channel count (read per sample, it fails when batched).
  int input_channels(const Configuration& cfg) const;
  // Every case's ROI centre from its anchor and `o` (learned offsets), from now on; before cache_rois.
  void set_roi_offsets(const RoiOffsets& o);
  // A candidate stage's candidates per case id (TrainCase::candidates), from now on.
  void set_candidates(const std::map<std::string, std::vector<Vec3>>& by_id);
  // Their sampling weights per case id (TrainCase::candidate_weights; mined), from now on.
  void set_candidate_weights(const std::map<std::string, std::vector<double>>& by_id);
  // Windowed configurations: each case's ROI (make_roi_case) made once, `threads` cases at a time,
  // when the cases are in memory and the ROIs fit `ram_budget_bytes` too. Returns whether it did.
  bool cache_rois(const Configuration& cfg, int threads, double ram_budget_bytes);
  const RoiCase* roi(size_t i) const { return rois_.empty() ? nullptr : &rois_.at(i); }
  // A candidate stage whose cases are read per sample: each case read once, `threads` at a time,
  // into the crops around its candidates and points (make_site_case with site_half_extent_mm(cfg,
  // aug)), when they fit `ram_budget_bytes` (else none is kept). After set_candidates and
  // set_roi_offsets; set_candidate_weights reaches the crops too. Returns whether it did.
  bool cache_sites(const Configuration& cfg, const AugmentOptions& aug, int threads, double ram_budget_bytes);
  const SiteCase* site(size_t i) const { return sites_.empty() ? nullptr : &sites_.at(i); }
  size_t site_bytes() const;

 private:
  std::filesystem::path work_;
  std::vector<std::string> ids_;
  CaseMaps maps_ = CaseMaps::Labels;
  std::vector<std::shared_ptr<TrainCase>> cached_;
  RoiOffsets offsets_;
  std::map<std::string, std::vector<Vec3>> candidates_;
  std::map<std::string, std::vector<double>> candidate_weights_;
  std::vector<RoiCase> rois_;
  std::vector<SiteCase> sites_;
};

struct Batch {
  torch::Tensor image, vessel, aneurysm, labels, modality, has_vessels;
  torch::Tensor coords;             // dualstream_2p5d samples: [N, 2]; else undefined
  std::vector<size_t> cases;        // store indices
  std::vector<int64_t> candidates;  // per sample: Sample::candidate
};

Batch collate(std::vector<Sample>& samples, std::vector<size_t> cases);

// Sampling weights (targeted oversampling): 1 for a negative case; `positive` for a positive one,
// times (1 + r) where r in [0, 1] is the rarity of its rarest location in the training set
// (1 - count / largest count), so the rarest locations are drawn up to twice as often again.
std::vector<double> sampling_weights(const std::vector<std::array<int, kNumLabels>>& labels, double positive);

// The cases drawn in an epoch: `n` draws with replacement by weight, from (seed, epoch) only.
std::vector<size_t> epoch_draws(const std::vector<double>& weights, size_t n, uint64_t seed, int epoch);

// Seed of one sample from (seed, epoch, position): splitmix64 mixing.
uint64_t sample_seed(uint64_t seed, int epoch, size_t position);

// The loader threads a run takes: the plans' (`cfg.loader_workers`), or `option` where given (>= 0);
// where the plans give none but `store` reads a case per sample (~1 s: not to be made between
// steps), one, and says so.
int loader_threads(const Configuration& cfg, const CaseStore& store, int option);

class BatchLoader {
 public:
  // workers = 0: samples are made in next() on the calling thread. `batch_size` is the global
  // batch; with `world` > 1 each batch holds only this rank's share of it (rank_share), each sample
  // made from its global position, so the ranks together see what one process would.
  BatchLoader(const CaseStore& store, const Configuration& cfg, const AugmentOptions& aug, std::vector<size_t> draws,
              int batch_size, uint64_t seed, int epoch, int workers, int queue_length, int rank = 0, int world = 1);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;
  size_t batches() const { return n_batches_; }
  std::optional<Batch> next();  // the next batch in order; nullopt after the last; rethrows a worker's error

 private:
  Batch make_batch(size_t b) const;
  void work();

  const CaseStore& store_;
  const Configuration& cfg_;
  AugmentOptions aug_;
  std::vector<size_t> draws_;
  int batch_size_;
  int rank_, world_;
  uint64_t seed_;
  int epoch_;
  size_t n_batches_, queue_length_;
  size_t next_out_ = 0, next_job_ = 0;
  std::map<size_t, Batch> ready_;
  std::exception_ptr error_;
  bool stop_ = false;
  std::mutex m_;
  std::condition_variable cv_;
  std::vector<std::thread> threads_;
};

}  // namespace aneura
