#include "train/distributed.hpp"

#include <spdlog/spdlog.h>

#include <mutex>
#include <regex>

#include "core/error.hpp"

#ifdef ANEURA_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

namespace aneura {

namespace {

constexpr size_t kBucketBytes = 25u << 20;  // gradients all-reduced together (PyTorch DDP's default bucket)

int env_int(const EnvLookup& get, const std::string& name, std::optional<int> fallback, int lo) {
  const auto v = get(name);
  if (!v) {
    if (fallback) return *fallback;
    throw Error(ErrorCode::Usage, "the environment variable " + name + " is not set (a data-parallel run needs it)");
  }
  try {
    size_t used = 0;
    const int x = std::stoi(*v, &used);
    if (used == v->size() && x >= lo) return x;
  } catch (const std::exception&) {}
  throw Error(ErrorCode::Usage,
              "the environment variable " + name + "='" + *v + "' is not an integer >= " + std::to_string(lo));
}

}  // namespace

std::string first_slurm_host(const std::string& nodelist) {
  // A host is a name with an optional bracketed range list: take the first name, the first number.
  static const std::regex host(R"(^([^,\[]+)(\[([0-9]+)[^\]]*\])?)");
  std::smatch m;
  if (nodelist.empty() || !std::regex_search(nodelist, m, host))
    throw Error(ErrorCode::Usage, "cannot read the first host of the SLURM node list '" + nodelist + "'");
  return m[1].str() + (m[3].matched ? m[3].str() : std::string());
}

DistEnv dist_env(const EnvLookup& get) {
  DistEnv e;
  if (get("RANK") && get("WORLD_SIZE")) {
    e.from = "torchrun";
    e.world = env_int(get, "WORLD_SIZE", std::nullopt, 1);
    e.rank = env_int(get, "RANK", std::nullopt, 0);
    e.local_rank = env_int(get, "LOCAL_RANK", e.rank, 0);
  } else if (get("SLURM_PROCID")) {
    e.from = "slurm";
    e.world = env_int(get, "SLURM_NTASKS", 1, 1);
    e.rank = env_int(get, "SLURM_PROCID", std::nullopt, 0);
    e.local_rank = env_int(get, "SLURM_LOCALID", 0, 0);
    if (!get("MASTER_ADDR")) {
      const auto nodes = get("SLURM_JOB_NODELIST") ? get("SLURM_JOB_NODELIST") : get("SLURM_NODELIST");
      if (e.world > 1 && !nodes)
        throw Error(ErrorCode::Usage, "SLURM_PROCID is set but neither MASTER_ADDR nor SLURM_JOB_NODELIST is");
      if (nodes) e.master_addr = first_slurm_host(*nodes);
    }
  } else {
    return e;
  }
  if (e.rank >= e.world)
    throw Error(ErrorCode::Usage, "rank " + std::to_string(e.rank) + " is not below the world size " +
                                      std::to_string(e.world) + " (" + e.from + " environment)");
  if (const auto a = get("MASTER_ADDR")) e.master_addr = *a;
  e.master_port = env_int(get, "MASTER_PORT", 29500, 1);
  if (e.master_port > 65535) throw Error(ErrorCode::Usage, "MASTER_PORT " + std::to_string(e.master_port) + " > 65535");
  return e;
}

#ifdef ANEURA_WITH_GLOO

namespace {

class GlooCollective : public Collective {
 public:
  GlooCollective(const DistEnv& env, std::chrono::seconds timeout) : env_(env) {
    try {
      c10d::TCPStoreOptions so;
      so.port = static_cast<uint16_t>(env.master_port);
      so.isServer = env.rank == 0;
      so.numWorkers = static_cast<size_t>(env.world);
      so.waitWorkers = true;
      so.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
      auto store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
      auto opts =
          c10d::ProcessGroupGloo::Options::create(std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      pg_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world, opts);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Error(ErrorCode::Distributed, "rank " + std::to_string(env.rank) + " of " + std::to_string(env.world) +
                                              " could not join the process group at " + env.master_addr + ":" +
                                              std::to_string(env.master_port) + " within " +
                                              std::to_string(timeout.count()) + " s: " + first_line(e.what()));
    }
  }
  int rank() const override { return env_.rank; }
  int world() const override { return env_.world; }

