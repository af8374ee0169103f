/**
 * A uPlot chart drawn in the page's theme: its colours come from the stylesheet's custom properties (read when
 * the chart is made, and again when the system theme changes), its width from its box (ResizeObserver).
 * uPlot sets sizes through element.style, which the CSP (style-src 'self') allows; its own stylesheet is
 * bundled with ours.
 */
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface ChartSeries {
  label: string;
  values: (number | null)[];
  /** A custom property of styles.css (say --chart-1) or a colour. */
  color: string;
}

export interface ChartProps {
  /** Accessible name, and the test id's stem. */
  title: string;
  /** Unix seconds, ascending. */
  x: number[];
  series: ChartSeries[];
  /** bars: stacked bars (the series values are summed bottom to top); lines otherwise. */
  kind: "stacked-bars" | "lines";
  format(value: number): string;
  height?: number;
}

function cssColor(name: string): string {
  if (!name.startsWith("--")) return name;
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

function options(props: ChartProps, width: number): uPlot.Options {
  const text = cssColor("--muted");
  const grid = cssColor("--border");
  const axis: uPlot.Axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
  const stacked = props.kind === "stacked-bars";
  const bars = uPlot.paths.bars!({ size: [0.6, 48], align: 0 });
  // Stacked bars: each series is drawn as the running total up to it, tallest first, so each covers the
  // part of the one before that is its own (uPlot draws series in order).
  const order = stacked ? [...props.series.keys()].reverse() : [...props.series.keys()];
  return {
    width,
    height: props.height ?? 220,
    legend: { show: true, live: true },
    cursor: { drag: { x: false, y: false } },
    // Half a day either side, so that the first and last bars are whole.
    scales: { x: { time: true, range: (_u, min, max) => [min - 43_200, max + 43_200] }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    axes: [axis, { ...axis, size: 70, values: (_u, ticks) => ticks.map((tick) => props.format(tick)) }],
    series: [
      {},
      ...order.map((index) => {
        const series = props.series[index];
        const color = cssColor(series.color);
        return stacked
          ? { label: series.label, stroke: color, fill: color, width: 0, paths: bars, points: { show: false }, value: (_u: uPlot, _value: number | null, _s: number, at: number | null) => (at == null ? "–" : props.format(series.values[at] ?? 0)) }
          : { label: series.label, stroke: color, width: 2, points: { show: true, size: 5 }, value: (_u: uPlot, value: number | null) => (value == null ? "–" : props.format(value)) };
      }),
    ],
  };
}

function data(props: ChartProps): uPlot.AlignedData {
  if (props.kind === "lines") return [props.x, ...props.series.map((series) => series.values)];
  const running = props.series.map((_, index) =>
    props.x.map((__, at) => props.series.slice(0, index + 1).reduce((sum, series) => sum + (series.values[at] ?? 0), 0)),
  );
  return [props.x, ...running.reverse()];
}

export function Chart(props: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const key = JSON.stringify([props.x, props.series, props.kind]);
  useEffect(() => {
    const element = box.current;
    if (!element) return;
    let plot: uPlot | undefined;
    const draw = () => {
      plot?.destroy();
      plot = new uPlot(options(props, Math.max(200, element.clientWidth)), data(props), element);
    };
    draw();
    const resize = new ResizeObserver(() => plot?.setSize({ width: Math.max(200, element.clientWidth), height: props.height ?? 220 }));
    resize.observe(element);
    const theme = window.matchMedia("(prefers-color-scheme: dark)");
    theme.addEventListener("change", draw);
    return () => {
      resize.disconnect();
      theme.removeEventListener("change", draw);
      plot?.destroy();
    };
  }, [key]);
  const testId = props.title.toLowerCase().replace(/[^a-z0-9]+/g, "-");
  return (
    <figure class="chart" data-testid={`chart-${testId}`}>
      <figcaption class="chart-title">{props.title}</figcaption>
      <div class="chart-canvas" ref={box} role="img" aria-label={props.title} />
    </figure>
  );
}
