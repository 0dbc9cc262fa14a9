// The browser half of PlotlyView (plotly_view.py): draws each named figure with the plotly.js
// that the widget carries. Nothing is fetched, and no page-global `Plotly` is left behind.

let plotly = null; // the promise of plotly.js, evaluated once per loaded module

async function loadPlotly(model) {
  // `plotly_js` is plotly.min.js, gzip-compressed (a DataView of its bytes)
  const stream = new Blob([model.get("plotly_js")]).stream()
    .pipeThrough(new DecompressionStream("gzip"));
  const source = await new Response(stream).text();
  // plotly.min.js is a UMD bundle: given a `module`, it puts plotly.js in `module.exports` ...
  const module = { exports: {} };
  const previous = Object.getOwnPropertyDescriptor(window, "Plotly");
  new Function("module", "exports", source)(module, module.exports);
  // ... and also sets window.Plotly: put back what was there (another plotly.js, or nothing)
  if (previous) {
    Object.defineProperty(window, "Plotly", previous);
  } else {
    delete window.Plotly;
  }
  return module.exports;
}

async function render({ model, el }) {
  // one flex row per entry of `rows`; plot <name> in a div.advebm-plot-<name>
  const plots = new Map();
  for (const row of model.get("rows")) {
    const line = el.appendChild(document.createElement("div"));
    line.style.display = "flex";
    for (const name of row) {
      const box = line.appendChild(document.createElement("div"));
      box.className = `advebm-plot-${name}`;
      plots.set(name, box.appendChild(document.createElement("div")));
    }
  }
  plotly ??= loadPlotly(model);
  const Plotly = await plotly;
  const draw = () => {
    const figures = model.get("figures");
    for (const [name, plot] of plots) {
      const { data, layout } = figures[name];
      Plotly.react(plot, data, layout).catch((error) => console.error(`plot ${name}:`, error));
    }
  };
  draw();
  model.on("change:figures", draw);
  return () => {
    model.off("change:figures", draw);
    plots.forEach((plot) => Plotly.purge(plot));
  };
}

export default { render };