  void sum(torch::Tensor& t) const override { reduce(t, c10d::ReduceOp::SUM); }
  void max(torch::Tensor& t) const override { reduce(t, c10d::ReduceOp::MAX); }
  void broadcast(torch::Tensor& t) const override {
    on_cpu(t, [&](std::vector<at::Tensor>& v) {
      c10d::BroadcastOptions o;
      o.rootRank = 0;
      return pg_->broadcast(v, o);
    });
  }
  void barrier() const override {
    torch::Tensor t = torch::zeros({1});
    sum(t);  // (Gloo's barrier does not report a lost peer on every version: an all-reduce does)
  }
  void overlap_gradients(const std::vector<torch::Tensor>& params) const override {
    auto o = std::make_unique<Overlap>();
    for (auto it = params.rbegin(); it != params.rend(); ++it) {  // the backward pass' order, roughly
      if (it->scalar_type() != torch::kFloat) return;             // (one flat float buffer per bucket)
      o->params.push_back(*it);
    }
    size_t bytes = 0;
    for (size_t i = 0; i < o->params.size(); ++i) {
      const size_t b = o->params[i].nbytes();
      if (o->size.empty() || (bytes + b > kBucketBytes && bytes > 0)) {
        o->size.push_back(0);
        o->numel.push_back(0);
        bytes = 0;
      }
      o->bucket.push_back(o->size.size() - 1);
      o->offset.push_back(o->numel.back());
      ++o->size.back();
      o->numel.back() += o->params[i].numel();
      bytes += b;
    }
    o->allocate();
    Overlap* raw = o.get();
    for (size_t i = 0; i < raw->params.size(); ++i)
      if (raw->params[i].requires_grad())
        raw->params[i].register_hook([this, raw, i](const torch::Tensor& g) { arrived(*raw, i, g); });
    ov_ = std::move(o);
  }

  void sum_gradients(const std::vector<torch::Tensor>& params, torch::Tensor also) const override {
    if (ov_ && ov_->same(params)) {
      finish(*ov_, also);
      return;
    }
    std::vector<torch::Tensor> grads;
    for (const auto& p : params)
      if (p.grad().defined()) grads.push_back(p.grad());
    torch::Tensor moved;  // `also` beside the first gradients
    if (also.defined()) {
      moved = grads.empty() ? also.clone() : also.to(grads[0].options());
      grads.insert(grads.begin(), moved);
    }
    size_t begin = 0;
    while (begin < grads.size()) {
      size_t end = begin, bytes = 0;
      while (end < grads.size() && (end == begin || bytes + grads[end].nbytes() <= kBucketBytes))
        bytes += grads[end++].nbytes();
      std::vector<torch::Tensor> flat_parts;
      for (size_t i = begin; i < end; ++i) flat_parts.push_back(grads[i].reshape({-1}));
      torch::Tensor flat = torch::cat(flat_parts);
      sum(flat);
      int64_t off = 0;
      for (size_t i = begin; i < end; ++i) {
        const int64_t n = grads[i].numel();
        grads[i].copy_(flat.slice(0, off, off + n).view_as(grads[i]));
        off += n;
      }
      begin = end;
    }
    if (also.defined()) also.copy_(moved);
  }

 private:
  // The buckets of overlap_gradients and this step's progress.
  struct Overlap {
    std::vector<torch::Tensor> params;
    std::vector<size_t> bucket, offset;       // per parameter
    std::vector<size_t> size;                 // parameters per bucket
    std::vector<int64_t> numel;               // values per bucket
    std::vector<size_t> arrived;              // per bucket, this step
    std::vector<char> seen;                   // per parameter, this step
    std::vector<std::vector<at::Tensor>> io;  // per bucket: the flat buffer Gloo sums
    std::vector<c10::intrusive_ptr<c10d::Work>> work;
    size_t launched = 0;
    std::mutex m;
    void allocate() {
      io.assign(size.size(), {});
      for (size_t b = 0; b < size.size(); ++b) io[b] = {torch::zeros({numel[b]})};
      reset();
    }
    // A new step: every slot is written again (a gradient, or zeros in finish) before it is sent.
    void reset() {
      arrived.assign(size.size(), 0);
      seen.assign(params.size(), 0);
      work.assign(size.size(), {});
      launched = 0;
    }
    bool same(const std::vector<torch::Tensor>& ps) const {
      if (ps.size() != params.size()) return false;
      for (size_t i = 0; i < ps.size(); ++i)
        if (!ps[i].is_same(params[params.size() - 1 - i])) return false;
      return true;
    }
    torch::Tensor slot(size_t i) {
      return io[bucket[i]][0].slice(0, offset[i], offset[i] + params[i].numel()).view_as(params[i]);
    }
  };

