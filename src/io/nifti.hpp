// NIfTI-1 reading and writing through ITK's NiftiImageIO (.nii and .nii.gz by file name).
//
// Writing stores the RAS affine that dcm2niix and nibabel expect, in both qform and sform (code 1,
// scanner). With NiftiLayout::Dcm2niix the rows are stored bottom-up (dcm2niix's default "flip
// y"), so a series converted by aneura and by dcm2niix has the same voxel order and the same
// affine. Every layout keeps each voxel at its world position.
#pragma once
#include <filesystem>

#include "core/volume.hpp"

namespace aneura {

enum class NiftiLayout { Native, Dcm2niix };

// Voxel type written: the smallest of int16, uint16, int32 that holds every value exactly, else
// float32. The file appears atomically (temporary name, then rename).
void write_nifti(const Volume<float>& vol, const std::filesystem::path& path,
                 NiftiLayout layout = NiftiLayout::Dcm2niix);
// int16 volumes are written as int16; with NiftiLayout::Native straight from vol.data (no copy).
void write_nifti(const Volume<int16_t>& vol, const std::filesystem::path& path,
                 NiftiLayout layout = NiftiLayout::Dcm2niix);
// Masks are written as uint8.
void write_nifti(const Volume<uint8_t>& vol, const std::filesystem::path& path,
                 NiftiLayout layout = NiftiLayout::Dcm2niix);

// Reads a 3D or 4D NIfTI of any orientation; intensities scaled by scl_slope/scl_inter.
Volume<float> read_nifti(const std::filesystem::path& path);

// Reorders voxels as dcm2niix stores them (rows flipped); geometry follows, world points stay.
Volume<float> to_dcm2niix_layout(const Volume<float>& vol);

}  // namespace aneura
