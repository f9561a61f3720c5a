"""A small plot widget for variograms: matplotlib when QGIS's Python has it, else QPainter."""

from __future__ import annotations

from dataclasses import dataclass, field

from qgis.PyQt.QtCore import QPointF, QRectF, Qt
from qgis.PyQt.QtGui import QColor, QPainter, QPen
from qgis.PyQt.QtWidgets import QSizePolicy, QWidget

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


@dataclass
class Series:
    """One thing to draw: points (experimental variogram) or a line (model)."""

    label: str
    x: list[float]
    y: list[float]
    points: bool = True
    colour: str = "#1f77b4"
    counts: list[int] = field(default_factory=list)


def make_plot_widget(parent=None):
    """A matplotlib canvas if ``matplotlib`` imports, else :class:`PainterPlot`."""
    try:
        return MatplotlibPlot(parent)
    except Exception:  # no matplotlib (or no Qt backend) in QGIS's Python
        return PainterPlot(parent)


class MatplotlibPlot(QWidget):
    """Embedded matplotlib figure."""

    backend = "matplotlib"

    def __init__(self, parent=None):
        super().__init__(parent)
        from matplotlib.figure import Figure

        try:
            from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg as Canvas
        except ImportError:
            from matplotlib.backends.backend_qt5agg import FigureCanvasQTAgg as Canvas
        from qgis.PyQt.QtWidgets import QVBoxLayout

        self.figure = Figure(figsize=(6, 4), dpi=96, tight_layout=True)
        self.canvas = Canvas(self.figure)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def plot(self, series: list[Series], title: str = "", xlabel: str = "lag distance",
             ylabel: str = "semivariance") -> None:
        self.figure.clear()
        ax = self.figure.add_subplot(111)
        point_series = [s for s in series if s.points]
        for s in series:
            if s.points:
                ax.plot(s.x, s.y, "o", color=s.colour, label=s.label, markersize=5)
                if len(point_series) > 1:
                    continue  # pair counts of several directions overlap: only with one
                for x, y, n in zip(s.x, s.y, s.counts):
                    ax.annotate(str(n), (x, y), textcoords="offset points", xytext=(0, 5),
                                fontsize=6, ha="center", color="#555555")
            else:
                ax.plot(s.x, s.y, "-", color=s.colour, label=s.label, linewidth=1.8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        if title:
            ax.set_title(title, fontsize=10)
        if series:
            # outside the axes: a legend over the points hides what it explains
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                      borderaxespad=0.0)
            self.figure.subplots_adjust(right=0.75)
        ax.grid(True, alpha=0.3)
        self.canvas.draw()


class PainterPlot(QWidget):
    """Fallback plot drawn with QPainter (axes, points, lines, legend)."""

    backend = "qpainter"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.series: list[Series] = []
        self.title = ""
        self.setMinimumSize(400, 300)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def plot(self, series: list[Series], title: str = "", xlabel: str = "lag distance",
             ylabel: str = "semivariance") -> None:
        self.series, self.title = list(series), title
        self.update()

    def paintEvent(self, event):  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor("white"))
        m = 40
        area = QRectF(m, 20, max(self.width() - 2 * m, 10), max(self.height() - 20 - m, 10))
        painter.setPen(QPen(QColor("#333333"), 1))
        painter.drawLine(area.bottomLeft(), area.bottomRight())
        painter.drawLine(area.bottomLeft(), area.topLeft())
        xs = [x for s in self.series for x in s.x] or [1.0]
        ys = [y for s in self.series for y in s.y] or [1.0]
        xmax, ymax = max(max(xs), 1e-12) * 1.05, max(max(ys), 1e-12) * 1.1

        def pt(x, y):
            return QPointF(area.left() + area.width() * x / xmax,
                           area.bottom() - area.height() * y / ymax)

        for s in self.series:
            painter.setPen(QPen(QColor(s.colour), 2))
            if s.points:
                painter.setBrush(QColor(s.colour))
                for x, y in zip(s.x, s.y):
                    painter.drawEllipse(pt(x, y), 3.5, 3.5)
            else:
                for (x0, y0), (x1, y1) in zip(zip(s.x, s.y), zip(s.x[1:], s.y[1:])):
                    painter.drawLine(pt(x0, y0), pt(x1, y1))
        painter.setPen(QColor("#333333"))
        painter.drawText(QRectF(0, 0, self.width(), 18), Qt.AlignmentFlag.AlignCenter, self.title)
        painter.drawText(QRectF(area.left(), area.bottom() + 4, area.width(), 16),
                         Qt.AlignmentFlag.AlignRight, f"lag distance (max {xmax:.4g})")
        for i, s in enumerate(self.series):
            painter.setPen(QColor(s.colour))
            painter.drawText(QPointF(area.right() - 160, area.bottom() - 12 - 14 * i), s.label)
        painter.end()
