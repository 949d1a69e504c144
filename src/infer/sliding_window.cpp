#include "infer/sliding_window.hpp"

#include <algorithm>
#include <array>
#include <vector>

#include "core/labels.hpp"
#include "model/input.hpp"

namespace aneura {

RoiOutput roi_forward(MultiTaskUNet& net, const torch::Tensor& x, const Configuration& cfg, bool mirror, bool vessels,
                      int batch, const torch::Tensor& where) {
  torch::NoGradGuard ng;
  const torch::Device dev = net->parameters().front().device();
  const auto in = mirror ? mirror_input(x) : x;
  const std::array<int64_t, 3> roi{x.size(1), x.size(2), x.size(3)};
  auto starts = windowed(cfg) ? window_starts(roi, cfg.patch_size, cfg.window_overlap)
                              : std::vector<std::array<int64_t, 3>>{{0, 0, 0}};
  if (windowed(cfg) && cfg.focus_windows > 0) {  // only the windows at the blobs (none found: every window)
    const auto focus = blob_focus(in, cfg.focus_windows);
    if (!focus.empty()) starts = focus_windows(starts, cfg.patch_size, focus);
  }
  const std::array<int64_t, 3> p =
      windowed(cfg) ? std::array<int64_t, 3>{cfg.patch_size[0], cfg.patch_size[1], cfg.patch_size[2]} : roi;
  RoiOutput r;
  r.windows_total = static_cast<int64_t>(starts.size());
  if (where.defined() && windowed(cfg)) {  // only the windows that hold a voxel of `where`
    const auto w = mirror ? where.flip({0}) : where;
    std::vector<std::array<int64_t, 3>> kept;
    for (const auto& s : starts)
      if (w.slice(0, s[0], s[0] + p[0]).slice(1, s[1], s[1] + p[1]).slice(2, s[2], s[2] + p[2]).any().item<bool>())
        kept.push_back(s);
    starts = kept;
  }
  r.windows_run = static_cast<int64_t>(starts.size());
  r.aneurysm = torch::zeros({kNumLabels, roi[0], roi[1], roi[2]});
  if (vessels) r.vessel = torch::zeros({14, roi[0], roi[1], roi[2]});
  auto cover = torch::zeros({roi[0], roi[1], roi[2]});
  torch::Tensor labels, modality;
  for (size_t b0 = 0; b0 < starts.size(); b0 += static_cast<size_t>(std::max(1, batch))) {
    const size_t b1 = std::min(starts.size(), b0 + static_cast<size_t>(std::max(1, batch)));
    std::vector<torch::Tensor> w;
    for (size_t i = b0; i < b1; ++i)
      w.push_back(in.slice(1, starts[i][0], starts[i][0] + p[0])
                      .slice(2, starts[i][1], starts[i][1] + p[1])
                      .slice(3, starts[i][2], starts[i][2] + p[2]));
    auto xb = torch::stack(w).to(dev);
    if (cfg.channels_last && dev.is_cuda()) xb = xb.contiguous(at::MemoryFormat::ChannelsLast3d);
    NetworkOutput out;
    {
      Autocast ac(dev, cfg.mixed_precision);
      out = net->forward(xb);
    }
    const auto l = torch::sigmoid(out.labels.to(torch::kCPU, torch::kDouble)).amax(0);
    labels = labels.defined() ? torch::maximum(labels, l) : l;
    const auto m = torch::softmax(out.modality.to(torch::kCPU, torch::kDouble), 1).sum(0);
    modality = modality.defined() ? modality + m : m;
    const auto a = torch::softmax(out.aneurysm.to(torch::kFloat), 1).to(torch::kCPU);
    const auto v = vessels ? torch::softmax(out.vessel.to(torch::kFloat), 1).to(torch::kCPU) : torch::Tensor();
    for (size_t i = b0; i < b1; ++i) {
      auto at = [&](const torch::Tensor& t) {
        return t.slice(-3, starts[i][0], starts[i][0] + p[0])
            .slice(-2, starts[i][1], starts[i][1] + p[1])
            .slice(-1, starts[i][2], starts[i][2] + p[2]);
      };
      at(r.aneurysm).add_(a[static_cast<int64_t>(i - b0)]);
      if (vessels) at(r.vessel).add_(v[static_cast<int64_t>(i - b0)]);
      at(cover).add_(1);
    }
  }
  // A voxel no window looked at (focus windows) is background.
  const auto unseen = cover == 0;
  cover.clamp_min_(1);
  r.aneurysm /= cover;
  r.aneurysm[0].masked_fill_(unseen, 1);
  if (vessels) {
    r.vessel /= cover;
    r.vessel[0].masked_fill_(unseen, 1);
  }
  r.head_labels = labels.contiguous();
  if (!labels.defined()) {  // no window ran: every voxel is background
    labels = torch::zeros({kNumLabels}, torch::kDouble);
    modality = torch::full({4}, 0.25, torch::kDouble);
  }
  r.modality = (modality / static_cast<double>(std::max<size_t>(1, starts.size()))).contiguous();
  if (mirror) {  // back to the unmirrored ROI: column c of the mirrored output is twin(c) here
    r.head_labels = r.head_labels.index_select(0, label_twin_lut()).contiguous();
    r.aneurysm = r.aneurysm.index_select(0, aneurysm_value_twin_lut()).flip({1}).contiguous();
    if (vessels) r.vessel = r.vessel.index_select(0, cowseg_twin_lut()).flip({1}).contiguous();
  }
  return r;
}

}  // namespace aneura
