#include "report/report.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/labels.hpp"
#include "core/uid.hpp"
#include "evaluate/evaluation.hpp"
#include "io/nifti.hpp"
#include "report/plot.hpp"
#include "report/svg.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {

std::pair<std::vector<double>, std::vector<double>> roc_curve(const std::vector<int>& truth,
                                                              const std::vector<double>& score) {
  const double pos = std::count(truth.begin(), truth.end(), 1), neg = static_cast<double>(truth.size()) - pos;
  if (pos == 0 || neg == 0) return {};
  std::vector<size_t> order(truth.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] > score[b]; });
  std::vector<double> fpr{0}, tpr{0};
  double tp = 0, fp = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    (truth[order[i]] ? tp : fp) += 1;
    if (i + 1 == order.size() || score[order[i + 1]] != score[order[i]]) {
      fpr.push_back(fp / neg);
      tpr.push_back(tp / pos);
    }
  }
  return {fpr, tpr};
}

namespace {

std::string esc(const std::string& s) { return xml_escape(s); }

std::string num(double v, int digits = 3) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(digits);
  s << v;
  return s.str();
}

// One ROC panel per column: the curve, the chance diagonal, the AUC and the positives.
std::string roc_panels(const ProbabilityTable& pred, const TruthTable& truth, const CompetitionScore& score,
                       const std::array<int, kNumLabels>& positives) {
  std::string out;
  for (int c = 0; c < kNumLabels; ++c) {
    std::vector<int> t;
    std::vector<double> s;
    for (const auto& [uid, l] : truth) {
      t.push_back(l[c]);
      s.push_back(pred.at(uid)[c]);
    }
    SvgChart chart;
    chart.title = label_names()[c];
    chart.x_label = "false positive rate";
    chart.y_label = "true positive rate";
    chart.width = 300;
    chart.height = 270;
    chart.series.push_back({"chance", "#999999", {0, 1}, {0, 1}, false, true});
    const auto [fpr, tpr] = roc_curve(t, s);
    const std::string colour = c == kPresentColumn ? "#c62828" : "#1f5fbf";
    if (!fpr.empty()) chart.series.push_back({"ROC", colour, fpr, tpr, false, false});
    chart.notes.push_back(score.auc[c] ? "AUC " + num(*score.auc[c]) : "AUC n/a (one class)");
    chart.notes.push_back(std::to_string(positives[c]) + " positive of " + std::to_string(t.size()));
    out += render_svg(chart) + "\n";
  }
  return out;
}

struct Curve {
  std::string name;
  std::vector<double> epoch, train, val, selection;
};

std::vector<Curve> read_logs(const fs::path& work) {
  std::vector<Curve> out;
  std::error_code ec;
  const fs::path runs = work / "runs";
  if (!fs::is_directory(runs, ec)) return out;
  std::vector<fs::path> logs;
  for (const auto& cfg : fs::directory_iterator(runs, ec))
    for (const auto& fold : fs::directory_iterator(cfg.path(), ec))
      if (fs::is_regular_file(fold.path() / "log.jsonl", ec)) logs.push_back(fold.path() / "log.jsonl");
  std::sort(logs.begin(), logs.end());
  for (const auto& f : logs) {
    Curve c;
    c.name = f.parent_path().parent_path().filename().string() + " / " + f.parent_path().filename().string();
    std::ifstream in(f);
    size_t line_no = 0;
    for (std::string line; std::getline(in, line);) {
      ++line_no;
      try {
        const json j = json::parse(line);
        c.epoch.push_back(j.at("epoch"));
        c.train.push_back(j.at("train_loss"));
        c.val.push_back(j.contains("val_loss") ? j.at("val_loss").get<double>() : NAN);
        c.selection.push_back(j.contains("val_selection") ? j.at("val_selection").get<double>() : NAN);
      } catch (const json::exception& e) {
        throw Error(ErrorCode::CorruptInput, std::string("bad training log line: ") + e.what(),
                    f.string() + ":" + std::to_string(line_no));
      }
    }
    if (!c.epoch.empty()) out.push_back(c);
  }
  return out;
}

