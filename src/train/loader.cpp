#include "train/loader.hpp"

#include <algorithm>
#include <atomic>
#include <random>

#include <spdlog/spdlog.h>

#include "core/error.hpp"
#include "core/parallel.hpp"
#include "train/collective.hpp"

namespace fs = std::filesystem;

namespace aneura {

CaseStore::CaseStore(fs::path work, std::vector<std::string> ids, double ram_budget_bytes, CaseMaps maps)
    : work_(std::move(work)), ids_(std::move(ids)), maps_(maps) {
  double bytes = 0;
  std::error_code ec;
  for (const auto& id : ids_) {
    const auto d = work_ / "cases" / id;
    for (const auto& [file, factor] : {std::pair{"image.nii", 1.0}, std::pair{"labels.nii", 2.0}}) {
      const auto size = fs::file_size(d / file, ec);  // (a case without labels.nii has none)
      if (!ec) bytes += factor * static_cast<double>(size);
    }
  }
  if (bytes <= ram_budget_bytes)
    for (const auto& id : ids_) cached_.push_back(std::make_shared<TrainCase>(load_case(work_, id, maps_)));
}

std::shared_ptr<const TrainCase> CaseStore::get(size_t i) const {
  if (!cached_.empty()) return cached_.at(i);
  auto c = std::make_shared<TrainCase>(load_case(work_, ids_.at(i), maps_));
  c->roi_centre = offsets_.centre(c->roi_anchor);
  if (auto it = candidates_.find(c->id); it != candidates_.end()) c->candidates = it->second;
  if (auto it = candidate_weights_.find(c->id); it != candidate_weights_.end()) c->candidate_weights = it->second;
  return c;
}

void CaseStore::set_candidates(const std::map<std::string, std::vector<Vec3>>& by_id) {
  if (!sites_.empty())
    throw Error(ErrorCode::Internal, "set_candidates after cache_sites: the crops were cut around the old ones");
  candidates_ = by_id;
  for (auto& c : cached_)
    if (auto it = by_id.find(c->id); it != by_id.end()) c->candidates = it->second;
}

void CaseStore::set_candidate_weights(const std::map<std::string, std::vector<double>>& by_id) {
  candidate_weights_ = by_id;
  for (auto& c : cached_)
    if (auto it = by_id.find(c->id); it != by_id.end()) c->candidate_weights = it->second;
  for (size_t i = 0; i < sites_.size(); ++i)
    if (auto it = by_id.find(ids_[i]); it != by_id.end()) sites_[i].candidate_weights = it->second;
}

void CaseStore::set_roi_offsets(const RoiOffsets& o) {
  if (!rois_.empty() || !sites_.empty())
    throw Error(ErrorCode::Internal,
                "set_roi_offsets after cache_rois or cache_sites: the inputs were cut around the old centres");
  offsets_ = o;
  for (auto& c : cached_) c->roi_centre = o.centre(c->roi_anchor);
}

bool CaseStore::cache_rois(const Configuration& cfg, int threads, double ram_budget_bytes) {
  if (!windowed(cfg) || cached_.empty()) return false;
  const Geometry g = roi_grid({0, 0, 0}, cfg);
  const double bytes =
      static_cast<double>(g.voxel_count()) *
      (4.0 * (aneura::input_channels(cfg, static_cast<int>(cached_[0]->image.volumes)) - kCoordinateChannels) + 2) *
      static_cast<double>(cached_.size());
  if (bytes > ram_budget_bytes) return false;
  std::vector<RoiCase> rois(cached_.size());
  parallel_for(rois.size(), static_cast<unsigned>(std::max(1, threads)), [&](size_t i) {
    torch::NoGradGuard ng;
    rois[i] = make_roi_case(*cached_[i], cfg, 1);
  });
  rois_ = std::move(rois);
  return true;
}

bool CaseStore::cache_sites(const Configuration& cfg, const AugmentOptions& aug, int threads, double ram_budget_bytes) {
  if (cfg.candidates <= 0 || !cached_.empty() || !aug.enabled || ids_.empty()) return false;
  const double half = site_half_extent_mm(cfg, aug);
  std::vector<SiteCase> sites(ids_.size());
  std::atomic<double> bytes{0};
  std::atomic<bool> over{false};
  parallel_for(sites.size(), static_cast<unsigned>(std::max(1, threads)), [&](size_t i) {
    if (over) return;
    torch::NoGradGuard ng;
    sites[i] = make_site_case(*get(i), half);
    double b = bytes.load();
    while (!bytes.compare_exchange_weak(b, b + static_cast<double>(sites[i].bytes))) {}
    if (b + static_cast<double>(sites[i].bytes) > ram_budget_bytes) over = true;
  });
  if (over) return false;
  sites_ = std::move(sites);
  return true;
}

size_t CaseStore::site_bytes() const {
  size_t n = 0;
  for (const auto& s : sites_) n += s.bytes;
  return n;
}

int loader_threads(const Configuration& cfg, const CaseStore& store, int option) {
  if (option >= 0) return option;
  if (cfg.loader_workers > 0 || store.in_memory()) return cfg.loader_workers;
  spdlog::info(
      "the cases are read per sample: one loader thread reads them while the network trains (the plans' "
      "loader_workers 0 are for windows cut from memory)");
  return 1;
}

Batch collate(std::vector<Sample>& s, std::vector<size_t> cases) {
  std::vector<torch::Tensor> img, ves, ane, lab;
  std::vector<int64_t> mod;
  std::vector<uint8_t> hv;
  for (auto& x : s) {
    img.push_back(x.image);
    ves.push_back(x.vessel);
    ane.push_back(x.aneurysm);
    lab.push_back(x.labels);
    mod.push_back(x.modality);
    hv.push_back(x.has_vessels ? 1 : 0);
  }
  Batch b;
  b.image = torch::stack(img);
  b.vessel = torch::stack(ves);
  b.aneurysm = torch::stack(ane);
  b.labels = torch::stack(lab);
  b.modality = torch::tensor(mod, torch::kLong);
  b.has_vessels = torch::tensor(std::vector<int64_t>(hv.begin(), hv.end()), torch::kLong).to(torch::kBool);
  if (!s.empty() && s[0].coords.defined()) {
    std::vector<torch::Tensor> co;
    for (auto& x : s) co.push_back(x.coords);
    b.coords = torch::stack(co);
  }
  b.cases = std::move(cases);
  for (auto& x : s) b.candidates.push_back(x.candidate);
  return b;
}

std::vector<double> sampling_weights(const std::vector<std::array<int, kNumLabels>>& labels, double positive) {
  std::array<int, kNumLabels> count{};
  for (const auto& l : labels)
    for (int c = 0; c < kNumLabels - 1; ++c) count[c] += l[c];
  const int most = std::max(1, *std::max_element(count.begin(), count.end() - 1));
  std::vector<double> w;
  for (const auto& l : labels) {
    if (!l[kNumLabels - 1]) {
      w.push_back(1.0);
      continue;
    }
    double rarity = 0;
    for (int c = 0; c < kNumLabels - 1; ++c)
      if (l[c]) rarity = std::max(rarity, 1.0 - static_cast<double>(count[c]) / most);
    w.push_back(positive * (1 + rarity));
  }
  return w;
}

uint64_t sample_seed(uint64_t seed, int epoch, size_t position) {
  uint64_t z = seed ^ (static_cast<uint64_t>(epoch) * 0x9E3779B97F4A7C15ULL) ^
               (static_cast<uint64_t>(position) * 0xD1B54A32D192ED03ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::vector<size_t> epoch_draws(const std::vector<double>& weights, size_t n, uint64_t seed, int epoch) {
  if (weights.empty()) return {};
  // Inverse CDF with our own uniform (std::discrete_distribution's algorithm is not specified).
  std::vector<double> cdf(weights.size());
  double acc = 0;
  for (size_t i = 0; i < weights.size(); ++i) cdf[i] = acc += weights[i];
  std::mt19937_64 rng(sample_seed(seed, epoch, static_cast<size_t>(-1)));
  std::vector<size_t> out;
  for (size_t k = 0; k < n; ++k) {
    const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53 * acc;
    out.push_back(
        std::min(weights.size() - 1, static_cast<size_t>(std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin())));
  }
  return out;
}

int CaseStore::input_channels(const Configuration& cfg) const {
  const auto first = get(0);
  const int n = aneura::input_channels(cfg, static_cast<int>(first->image.volumes));
  for (const auto& c : cached_)
    if (aneura::input_channels(cfg, static_cast<int>(c->image.volumes)) != n)
      throw Error(ErrorCode::CorruptInput,
                  "cases have different channel counts (" + std::to_string(first->image.volumes) + " vs " +
                      std::to_string(c->image.volumes) + "); preprocess them with the same options",
                  c->id);
  return n;
}

BatchLoader::BatchLoader(const CaseStore& store, const Configuration& cfg, const AugmentOptions& aug,
                         std::vector<size_t> draws, int batch_size, uint64_t seed, int epoch, int workers,
                         int queue_length, int rank, int world)
    : store_(store),
      cfg_(cfg),
      aug_(aug),
      draws_(std::move(draws)),
      batch_size_(std::max(1, batch_size)),
      rank_(rank),
      world_(std::max(1, world)),
      seed_(seed),
      epoch_(epoch),
      queue_length_(static_cast<size_t>(std::max(1, queue_length))) {
  n_batches_ = (draws_.size() + batch_size_ - 1) / batch_size_;
  for (int w = 0; w < workers; ++w) threads_.emplace_back([this] { work(); });
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lk(m_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

Batch BatchLoader::make_batch(size_t b) const {
  std::vector<Sample> samples;
  std::vector<size_t> cases;
  const size_t first = b * batch_size_, n = std::min(draws_.size(), first + batch_size_) - first;
  const auto [lo, hi] = rank_share(n, rank_, world_);
  for (size_t p = first + lo; p < first + hi; ++p) {
    std::mt19937_64 rng(sample_seed(seed_, epoch_, p));
    if (const RoiCase* r = store_.roi(draws_[p])) {
      samples.push_back(make_roi_sample(*r, cfg_, rng, aug_));
    } else if (const SiteCase* sc = store_.site(draws_[p])) {
      samples.push_back(make_site_sample(*sc, cfg_, rng, aug_));
    } else {
      const auto c = store_.get(draws_[p]);
      samples.push_back(make_sample(*c, cfg_, rng, aug_));
    }
    cases.push_back(draws_[p]);
  }
  return collate(samples, std::move(cases));
}

void BatchLoader::work() {
  torch::NoGradGuard no_grad;
  for (;;) {
    size_t b;
    {
      std::unique_lock<std::mutex> lk(m_);
      // bounded: at most queue_length batches made ahead of the consumer
      cv_.wait(lk, [&] { return stop_ || next_job_ >= n_batches_ || next_job_ < next_out_ + queue_length_; });
      if (stop_ || next_job_ >= n_batches_) return;
      b = next_job_++;
    }
    try {
      Batch batch = make_batch(b);
      std::lock_guard<std::mutex> lk(m_);
      ready_.emplace(b, std::move(batch));
    } catch (...) {
      std::lock_guard<std::mutex> lk(m_);
      if (!error_) error_ = std::current_exception();
      stop_ = true;
    }
    cv_.notify_all();
  }
}

std::optional<Batch> BatchLoader::next() {
  if (next_out_ >= n_batches_) return std::nullopt;
  if (threads_.empty()) return make_batch(next_out_++);
  std::unique_lock<std::mutex> lk(m_);
  cv_.wait(lk, [&] { return error_ || ready_.count(next_out_); });
  if (error_) std::rethrow_exception(error_);
  Batch b = std::move(ready_.at(next_out_));
  ready_.erase(next_out_++);
  lk.unlock();
  cv_.notify_all();
  return b;
}

}  // namespace aneura
