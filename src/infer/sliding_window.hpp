// The network over a whole ROI: one forward when the configuration sees its ROI at once, else a
// sliding window (nnU-Net's predict_sliding_window_return_logits): windows that overlap by the
// configuration's window_overlap, `batch` at a time, each voxel's outputs the mean over the
// windows that cover it. With `mirror`, the network sees the left-right mirror of the input and
// the outputs are mirrored back, which is one half of flip test-time augmentation.
#pragma once
#include <torch/torch.h>

#include "model/network.hpp"
#include "plan/plans.hpp"

namespace aneura {

struct RoiOutput {
  torch::Tensor head_labels;  // [14] the label head's probabilities: the largest over the windows (CPU, double)
  torch::Tensor aneurysm;     // [14, X, Y, Z] softmax, the mean over the windows covering a voxel (CPU)
  torch::Tensor vessel;       // [14, X, Y, Z] likewise (only with `vessels`)
  torch::Tensor modality;     // [4] softmax, the mean over the windows (CPU, double)
  int64_t windows_run = 0, windows_total = 0;
};

// `x`: a ROI input [C, X, Y, Z] (model/input.hpp roi_input). No gradient; the network's mode is
// left as it is (callers put it in eval mode). With `mirror`, the input is mirror_input(x) and the
// outputs describe the unmirrored ROI (maps flipped back, twin columns and classes swapped).
// `where` ([X, Y, Z] bool on the ROI, undefined: everywhere; e.g. near the vessels): only the
// windows that hold a true voxel run; voxels no window sees are background.
RoiOutput roi_forward(MultiTaskUNet& net, const torch::Tensor& x, const Configuration& cfg, bool mirror,
                      bool vessels = false, int batch = 4, const torch::Tensor& where = torch::Tensor());

}  // namespace aneura