// A fold's training curves: the losses per epoch, and the validation selection score.
std::string curves_svg(const Curve& c) {
  double lo = 1e300, hi = -1e300;
  for (const auto* v : {&c.train, &c.val})
    for (double x : *v)
      if (std::isfinite(x)) lo = std::min(lo, x), hi = std::max(hi, x);
  const double x0 = c.epoch.front() - 0.5, x1 = c.epoch.back() + 0.5;
  SvgChart loss;
  loss.title = c.name + ": loss";
  loss.x_label = "epoch";
  loss.y_label = "loss";
  loss.width = 420;
  loss.xmin = x0, loss.xmax = x1, loss.ymin = std::min(0.0, lo), loss.ymax = hi > 0 ? hi * 1.05 : 1;
  loss.series.push_back({"training loss", "#1f5fbf", c.epoch, c.train, false, false});
  loss.series.push_back({"validation loss", "#e67e22", c.epoch, c.val, true, false});
  SvgChart sel;
  sel.title = c.name + ": validation";
  sel.x_label = "epoch";
  sel.y_label = "selection score";
  sel.width = 420;
  sel.xmin = x0, sel.xmax = x1, sel.ymin = 0, sel.ymax = 1;
  sel.series.push_back({"validation selection score", "#2e8b57", c.epoch, c.selection, true, false});
  for (size_t i = c.selection.size(); i-- > 0;)
    if (std::isfinite(c.selection[i])) {
      sel.notes.push_back("last " + num(c.selection[i]) + " (epoch " + num(c.epoch[i], 0) + ")");
      break;
    }
  return render_svg(loss) + "\n" + render_svg(sel) + "\n";
}

// Tri-planar MIP of the ROI with the heatmap MIP in red, predicted points as green crosses and
// true points as yellow rings. Panels: axial (R-L x A-P), coronal (R-L x S), sagittal (A-P x S).
RgbImage mip_picture(const Volume<float>& roi, const Volume<float>& heat, const std::vector<Vec3>& predicted,
                     const std::vector<Vec3>& truth) {
  const auto& n = roi.geom.size;
  float lo = *std::min_element(roi.data.begin(), roi.data.end()),
        hi = *std::max_element(roi.data.begin(), roi.data.end());
  if (hi <= lo) hi = lo + 1;
  const int scale = std::max<int>(1, static_cast<int>(std::lround(180.0 / std::max({n[0], n[1], n[2]}))));
  struct Panel {
    int u, v, w;
  };
  const Panel panels[3] = {{0, 1, 2}, {0, 2, 1}, {1, 2, 0}};
  int width = 0;
  for (const auto& p : panels) width += static_cast<int>(n[p.u]) * scale + 8;
  const int height = static_cast<int>(std::max({n[1], n[2]})) * scale;
  RgbImage img = blank_canvas(width, height, {0, 0, 0});
  int xoff = 0;
  for (const auto& p : panels) {
    const int64_t nu = n[p.u], nv = n[p.v], nw = n[p.w];
    for (int64_t a = 0; a < nu; ++a)
      for (int64_t b = 0; b < nv; ++b) {
        float m = -1e30f, h = 0;
        for (int64_t c = 0; c < nw; ++c) {
          int64_t idx[3];
          idx[p.u] = a, idx[p.v] = b, idx[p.w] = c;
          m = std::max(m, roi.at(idx[0], idx[1], idx[2]));
          h = std::max(h, heat.at(idx[0], idx[1], idx[2]));
        }
        const double g = std::clamp((m - lo) / (hi - lo), 0.f, 1.f) * 255;
        const double al = h > 0.1 ? 0.75 * std::min(1.0f, h) : 0.0;
        const Rgb col{static_cast<uint8_t>(g * (1 - al) + 255 * al), static_cast<uint8_t>(g * (1 - al)),
                      static_cast<uint8_t>(g * (1 - al))};
        // u grows to the right; v upward (row 0 at the top)
        for (int y = 0; y < scale; ++y)
          for (int x = 0; x < scale; ++x) {
            const int px = xoff + static_cast<int>(a) * scale + x, py = height - 1 - (static_cast<int>(b) * scale + y);
            if (py >= 0) std::copy(col.begin(), col.end(), img.at(px, py));
          }
      }
    auto mark = [&](const Vec3& w, Rgb c, bool ring) {
      const Vec3 ijk = roi.geom.world_to_index(w);
      const int px = xoff + static_cast<int>(std::lround(ijk[p.u] * scale + scale / 2.0));
      const int py = height - 1 - static_cast<int>(std::lround(ijk[p.v] * scale + scale / 2.0));
      if (ring) {
        for (int t = 0; t < 64; ++t) {
          const double ang = t * 2 * M_PI / 64;
          const int x = px + static_cast<int>(std::lround(7 * std::cos(ang))),
                    y = py + static_cast<int>(std::lround(7 * std::sin(ang)));
          if (x >= 0 && y >= 0 && x < img.width && y < img.height) std::copy(c.begin(), c.end(), img.at(x, y));
        }
      } else {
        draw_line(img, px - 5, py, px + 5, py, c, 2);
        draw_line(img, px, py - 5, px, py + 5, c, 2);
      }
    };
    for (const auto& w : truth) mark(w, {250, 220, 40}, true);
    for (const auto& w : predicted) mark(w, {40, 230, 60}, false);
    xoff += static_cast<int>(nu) * scale + 8;
  }
  return img;
}

}  // namespace

