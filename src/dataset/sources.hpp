// Unlabelled sources for self-supervised pre-training, turned into cases of the same format:
//
//  * a folder of NIfTI files laid out like BIDS / OpenMind (sub-*/[ses-*/]anat/*_T1w.nii.gz, ...):
//    every *.nii / *.nii.gz below it. The modality comes from the BIDS suffix: "_ct" or "_CT" ->
//    CT, anything else (T1w, T2w, angio, FLAIR, ...) -> MR.
//  * DeepLesion: Images_png/<patient>_<study>_<series>/<slice>.png (16-bit, HU = value - 32768)
//    with DL_info.csv (File_name, Spacing_mm_px_ = "x, y, z", ...). Each folder is one volume,
//    slices in file-number order, pixel spacing and slice interval from the CSV. DeepLesion
//    keeps no orientation: the slices are taken as axial, rows anterior->posterior, columns
//    right->left of the patient (LPS identity), slice numbers increasing towards the feet.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "dataset/case_cache.hpp"

namespace aneura {

enum class SourceKind { Rsna, Nifti, DeepLesion };

// rsna when train.csv or series/ exist, deeplesion when DL_info.csv exists, else nifti.
SourceKind detect_source(const std::filesystem::path& root);

// Batch jobs for every volume of a NIfTI or DeepLesion source (ids "nii-..." / "dl-...",
// validated as safe names). `left_out` (optional): how many NIfTI images the quality limit
// (CaseOptions::max_image_quality_score) left out.
std::vector<CaseJob> nifti_jobs(const std::filesystem::path& root, const std::filesystem::path& work,
                                const CaseOptions& o, size_t* left_out = nullptr);
std::vector<CaseJob> deeplesion_jobs(const std::filesystem::path& root, const std::filesystem::path& work,
                                     const CaseOptions& o);

// A DeepLesion series folder as a volume in HU (exposed for tests).
Volume<float> load_deeplesion_series(const std::filesystem::path& folder, const Vec3& spacing);

}  // namespace aneura
