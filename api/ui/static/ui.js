/* Threadneedle dashboard: the load chart (ECharts, served from /ui/static/vendor) and the
   version slider's read-out.  Everything else is htmx attributes in the pages. */
(function () {
  "use strict";

  function drawLoad(element) {
    if (!window.echarts || element.dataset.drawn) { return; }
    var source = document.getElementById("load-data");
    if (!source) { return; }
    var load = JSON.parse(source.textContent);
    var over = new Set(load.over);
    var chart = window.echarts.init(element, null, {
      renderer: "svg", locale: element.dataset.lang === "zh" ? "ZH" : "EN"
    });
    var areas = load.runs.map(function (run) {
      return [{ xAxis: run.first, name: element.dataset.labelOver }, { xAxis: run.last }];
    });
    chart.setOption({
      animation: false,
      tooltip: {
        trigger: "axis",
        formatter: function (items) {
          var i = items[0].dataIndex;
          return [load.weeks[i] + " · " + load.ranges[i]].concat(items.map(function (item) {
            return item.marker + item.seriesName + ": " + item.value + " h";
          })).join("<br>");
        }
      },
      legend: { top: 0, data: [element.dataset.labelLoad, element.dataset.labelCapacity] },
      grid: { left: 48, right: 16, top: 48, bottom: 56 },
      xAxis: { type: "category", data: load.weeks },
      yAxis: { type: "value", name: "h" },
      dataZoom: [{ type: "inside" }, { type: "slider", height: 16, bottom: 8 }],
      series: [
        {
          name: element.dataset.labelLoad, type: "bar",
          data: load.load.map(function (hours, i) {
            return over.has(load.weeks[i]) ? { value: hours, itemStyle: { color: "#c0392b" } } : hours;
          }),
          markArea: { itemStyle: { color: "rgba(192, 57, 43, 0.12)" }, data: areas }
        },
        {
          name: element.dataset.labelCapacity, type: "line", step: "middle", symbol: "none",
          data: load.weeks.map(function () { return load.capacity; }),
          lineStyle: { color: "#1f4e79", width: 2 }
        }
      ]
    });
    element.dataset.drawn = "1";
    window.addEventListener("resize", function () { chart.resize(); });
  }

  function init(root) {
    (root || document).querySelectorAll("[data-chart=load]").forEach(drawLoad);
    var slider = document.getElementById("version-slider");
    var shown = document.getElementById("version-shown");
    if (slider && shown && !slider.dataset.bound) {
      slider.dataset.bound = "1";
      slider.addEventListener("input", function () { shown.textContent = slider.value; });
    }
    document.querySelectorAll(".js-hidden").forEach(function (el) { el.hidden = true; });
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSettle", function (event) { init(event.target); });
})();
