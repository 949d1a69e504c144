#include "io/dicom_writer.hpp"

#include <gdcmAttribute.h>
#include <gdcmImageChangeTransferSyntax.h>
#include <gdcmPixmapReader.h>
#include <gdcmPixmapWriter.h>
#include <gdcmSequenceOfItems.h>
#include <gdcmWriter.h>

#include <cstdio>
#include <sstream>

#include "core/atomic_file.hpp"
#include "core/error.hpp"

namespace fs = std::filesystem;

namespace aneura {

namespace {

std::string ds_list(std::initializer_list<double> v) {
  std::ostringstream s;
  s.precision(10);
  bool first = true;
  for (double x : v) {
    if (!first) s << '\\';
    s << x;
    first = false;
  }
  return s.str();
}

void put(gdcm::DataSet& ds, uint16_t g, uint16_t e, gdcm::VR vr, std::string value) {
  if (value.size() % 2) value += (vr == gdcm::VR::UI ? '\0' : ' ');
  gdcm::DataElement de(gdcm::Tag(g, e));
  de.SetVR(vr);
  de.SetByteValue(value.data(), static_cast<uint32_t>(value.size()));
  ds.Replace(de);
}

void put_us(gdcm::DataSet& ds, uint16_t g, uint16_t e, int v) {
  const uint16_t u = static_cast<uint16_t>(v);
  gdcm::DataElement de(gdcm::Tag(g, e));
  de.SetVR(gdcm::VR::US);
  de.SetByteValue(reinterpret_cast<const char*>(&u), 2);
  ds.Replace(de);
}

void put_seq(gdcm::DataSet& ds, uint16_t g, uint16_t e, const std::vector<gdcm::DataSet>& items) {
  gdcm::SmartPointer<gdcm::SequenceOfItems> sq = new gdcm::SequenceOfItems;
  sq->SetLengthToUndefined();
  for (const auto& nested : items) {
    gdcm::Item it;
    it.SetVLToUndefined();
    it.SetNestedDataSet(nested);
    sq->AddItem(it);
  }
  gdcm::DataElement de(gdcm::Tag(g, e));
  de.SetVR(gdcm::VR::SQ);
  de.SetValue(*sq);
  de.SetVLToUndefined();
  ds.Replace(de);
}

gdcm::DataSet one_item(uint16_t g, uint16_t e, gdcm::VR vr, const std::string& value) {
  gdcm::DataSet d;
  put(d, g, e, vr, value);
  return d;
}

gdcm::TransferSyntax::TSType gdcm_syntax(Syntax s) {
  switch (s) {
    case Syntax::ExplicitLittle:
      return gdcm::TransferSyntax::ExplicitVRLittleEndian;
    case Syntax::ImplicitLittle:
      return gdcm::TransferSyntax::ImplicitVRLittleEndian;
    case Syntax::ExplicitBig:
      return gdcm::TransferSyntax::ExplicitVRBigEndian;
    case Syntax::Deflated:
      return gdcm::TransferSyntax::DeflatedExplicitVRLittleEndian;
    case Syntax::JpegLossless:
      return gdcm::TransferSyntax::JPEGLosslessProcess14_1;
    case Syntax::JpegBaseline:
      return gdcm::TransferSyntax::JPEGBaselineProcess1;
    case Syntax::JpegLsLossless:
      return gdcm::TransferSyntax::JPEGLSLossless;
    case Syntax::Jpeg2000Lossless:
      return gdcm::TransferSyntax::JPEG2000Lossless;
    case Syntax::Rle:
      return gdcm::TransferSyntax::RLELossless;
  }
  return gdcm::TransferSyntax::ExplicitVRLittleEndian;
}

}  // namespace

std::string syntax_uid(Syntax s) {
  const char* uid = gdcm::TransferSyntax(gdcm_syntax(s)).GetString();
  return uid ? uid : "";
}

const char* syntax_name(Syntax s) {
  switch (s) {
    case Syntax::ExplicitLittle:
      return "explicit-le";
    case Syntax::ImplicitLittle:
      return "implicit-le";
    case Syntax::ExplicitBig:
      return "explicit-be";
    case Syntax::Deflated:
      return "deflated";
    case Syntax::JpegLossless:
      return "jpeg-lossless";
    case Syntax::JpegBaseline:
      return "jpeg-baseline";
    case Syntax::JpegLsLossless:
      return "jpeg-ls";
    case Syntax::Jpeg2000Lossless:
      return "jpeg2000";
    case Syntax::Rle:
      return "rle";
  }
  return "?";
}

void write_dicom(const DicomImageSpec& s, const fs::path& path, Syntax syntax) {
  const size_t npx = static_cast<size_t>(s.rows) * s.cols * s.frames;
  if (s.stored.size() != npx || s.positions.size() != static_cast<size_t>(s.frames))
    throw Error(ErrorCode::Internal, "DicomImageSpec: pixel or position count mismatch", path.string());
  const bool mr = s.modality == "MR";
  const std::string sop_class = s.enhanced ? (mr ? "1.2.840.10008.5.1.4.1.1.4.1" : "1.2.840.10008.5.1.4.1.1.2.1")
                                           : (mr ? "1.2.840.10008.5.1.4.1.1.4" : "1.2.840.10008.5.1.4.1.1.2");
  auto slope = [&](int f) { return s.slopes.empty() ? 1.0 : s.slopes[std::min<size_t>(f, s.slopes.size() - 1)]; };
  auto icpt = [&](int f) {
    return s.intercepts.empty() ? 0.0 : s.intercepts[std::min<size_t>(f, s.intercepts.size() - 1)];
  };

  gdcm::Writer w;
  gdcm::DataSet& ds = w.GetFile().GetDataSet();
  put(ds, 0x0008, 0x0008, gdcm::VR::CS, s.image_type);
  put(ds, 0x0008, 0x0016, gdcm::VR::UI, sop_class);
  put(ds, 0x0008, 0x0018, gdcm::VR::UI, s.sop_uid);
  put(ds, 0x0008, 0x0060, gdcm::VR::CS, s.modality);
  put(ds, 0x0010, 0x0020, gdcm::VR::LO, s.patient_id);
  if (!s.mr_acquisition_type.empty()) put(ds, 0x0018, 0x0023, gdcm::VR::CS, s.mr_acquisition_type);
  if (s.echo_number) put(ds, 0x0018, 0x0086, gdcm::VR::IS, std::to_string(s.echo_number));
  put(ds, 0x0020, 0x000d, gdcm::VR::UI, s.study_uid);
  put(ds, 0x0020, 0x000e, gdcm::VR::UI, s.series_uid);
  put(ds, 0x0020, 0x0013, gdcm::VR::IS, std::to_string(s.instance_number));
  put(ds, 0x0020, 0x0052, gdcm::VR::UI, s.frame_of_reference_uid);
  put_us(ds, 0x0028, 0x0002, 1);
  put(ds, 0x0028, 0x0004, gdcm::VR::CS, s.photometric);
  put_us(ds, 0x0028, 0x0010, s.rows);
  put_us(ds, 0x0028, 0x0011, s.cols);
  put_us(ds, 0x0028, 0x0100, s.bits_allocated);
  put_us(ds, 0x0028, 0x0101, s.bits_stored);
  put_us(ds, 0x0028, 0x0102, s.high_bit);
  put_us(ds, 0x0028, 0x0103, s.pixel_representation);

  const std::string iop = ds_list({s.row_cos[0], s.row_cos[1], s.row_cos[2], s.col_cos[0], s.col_cos[1], s.col_cos[2]});
  const std::string spacing = ds_list({s.row_spacing, s.col_spacing});
  auto ipp = [&](int f) { return ds_list({s.positions[f][0], s.positions[f][1], s.positions[f][2]}); };
  if (s.enhanced) {
    put(ds, 0x0028, 0x0008, gdcm::VR::IS, std::to_string(s.frames));
    gdcm::DataSet shared;
    if (s.write_orientation) put_seq(shared, 0x0020, 0x9116, {one_item(0x0020, 0x0037, gdcm::VR::DS, iop)});
    if (s.write_spacing) {
      gdcm::DataSet pm = one_item(0x0028, 0x0030, gdcm::VR::DS, spacing);
      if (s.slice_thickness > 0) put(pm, 0x0018, 0x0050, gdcm::VR::DS, ds_list({s.slice_thickness}));
      if (s.spacing_between_slices > 0) put(pm, 0x0018, 0x0088, gdcm::VR::DS, ds_list({s.spacing_between_slices}));
      put_seq(shared, 0x0028, 0x9110, {pm});
    }
    put_seq(ds, 0x5200, 0x9229, {shared});
    if (s.per_frame_groups) {
      std::vector<gdcm::DataSet> frames;
      for (int f = 0; f < s.frames; ++f) {
        gdcm::DataSet fg;
        if (s.write_position) put_seq(fg, 0x0020, 0x9113, {one_item(0x0020, 0x0032, gdcm::VR::DS, ipp(f))});
        gdcm::DataSet pvt = one_item(0x0028, 0x1052, gdcm::VR::DS, ds_list({icpt(f)}));
        put(pvt, 0x0028, 0x1053, gdcm::VR::DS, ds_list({slope(f)}));
        put_seq(fg, 0x0028, 0x9145, {pvt});
        frames.push_back(fg);
      }
      put_seq(ds, 0x5200, 0x9230, frames);
    } else {
      // Only top-level tags, as in some RSNA multi-frame files.
      if (s.write_position) put(ds, 0x0020, 0x0032, gdcm::VR::DS, ipp(0));
      if (s.write_orientation) put(ds, 0x0020, 0x0037, gdcm::VR::DS, iop);
      if (s.write_spacing) put(ds, 0x0028, 0x0030, gdcm::VR::DS, spacing);
      if (s.slice_thickness > 0) put(ds, 0x0018, 0x0050, gdcm::VR::DS, ds_list({s.slice_thickness}));
      if (s.spacing_between_slices > 0) put(ds, 0x0018, 0x0088, gdcm::VR::DS, ds_list({s.spacing_between_slices}));
      put(ds, 0x0028, 0x1052, gdcm::VR::DS, ds_list({icpt(0)}));
      put(ds, 0x0028, 0x1053, gdcm::VR::DS, ds_list({slope(0)}));
    }
  } else {
    if (s.write_position) put(ds, 0x0020, 0x0032, gdcm::VR::DS, ipp(0));
    if (s.write_orientation) put(ds, 0x0020, 0x0037, gdcm::VR::DS, iop);
    if (s.write_spacing) put(ds, 0x0028, 0x0030, gdcm::VR::DS, spacing);
    if (s.slice_thickness > 0) put(ds, 0x0018, 0x0050, gdcm::VR::DS, ds_list({s.slice_thickness}));
    if (s.spacing_between_slices > 0) put(ds, 0x0018, 0x0088, gdcm::VR::DS, ds_list({s.spacing_between_slices}));
    put(ds, 0x0028, 0x1052, gdcm::VR::DS, ds_list({icpt(0)}));
    put(ds, 0x0028, 0x1053, gdcm::VR::DS, ds_list({slope(0)}));
    put(ds, 0x0028, 0x1054, gdcm::VR::LO, s.modality == "CT" ? "HU" : "US");
  }

  gdcm::DataElement pixel(gdcm::Tag(0x7fe0, 0x0010));
  if (s.bits_allocated == 8) {
    std::vector<char> bytes(npx);
    for (size_t i = 0; i < npx; ++i) bytes[i] = static_cast<char>(s.stored[i] & 0xff);
    pixel.SetVR(gdcm::VR::OB);
    pixel.SetByteValue(bytes.data(), static_cast<uint32_t>(bytes.size()));
  } else {
    pixel.SetVR(gdcm::VR::OW);
    pixel.SetByteValue(reinterpret_cast<const char*>(s.stored.data()), static_cast<uint32_t>(npx * 2));
  }
  ds.Replace(pixel);

  w.GetFile().GetHeader().SetDataSetTransferSyntax(gdcm::TransferSyntax::ExplicitVRLittleEndian);
  write_atomically(path, [&](const fs::path& tmp) {
    w.SetFileName(tmp.c_str());
    if (!w.Write()) throw Error(ErrorCode::OutputFailed, "GDCM could not write DICOM", path.string());
    if (syntax == Syntax::ExplicitLittle) return;
    gdcm::PixmapReader r;
    r.SetFileName(tmp.c_str());
    if (!r.Read()) throw Error(ErrorCode::Internal, "cannot re-read written DICOM", path.string());
    gdcm::ImageChangeTransferSyntax change;
    change.SetTransferSyntax(gdcm_syntax(syntax));
    change.SetInput(r.GetPixmap());
    if (!change.Change())
      throw Error(ErrorCode::Internal, std::string("GDCM cannot encode ") + syntax_name(syntax), path.string());
    gdcm::PixmapWriter pw;
    pw.SetFile(r.GetFile());
    pw.SetPixmap(change.PixmapToPixmapFilter::GetOutput());
    pw.SetFileName(tmp.c_str());
    if (!pw.Write()) throw Error(ErrorCode::OutputFailed, "GDCM could not write transcoded DICOM", path.string());
  });
}

}  // namespace aneura
