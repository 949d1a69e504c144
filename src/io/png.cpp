#include "io/png.hpp"

#include <itkImage.h>
#include <itkImageFileReader.h>
#include <itkImageFileWriter.h>
#include <itkPNGImageIO.h>
#include <itkRGBPixel.h>

#include "core/atomic_file.hpp"
#include "core/error.hpp"

namespace fs = std::filesystem;

namespace aneura {

void write_png(const RgbImage& img, const fs::path& path) {
  using Image = itk::Image<itk::RGBPixel<uint8_t>, 2>;
  auto im = Image::New();
  Image::SizeType size;
  size[0] = static_cast<itk::SizeValueType>(img.width);
  size[1] = static_cast<itk::SizeValueType>(img.height);
  im->SetRegions(size);
  im->Allocate();
  std::copy(img.rgb.begin(), img.rgb.end(), reinterpret_cast<uint8_t*>(im->GetBufferPointer()));
  write_atomically(path, [&](const fs::path& tmp) {
    try {
      auto w = itk::ImageFileWriter<Image>::New();
      w->SetImageIO(itk::PNGImageIO::New());
      w->SetFileName(tmp.string());
      w->SetInput(im);
      w->Update();
    } catch (const itk::ExceptionObject& e) {
      throw Error(ErrorCode::OutputFailed, std::string("PNG write failed: ") + e.GetDescription(), path.string());
    }
  });
}

void write_png(const Gray16Image& img, const fs::path& path) {
  using Image = itk::Image<uint16_t, 2>;
  auto im = Image::New();
  Image::SizeType size;
  size[0] = static_cast<itk::SizeValueType>(img.width);
  size[1] = static_cast<itk::SizeValueType>(img.height);
  im->SetRegions(size);
  im->Allocate();
  std::copy(img.pixels.begin(), img.pixels.end(), im->GetBufferPointer());
  write_atomically(path, [&](const fs::path& tmp) {
    try {
      auto w = itk::ImageFileWriter<Image>::New();
      w->SetImageIO(itk::PNGImageIO::New());
      w->SetFileName(tmp.string());
      w->SetInput(im);
      w->Update();
    } catch (const itk::ExceptionObject& e) {
      throw Error(ErrorCode::OutputFailed, std::string("PNG write failed: ") + e.GetDescription(), path.string());
    }
  });
}

Gray16Image read_png_gray16(const fs::path& path) {
  using Image = itk::Image<uint16_t, 2>;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw Error(ErrorCode::InputNotFound, "PNG file not found", path.string());
  try {
    auto r = itk::ImageFileReader<Image>::New();
    r->SetImageIO(itk::PNGImageIO::New());
    r->SetFileName(path.string());
    r->Update();
    const auto size = r->GetOutput()->GetLargestPossibleRegion().GetSize();
    Gray16Image g;
    g.width = static_cast<int>(size[0]);
    g.height = static_cast<int>(size[1]);
    const uint16_t* p = r->GetOutput()->GetBufferPointer();
    g.pixels.assign(p, p + static_cast<size_t>(g.width) * g.height);
    return g;
  } catch (const itk::ExceptionObject& e) {
    throw Error(ErrorCode::CorruptInput, std::string("cannot read PNG: ") + e.GetDescription(), path.string());
  }
}

}  // namespace aneura
