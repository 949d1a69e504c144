// Reorientation by axis permutation and flips only (no interpolation, exact): the output's axes
// point as close as possible to the named directions, e.g. "RAS" (i -> Right, j -> Anterior,
// k -> Superior, the NIfTI/nibabel convention) or "LPS" (DICOM). Every voxel keeps its world
// position; only its index changes.
#pragma once
#include <string>

#include "core/volume.hpp"

namespace aneura {

// For each output axis: the input axis it reads and whether that axis is reversed.
struct AxisMap {
  int from[3] = {0, 1, 2};
  bool flip[3] = {false, false, false};
  bool identity() const;
};

// The permutation/flip that brings `g` closest to `code` (three letters from L/R, P/A, S/I).
AxisMap orientation_map(const Geometry& g, const std::string& code);

// dcm2niix's rotation of 3D acquisitions (nii_setOrtho), for `g` in dcm2niix's layout (rows
// flipped): none when the RAS affine is already diagonal and positive; else each input axis is
// reversed as the corner nearest the lowest coordinates of all corners says, and the axes are
// permuted to maximise the sum of the RAS affine's entries times the signed permutation matrix.
AxisMap dcm2niix_rotation(const Geometry& g);

// The grid after applying the map (same voxel centres, new index order).
Geometry reorient_geometry(const Geometry& g, const AxisMap& m);

// Applies the map (volumes stacked along t stay stacked).
template <class T>
Volume<T> reorient(const Volume<T>& in, const AxisMap& m);

template <class T>
Volume<T> reorient(const Volume<T>& in, const std::string& code) {
  return reorient(in, orientation_map(in.geom, code));
}

}  // namespace aneura