ReportResult write_report(const ReportOptions& o) {
  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (ec) throw Error(ErrorCode::OutputFailed, "cannot create the report folder: " + ec.message(), o.out.string());
  ReportResult r;
  std::ostringstream html;
  html << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>aneura report</title>\n"
          "<style>body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse}"
          "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
          "img{border:1px solid #ddd;margin:4px 0}.small{color:#666;font-size:90%}"
          ".panels{display:flex;flex-wrap:wrap;gap:6px}svg.chart{border:1px solid #ddd}</style></head><body>\n"
          "<h1>aneura report</h1>\n";
  auto picture = [&](const RgbImage& img, const std::string& name) {
    write_png(img, o.out / name);
    r.pictures.push_back(o.out / name);
    return "<img src=\"" + name + "\" width=\"" + std::to_string(img.width) + "\" height=\"" +
           std::to_string(img.height) + "\">";
  };

  // Scores and ROC
  ProbabilityTable pred;
  if (!o.predictions.empty()) pred = read_predictions(o.predictions);
  if (!o.predictions.empty() && !o.truth.empty()) {
    const TruthTable truth = read_truth(o.truth);
    const Evaluation e = evaluate(pred, truth);
    if (e.score.score) r.score = *e.score.score;
    html << "<h2>Competition score</h2>\n<p><b>" << (e.score.score ? num(*e.score.score, 4) : std::string("undefined"))
         << "</b> over " << e.series << " series (weighted AUC: Aneurysm Present 13/26, each location 1/26).";
    if (!e.score.score && defined_columns_score(e.score))
      html << " Some locations have no positive series here; the same weighting over the "
           << kNumLabels - e.score.undefined.size() << " defined columns gives <b>"
           << num(*defined_columns_score(e.score), 4) << "</b>.";
    html << "</p>\n";
    html << "<table><tr><th>column</th><th>AUC</th><th>positives</th></tr>\n";
    for (int c = 0; c < kNumLabels; ++c)
      html << "<tr><td>" << esc(label_names()[c]) << "</td><td>"
           << (e.score.auc[c] ? num(*e.score.auc[c]) : "n/a (one class)") << "</td><td>" << e.positives[c]
           << "</td></tr>\n";
    html << "</table>\n";
    if (!o.largest_radius_mm.empty()) {
      html << "<h3>Aneurysm Present by aneurysm size</h3>\n<p class=\"small\">The positive series whose largest "
              "aneurysm's radius "
              "is in the band against every negative series (the synthetic truth knows the sizes).</p>\n"
              "<table><tr><th>largest radius</th><th>AUC</th><th>positives</th></tr>\n";
      for (const auto& b : present_auc_by_radius(pred, truth, o.largest_radius_mm))
        html << "<tr><td>"
             << (std::isfinite(b.hi_mm) ? num(b.lo_mm, 0) + "-" + num(b.hi_mm, 0) + " mm"
                                        : "&ge; " + num(b.lo_mm, 0) + " mm")
             << "</td><td>" << (b.auc ? num(*b.auc) : "n/a") << "</td><td>" << b.positives << "</td></tr>\n";
      html << "</table>\n";
    }
    if (!o.modality.empty()) {
      html << "<h3>By modality</h3>\n<table><tr><th>modality</th><th>series</th><th>positive</th>"
              "<th>Aneurysm Present AUC</th><th>score over the defined columns</th></tr>\n";
      for (const auto& g : scores_by_group(pred, truth, o.modality))
        html << "<tr><td>" << esc(g.group) << "</td><td>" << g.series << "</td><td>" << g.positives << "</td><td>"
             << (g.present_auc ? num(*g.present_auc) : "n/a") << "</td><td>"
             << (g.defined_columns_score ? num(*g.defined_columns_score) : "n/a") << "</td></tr>\n";
      html << "</table>\n";
    }
    html << "<h2>ROC curves</h2>\n<p class=\"small\">One panel per column, in train.csv's order; Aneurysm Present "
            "in red; the dashed diagonal is chance.</p>\n<div class=\"panels\">\n"
         << roc_panels(pred, truth, e.score, e.positives) << "</div>\n";
  }

  // Training curves
  const auto curves = read_logs(o.work);
  if (!curves.empty()) {
    html << "<h2>Training</h2>\n<p class=\"small\">Per fold: the training and validation loss per epoch, and the "
            "validation selection score (the competition score, or its weighting over the columns defined in the "
            "validation fold).</p>\n";
    for (const auto& c : curves)
      html << "<h3>" << esc(c.name) << "</h3>\n<div class=\"panels\">\n" << curves_svg(c) << "</div>\n";
  }

  // MIPs for selected series: highest predicted Aneurysm Present first
  if (!o.points.empty() && !pred.empty()) {
    std::vector<std::pair<double, std::string>> order;
    for (const auto& [uid, p] : pred)
      if (is_valid_uid(uid) && fs::exists(o.points / (uid + "_heatmap.nii"), ec))
        order.push_back({-p[kNumLabels - 1], uid});
    std::sort(order.begin(), order.end());
    if (!order.empty())
      html << "<h2>Series</h2>\n<p class=\"small\">Maximum-intensity projections of the region of interest (axial, "
              "coronal, "
              "sagittal, left to right; neurological view: the patient's right on the right, anterior up in the axial "
              "panel, "
              "superior up in the others, anterior on the right in the sagittal one); red: "
              "aneurysm heatmap; green crosses: predicted points; yellow rings: true localizers.</p>\n";
    for (size_t i = 0; i < order.size() && static_cast<int>(i) < o.mip_series; ++i) {
      const std::string& uid = order[i].second;
      const Volume<float> roi = read_nifti(o.points / (uid + "_roi.nii"));
      const Volume<float> heat = read_nifti(o.points / (uid + "_heatmap.nii"));
      std::vector<Vec3> pts;
      std::string where;
      std::ifstream in(o.points / (uid + ".json"));
      if (in) {
        const json j = json::parse(in, nullptr, false);
        if (j.is_object() && j.contains("points"))
          for (const auto& p : j.at("points")) {
            pts.push_back(p.at("world_lps_mm").get<Vec3>());
            where +=
                esc(p.at("location").get<std::string>()) + " (" + num(p.at("probability").get<double>(), 2) + "); ";
          }
      }
      const auto tp = o.true_points.count(uid) ? o.true_points.at(uid) : std::vector<Vec3>{};
      html << "<h3>" << esc(uid) << "</h3>\n<p>Aneurysm Present " << num(-order[i].first) << "; points: " << where
           << "</p>\n"
           << picture(mip_picture(roi, heat, pts, tp), "series_" + std::to_string(i) + ".png") << "\n";
    }
  }
  html << "</body></html>\n";
  r.html = o.out / "index.html";
  write_text_atomically(r.html, html.str());
  return r;
}

}  // namespace aneura
