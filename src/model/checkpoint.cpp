#include "model/checkpoint.hpp"

#include <algorithm>
#include <vector>

#include "core/atomic_file.hpp"
#include "core/error.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {

torch::serialize::InputArchive open_checkpoint(const fs::path& file) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) throw Error(ErrorCode::InputNotFound, "no checkpoint", file.string());
  torch::serialize::InputArchive ar;
  try {
    ar.load_from(file.string());
  } catch (const std::exception& e) {
    throw Error(ErrorCode::CorruptInput, "unreadable checkpoint (not a LibTorch archive or truncated)", file.string());
  }
  return ar;
}

void load_module(torch::serialize::InputArchive& ar, const std::string& key, torch::nn::Module& net,
                 const fs::path& file) {
  try {
    // LibTorch's load replaces a parameter of another shape without complaint: compare shapes.
    std::vector<std::vector<int64_t>> shapes;
    for (const auto& p : net.parameters()) shapes.push_back(p.sizes().vec());
    torch::serialize::InputArchive sub;
    ar.read(key, sub);
    net.load(sub);
    size_t i = 0;
    for (const auto& p : net.parameters())
      if (p.sizes().vec() != shapes.at(i++)) throw std::runtime_error("a parameter has another shape");
  } catch (const std::exception& e) {
    throw Error(ErrorCode::CorruptInput,
                "checkpoint '" + key +
                    "' does not fit this network (other plans or channels?): " + std::string(e.what()).substr(0, 200),
                file.string());
  }
}

json read_checkpoint_meta(torch::serialize::InputArchive& ar, const fs::path& file) {
  try {
    c10::IValue v;
    ar.read("meta", v);
    return json::parse(v.toStringRef());
  } catch (const std::exception& e) {
    throw Error(ErrorCode::CorruptInput, "checkpoint has no readable 'meta' record", file.string());
  }
}

void load_weights(const fs::path& checkpoint, torch::nn::Module& net, bool ema) {
  auto ar = open_checkpoint(checkpoint);
  const std::vector<std::string> keys = ar.keys();
  const bool has_ema = std::find(keys.begin(), keys.end(), "ema") != keys.end();
  load_module(ar, ema && has_ema ? "ema" : "model", net, checkpoint);
}

void save_checkpoint(const fs::path& file, torch::nn::Module& net, torch::nn::Module* ema, torch::optim::Optimizer& opt,
                     const json& meta, torch::nn::Module* head) {
  torch::serialize::OutputArchive ar, m, e, o, h;
  net.save(m);
  ar.write("model", m);
  if (ema) {
    ema->save(e);
    ar.write("ema", e);
  }
  opt.save(o);
  ar.write("optimizer", o);
  ar.write("meta", c10::IValue(meta.dump()));
  if (head) {
    head->save(h);
    ar.write("head", h);
  }
  write_atomically(file, [&](const fs::path& tmp) { ar.save_to(tmp.string()); });
}

}  // namespace aneura
