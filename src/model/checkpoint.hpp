// A run's checkpoint file (LibTorch archive, written atomically):
//   model       the trained weights
//   ema         their exponential moving average (when the configuration keeps one)
//   optimizer   the optimizer state (resume)
//   meta        a JSON record: epoch, step, schedule, elapsed time, seed, configuration, fold
//   head        (pre-training) the reconstruction head
#pragma once
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "model/network.hpp"

namespace aneura {

// Opens a checkpoint. Throws Error: InputNotFound (no file), CorruptInput (not a LibTorch archive).
torch::serialize::InputArchive open_checkpoint(const std::filesystem::path& file);
// Reads module `key` ("model" or "ema") into `net`. Throws Error(CorruptInput) when the archive
// has no such module or a parameter of another shape (LibTorch itself would accept it silently).
void load_module(torch::serialize::InputArchive& ar, const std::string& key, torch::nn::Module& net,
                 const std::filesystem::path& file);
inline void load_module(torch::serialize::InputArchive& ar, const std::string& key, MultiTaskUNet& net,
                        const std::filesystem::path& file) {
  load_module(ar, key, *net, file);
}
// The "meta" record. Throws Error(CorruptInput) when it is missing or not JSON.
nlohmann::json read_checkpoint_meta(torch::serialize::InputArchive& ar, const std::filesystem::path& file);

// Weights of a checkpoint into `net`: the EMA weights when the checkpoint has them and `ema`.
void load_weights(const std::filesystem::path& checkpoint, torch::nn::Module& net, bool ema = true);
inline void load_weights(const std::filesystem::path& checkpoint, MultiTaskUNet& net, bool ema = true) {
  load_weights(checkpoint, *net, ema);
}

// Writes model, EMA (when given), optimizer, meta and `head` (when given) atomically (a crash
// leaves the old file).
void save_checkpoint(const std::filesystem::path& file, torch::nn::Module& net, torch::nn::Module* ema,
                     torch::optim::Optimizer& opt, const nlohmann::json& meta, torch::nn::Module* head = nullptr);
inline void save_checkpoint(const std::filesystem::path& file, MultiTaskUNet& net, MultiTaskUNet* ema,
                            torch::optim::Optimizer& opt, const nlohmann::json& meta,
                            torch::nn::Module* head = nullptr) {
  save_checkpoint(file, *net, ema ? ema->get() : nullptr, opt, meta, head);
}

}  // namespace aneura
