#include "eval/reliability_svg.h"

#include <fmt/format.h>

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

}  // namespace

std::string reliability_svg(const CalibrationMetrics& m, const std::string& title) {
  // Plot area: x = confidence, y = accuracy, both [0, 1], in a square of `size` pixels.
  const double left = 60, top = 50, size = 400, width = left + size + 30, height = top + size + 60;
  auto x = [&](double v) { return left + v * size; };
  auto y = [&](double v) { return top + (1 - v) * size; };

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{2}\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{3}</text>\n"
      "<text x=\"{2}\" y=\"38\">n = {4}, accuracy = {5:.4f}, ECE = {6:.4f}, MCE = {7:.4f}</text>\n",
      width, height, left, escape_xml(title), m.n, m.accuracy, m.ece, m.mce);

  // Grid and axes.
  for (int i = 0; i <= 10; ++i) {
    const double v = i / 10.0;
    svg += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#eee\"/>\n", x(0), y(v), x(1));
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{:.1f}</text>\n", x(0) - 6, y(v) + 4, v);
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{:.1f}</text>\n", x(v), y(0) + 16, v);
  }
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
  svg += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#555\" stroke-dasharray=\"4 3\"/>\n",
                     x(0), y(0), x(1), y(1));
  svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333\"/>\n", x(0),
                     y(1), size, size);
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">confidence</text>\n", x(0.5), y(0) + 34);
  svg += fmt::format("<text x=\"16\" y=\"{0}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {0})\">accuracy"
                     "</text>\n",
                     y(0.5));
  svg += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"10\" fill=\"#555\">bars: accuracy per bin (count above); "
                     "red: mean confidence; dashed: perfect calibration</text>\n",
                     x(0), y(0) + 50);
  svg += "</svg>\n";
  return svg;
}

}  // namespace abmll::eval
