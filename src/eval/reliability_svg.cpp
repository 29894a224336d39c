#include "eval/reliability_svg.h"

#include <fmt/format.h>

#include <cmath>
#include <iterator>

namespace abmll::eval {
namespace {

std::string escape_xml(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// The square plot area: x = confidence, y = accuracy, both [0, 1], `size` pixels from (left, top).
struct PlotArea {
  double left = 60, top = 50, size = 400;
  double x(double v) const { return left + v * size; }
  double y(double v) const { return top + (1 - v) * size; }
};

// Grid lines and tick labels every 0.1.
std::string grid(const PlotArea& p) {
  std::string svg;
  for (int i = 0; i <= 10; ++i) {
    const double v = i / 10.0;
    svg += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#eee\"/>\n", p.x(0), p.y(v),
                       p.x(1));
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{:.1f}</text>\n", p.x(0) - 6, p.y(v) + 4, v);
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{:.1f}</text>\n", p.x(v), p.y(0) + 16, v);
  }
  return svg;
}

// The diagonal of perfect calibration, the frame and the axis titles.
std::string axes(const PlotArea& p) {
  std::string svg;
  svg += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#555\" stroke-dasharray=\"4 3\"/>\n",
                     p.x(0), p.y(0), p.x(1), p.y(1));
  svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333\"/>\n",
                     p.x(0), p.y(1), p.size, p.size);
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">confidence</text>\n", p.x(0.5), p.y(0) + 34);
  svg += fmt::format("<text x=\"16\" y=\"{0}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {0})\">accuracy"
                     "</text>\n",
                     p.y(0.5));
  return svg;
}

}  // namespace

std::string reliability_svg(const CalibrationMetrics& m, const std::string& title) {
  const PlotArea plot;
  const double left = plot.left, width = plot.left + plot.size + 30, height = plot.top + plot.size + 60;
  auto x = [&](double v) { return plot.x(v); };
  auto y = [&](double v) { return plot.y(v); };

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{2}\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{3}</text>\n"
      "<text x=\"{2}\" y=\"38\">n = {4}, accuracy = {5:.4f}, ECE = {6:.4f}, MCE = {7:.4f}</text>\n",
      width, height, left, escape_xml(title), m.n, m.accuracy, m.ece, m.mce);

  svg += grid(plot);
  // Bars: the regular bins; the [1, 1] bin (confidence exactly 1) is drawn as a thin bar past the right edge.
  for (std::size_t b = 0; b < m.bins.size(); ++b) {
    const CalibrationBin& bin = m.bins[b];
    if (bin.count == 0) continue;
    const bool exact_one = b + 1 == m.bins.size();
    const double x0 = exact_one ? x(1) + 2 : x(bin.lo) + 1;
    const double w = exact_one ? 8 : x(bin.hi) - x(bin.lo) - 2;
    svg += fmt::format(
        "<rect x=\"{:.2f}\" y=\"{:.2f}\" width=\"{:.2f}\" height=\"{:.2f}\" fill=\"#4878d0\" fill-opacity=\"0.8\">"
        "<title>confidence [{:.3f}, {:.3f}{}: {} queries, accuracy {:.4f}, mean confidence {:.4f}</title></rect>\n",
        x0, y(bin.accuracy), w, y(0) - y(bin.accuracy), bin.lo, bin.hi, exact_one ? "]" : ")", bin.count,
        bin.accuracy, bin.confidence);
    svg += fmt::format("<line x1=\"{:.2f}\" y1=\"{:.2f}\" x2=\"{:.2f}\" y2=\"{:.2f}\" stroke=\"#d65f5f\" "
                       "stroke-width=\"2\"/>\n",
                       x0, y(bin.confidence), x0 + w, y(bin.confidence));
    svg += fmt::format("<text x=\"{:.2f}\" y=\"{:.2f}\" text-anchor=\"middle\" font-size=\"9\">{}</text>\n",
                       x0 + w / 2, y(bin.accuracy) - 3, bin.count);
  }
  svg += axes(plot);
  svg += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"10\" fill=\"#555\">bars: accuracy per bin (count above); "
                     "red: mean confidence; dashed: perfect calibration</text>\n",
                     x(0), y(0) + 50);
  svg += "</svg>\n";
  return svg;
}

std::string reliability_comparison_svg(const std::vector<ReliabilityCurve>& curves, const std::string& title) {
  // The plot area as in reliability_svg, with a legend to its right.
  const PlotArea plot;
  const double left = plot.left, top = plot.top, legend = plot.left + plot.size + 40;
  const double width = legend + 230, height = plot.top + plot.size + 60;
  auto x = [&](double v) { return plot.x(v); };
  auto y = [&](double v) { return plot.y(v); };
  static const char* const kColors[] = {"#4878d0", "#ee854a", "#6acc64", "#d65f5f",
                                        "#956cb4", "#8c613c", "#dc7ec0", "#797979"};

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{2}\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{3}</text>\n",
      width, height, left, escape_xml(title));
  svg += grid(plot);
  svg += axes(plot);
  for (std::size_t c = 0; c < curves.size(); ++c) {
    const ReliabilityCurve& curve = curves[c];
    const char* color = kColors[c % std::size(kColors)];
    std::string points, markers;
    for (const CalibrationBin& bin : curve.metrics.bins) {
      if (bin.count == 0) continue;
      points += fmt::format("{}{:.2f},{:.2f}", points.empty() ? "" : " ", x(bin.confidence), y(bin.accuracy));
      // Marker area proportional to the bin's share of the queries.
      const double radius = 2 + 6 * std::sqrt(static_cast<double>(bin.count) / static_cast<double>(curve.metrics.n));
      markers += fmt::format(
          "<circle cx=\"{:.2f}\" cy=\"{:.2f}\" r=\"{:.2f}\" fill=\"{}\"><title>{}: confidence [{:.3f}, {:.3f}{}: {} "
          "queries, accuracy {:.4f}, mean confidence {:.4f}</title></circle>\n",
          x(bin.confidence), y(bin.accuracy), radius, color, escape_xml(curve.label), bin.lo, bin.hi,
          bin.lo == bin.hi ? "]" : ")", bin.count, bin.accuracy, bin.confidence);
    }
    svg += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>\n", points, color);
    svg += markers;
    const double row = top + 10 + 36 * static_cast<double>(c);
    svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"14\" fill=\"{}\"/>\n", legend, row - 11, color);
    svg += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", legend + 20, row, escape_xml(curve.label));
    svg += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"10\" fill=\"#555\">ECE {:.4f}, accuracy {:.4f}, n = {}"
                       "</text>\n",
                       legend + 20, row + 14, curve.metrics.ece, curve.metrics.accuracy, curve.metrics.n);
  }
  svg += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"10\" fill=\"#555\">points: accuracy against mean "
                     "confidence per bin (area: share of queries); dashed: perfect calibration</text>\n",
                     x(0), y(0) + 50);
  svg += "</svg>\n";
  return svg;
}

}  // namespace abmll::eval