  void launch(Overlap& o, size_t b) const {
    c10d::AllreduceOptions opt;
    opt.reduceOp = c10d::ReduceOp::SUM;
    o.work[b] = pg_->allreduce(o.io[b], opt);
  }
  // A gradient from the backward pass (the hook): into its bucket; full buckets are sent in order.
  void arrived(Overlap& o, size_t i, const torch::Tensor& g) const {
    std::lock_guard<std::mutex> lk(o.m);
    if (o.seen[i]) {  // a second backward before the sum: add (gradient accumulation)
      o.slot(i).add_(g.detach().to(torch::kCPU));
      return;
    }
    o.slot(i).copy_(g.detach().to(torch::kCPU));
    o.seen[i] = 1;
    ++o.arrived[o.bucket[i]];
    while (o.launched < o.size.size() && o.arrived[o.launched] == o.size[o.launched]) launch(o, o.launched++);
  }
  // After the backward pass: the gradients no hook saw (none, or a parameter that requires a
  // gradient only since overlap_gradients), the remaining buckets, `also`; wait, and write back.
  void finish(Overlap& o, torch::Tensor also) const {
    std::lock_guard<std::mutex> lk(o.m);
    for (size_t i = 0; i < o.params.size(); ++i)
      if (!o.seen[i] && o.bucket[i] >= o.launched) {
        const auto& g = o.params[i].grad();
        if (g.defined())
          o.slot(i).copy_(g.to(torch::kCPU));
        else
          o.slot(i).zero_();
      }
    while (o.launched < o.size.size()) launch(o, o.launched++);
    try {
      for (auto& w : o.work) w->wait();
    } catch (const std::exception& e) {
      throw Error(ErrorCode::Distributed, "rank " + std::to_string(env_.rank) + " of " + std::to_string(env_.world) +
                                              ": another rank stopped or did not answer: " + first_line(e.what()));
    }
    for (size_t i = 0; i < o.params.size(); ++i) {
      auto g = o.params[i].mutable_grad();
      if (g.defined()) g.copy_(o.slot(i));
    }
    o.reset();
    if (also.defined()) sum(also);
  }

  static std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

  void reduce(torch::Tensor& t, c10d::ReduceOp op) const {
    on_cpu(t, [&](std::vector<at::Tensor>& v) {
      c10d::AllreduceOptions o;
      o.reduceOp = op;
      return pg_->allreduce(v, o);
    });
  }
  template <class F>
  void on_cpu(torch::Tensor& t, F&& f) const {
    std::vector<at::Tensor> v{t.is_cuda() || !t.is_contiguous() ? t.to(torch::kCPU).contiguous() : t};
    try {
      f(v)->wait();
    } catch (const std::exception& e) {
      throw Error(ErrorCode::Distributed, "rank " + std::to_string(env_.rank) + " of " + std::to_string(env_.world) +
                                              ": another rank stopped or did not answer: " + first_line(e.what()));
    }
    if (!v[0].is_same(t)) t.copy_(v[0]);
  }

  DistEnv env_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg_;
  mutable std::unique_ptr<Overlap> ov_;
};

}  // namespace

bool distributed_available() { return true; }

std::shared_ptr<const Collective> connect(const DistEnv& env, std::chrono::seconds timeout) {
  if (env.world <= 1) return std::shared_ptr<const Collective>(&local_collective(), [](const Collective*) {});
  spdlog::info("rank {} of {} ({} environment): joining {}:{}", env.rank, env.world, env.from, env.master_addr,
               env.master_port);
  return std::make_shared<GlooCollective>(env, timeout);
}

#else

bool distributed_available() { return false; }

std::shared_ptr<const Collective> connect(const DistEnv& env, std::chrono::seconds) {
  if (env.world <= 1) return std::shared_ptr<const Collective>(&local_collective(), [](const Collective*) {});
  throw Error(ErrorCode::Unsupported,
              "this aneura was built without c10d's Gloo process group (install libgloo-dev and rebuild): it cannot "
              "run " +
                  std::to_string(env.world) + " ranks");
}

#endif

}  // namespace aneura
