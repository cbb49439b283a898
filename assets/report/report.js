// regulab report: draws the charts embedded in #report-data with uPlot. The data is
// computed by regulab (src/html_report/charts.rs); this script only draws it, wires the
// run toggles, and records what it drew (and any error) in #report-status.
(function () {
  "use strict";
  var status = document.getElementById("report-status");
  var plots = [];
  var WHOLE_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 1e5, 2e5, 5e5, 1e6];

  function formatValue(value) {
    if (value == null || !isFinite(value)) return "–";
    var magnitude = Math.abs(value);
    if (magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e5)) return value.toExponential(3);
    return Number(value.toPrecision(4)).toString();
  }

  function chartWidth(box) {
    return Math.max(320, Math.floor(box.getBoundingClientRect().width) - 4);
  }

  // Line styles of a run's parts (train dashed, test solid, ...): uPlot's canvas dashes.
  var DASHES = { "solid": null, "dashed": [8, 5], "dotted": [2, 4], "long-dash": [14, 5] };

  function setRunShown(run, shown) {
    plots.forEach(function (plot) {
      plot.runOf.forEach(function (owner, index) {
        if (owner === run && plot.series[index + 1].show !== shown) {
          plot.setSeries(index + 1, { show: shown }, false);
        }
      });
    });
    var toggle = document.querySelector('input.run-toggle[data-run="' + run + '"]');
    if (toggle) toggle.checked = shown;
  }

  function drawChart(grid, chart, runs) {
    var box = document.createElement("figure");
    box.className = "chart";
    box.dataset.title = chart.title;
    var caption = document.createElement("figcaption");
    caption.textContent = chart.title;
    box.appendChild(caption);
    grid.appendChild(box);
    var series = [{ label: chart.axis, value: function (u, v) { return v == null ? "–" : v; } }];
    chart.series.forEach(function (line) {
      var run = runs[line.run];
      var entry = {
        // The run's short label, and its part when the chart draws several per run.
        label: line.part ? run.label + " · " + line.part : run.label,
        stroke: run.color,
        width: 2,
        spanGaps: false,
        scale: line.right ? "y2" : "y",
        points: { show: chart.x.length <= 60 && line.dash === "solid", size: 5, fill: run.color },
        value: function (u, v) { return formatValue(v); }
      };
      if (DASHES[line.dash]) entry.dash = DASHES[line.dash];
      series.push(entry);
    });
    var axes = [
      // Epochs and steps are whole numbers: no ticks between them.
      { label: chart.axis, labelSize: 18, size: 36, incrs: WHOLE_STEPS },
      { label: chart.y_label, labelSize: 18, size: 56, scale: "y", values: function (u, ticks) { return ticks.map(formatValue); } }
    ];
    if (chart.y2_label) {
      axes.push({ label: chart.y2_label, labelSize: 18, size: 56, scale: "y2", side: 1, grid: { show: false },
                  values: function (u, ticks) { return ticks.map(formatValue); } });
    }
    var options = {
      width: chartWidth(box),
      height: 250,
      series: series,
      scales: chart.y2_label ? { x: { time: false }, y: {}, y2: {} } : { x: { time: false } },
      axes: axes,
      cursor: { sync: { key: chart.axis, setSeries: false }, points: { size: 7 } },
      legend: { live: true },
      hooks: {
        setSeries: [function (plot, index, opts) {
          // A click on a run's name in any chart's legend hides it in every chart.
          if (index != null && opts && opts.show != null) setRunShown(plot.runOf[index - 1], opts.show);
        }]
      }
    };
    var data = [chart.x].concat(chart.series.map(function (line) { return line.values; }));
    var plot = new uPlot(options, data, box);
    plot.runOf = chart.series.map(function (line) { return line.run; });
    box.dataset.series = String(plot.series.length - 1);
    box.dataset.runs = String(plot.runOf.filter(function (run, i, all) { return all.indexOf(run) === i; }).length);
    box.dataset.parts = chart.series.map(function (line) { return line.part; })
      .filter(function (part, i, all) { return all.indexOf(part) === i; }).join("|");
    box.dataset.points = String(chart.series.reduce(function (n, line) {
      return n + line.values.filter(function (v) { return v != null; }).length;
    }, 0));
    plots.push(plot);
    return plot;
  }

  try {
    var data = JSON.parse(document.getElementById("report-data").textContent);
    var grid = document.getElementById("chart-grid");
    data.charts.forEach(function (chart) { drawChart(grid, chart, data.runs); });
    document.querySelectorAll("input.run-toggle").forEach(function (input) {
      input.addEventListener("change", function () {
        setRunShown(Number(input.dataset.run), input.checked);
      });
    });
    // For tests and the console: the uPlot instances, in the order of the charts.
    window.reportCharts = plots;
    window.addEventListener("resize", function () {
      plots.forEach(function (plot) {
        plot.setSize({ width: chartWidth(plot.root.parentNode), height: 250 });
      });
    });
  } catch (error) {
    window.reportErrors.push(String((error && error.stack) || error));
  } finally {
    status.dataset.charts = String(plots.length);
    status.dataset.errors = String(window.reportErrors.length);
    status.textContent = window.reportErrors.join("\n");
    status.dataset.state = "done";
  }
})();
