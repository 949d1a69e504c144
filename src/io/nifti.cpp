#include "io/nifti.hpp"

#include <itkImage.h>
#include <itkImageFileReader.h>
#include <itkImageFileWriter.h>
#include <itkNiftiImageIO.h>

#include <cmath>
#include <limits>
#include <type_traits>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "io/itk_image.hpp"

namespace fs = std::filesystem;

namespace aneura {

namespace {

// flip_rows: store rows bottom-up (dcm2niix layout) while copying, without a flipped copy.
template <class T, unsigned D, class Src>
void write_typed(const Volume<Src>& vol, const fs::path& file, bool flip_rows) {
  const Geometry geom = flip_rows ? vol.geom.flipped(1) : vol.geom;
  using Image = itk::Image<T, D>;
  auto img = make_itk_image<Image>(geom, vol.volumes);
  if constexpr (std::is_same_v<T, Src>) {
    if (!flip_rows) {  // same type and order: ITK writes straight from the volume, no copy
      img->GetPixelContainer()->SetImportPointer(const_cast<T*>(vol.data.data()), vol.data.size(), false);
      auto writer = itk::ImageFileWriter<Image>::New();
      writer->SetImageIO(itk::NiftiImageIO::New());
      writer->SetFileName(file.string());
      writer->SetInput(img);
      writer->Update();
      return;
    }
  }
  img->Allocate();
  T* out = img->GetBufferPointer();
  const int64_t nx = geom.size[0], ny = geom.size[1], rows = ny * geom.size[2] * vol.volumes;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t j = r % ny, src_row = flip_rows ? r - j + (ny - 1 - j) : r;
    const Src* in = vol.data.data() + src_row * nx;
    T* o = out + r * nx;
    for (int64_t i = 0; i < nx; ++i) o[i] = static_cast<T>(in[i]);
  }
  auto writer = itk::ImageFileWriter<Image>::New();
  writer->SetImageIO(itk::NiftiImageIO::New());
  writer->SetFileName(file.string());
  writer->SetInput(img);
  writer->Update();
}

template <class T, class Src>
void write_dims(const Volume<Src>& vol, const fs::path& file, bool flip_rows) {
  if (vol.volumes > 1)
    write_typed<T, 4>(vol, file, flip_rows);
  else
    write_typed<T, 3>(vol, file, flip_rows);
}

}  // namespace

Volume<float> to_dcm2niix_layout(const Volume<float>& vol) { return flip_axis(vol, 1); }

template <class T>
void write_same_type(const Volume<T>& vol, const fs::path& path, NiftiLayout layout) {
  write_atomically(path, [&](const fs::path& tmp) {
    try {
      write_dims<T>(vol, tmp, layout == NiftiLayout::Dcm2niix);
    } catch (const itk::ExceptionObject& e) {
      throw Error(ErrorCode::OutputFailed, std::string("NIfTI write failed: ") + e.GetDescription(), path.string());
    }
  });
}

void write_nifti(const Volume<int16_t>& vol, const fs::path& path, NiftiLayout layout) {
  write_same_type(vol, path, layout);
}

void write_nifti(const Volume<uint8_t>& vol, const fs::path& path, NiftiLayout layout) {
  write_same_type(vol, path, layout);
}

void write_nifti(const Volume<float>& vol, const fs::path& path, NiftiLayout layout) {
  const bool flip = layout == NiftiLayout::Dcm2niix;
  bool integral = true;
  float lo = std::numeric_limits<float>::max(), hi = std::numeric_limits<float>::lowest();
  for (float v : vol.data) {
    if (integral && v != std::nearbyint(v)) integral = false;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  write_atomically(path, [&](const fs::path& tmp) {
    try {
      if (integral && lo >= -32768 && hi <= 32767)
        write_dims<int16_t>(vol, tmp, flip);
      else if (integral && lo >= 0 && hi <= 65535)
        write_dims<uint16_t>(vol, tmp, flip);
      else if (integral && lo >= -2147483648.0f && hi <= 2147483520.0f)
        write_dims<int32_t>(vol, tmp, flip);
      else
        write_dims<float>(vol, tmp, flip);
    } catch (const itk::ExceptionObject& e) {
      throw Error(ErrorCode::OutputFailed, std::string("NIfTI write failed: ") + e.GetDescription(), path.string());
    }
  });
}

namespace {

// Reads into an ITK image of the file's own dimension: reading a 3D .nii.gz into a 4D image
// returns garbled voxels with ITK 5.2.
template <unsigned D>
Volume<float> read_typed(const fs::path& path) {
  using Image = itk::Image<float, D>;
  auto reader = itk::ImageFileReader<Image>::New();
  reader->SetImageIO(itk::NiftiImageIO::New());
  reader->SetFileName(path.string());
  reader->Update();
  typename Image::Pointer img = reader->GetOutput();
  const auto size = img->GetLargestPossibleRegion().GetSize();
  Geometry g;
  for (unsigned a = 0; a < 3; ++a) {
    g.size[a] = a < D ? static_cast<int64_t>(size[a]) : 1;
    g.spacing[a] = a < D ? img->GetSpacing()[a] : 1.0;
    g.origin[a] = a < D ? img->GetOrigin()[a] : 0.0;
    for (unsigned r = 0; r < 3; ++r)
      g.direction[r][a] = (a < D && r < D) ? img->GetDirection()[r][a] : (r == a ? 1.0 : 0.0);
  }
  Volume<float> vol(g, D == 4 ? static_cast<int64_t>(size[D - 1]) : 1);
  std::copy(img->GetBufferPointer(), img->GetBufferPointer() + vol.data.size(), vol.data.begin());
  return vol;
}

}  // namespace

Volume<float> read_nifti(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw Error(ErrorCode::InputNotFound, "NIfTI file not found", path.string());
  auto io = itk::NiftiImageIO::New();
  if (!io->CanReadFile(path.c_str())) throw Error(ErrorCode::CorruptInput, "not a readable NIfTI file", path.string());
  try {
    io->SetFileName(path.string());
    io->ReadImageInformation();
    switch (io->GetNumberOfDimensions()) {
      case 2:
        return read_typed<2>(path);
      case 3:
        return read_typed<3>(path);
      case 4:
        return read_typed<4>(path);
      default:
        throw Error(ErrorCode::Unsupported, "NIfTI with " + std::to_string(io->GetNumberOfDimensions()) + " dimensions",
                    path.string());
    }
  } catch (const itk::ExceptionObject& e) {
    throw Error(ErrorCode::CorruptInput, std::string("cannot read NIfTI: ") + e.GetDescription(), path.string());
  }
}

}  // namespace aneura
