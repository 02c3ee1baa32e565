// Small DOM helpers the views share: element building, notices, thumbnails and number formats.
import { itemImageUrl } from './api.js';

// h('div', {class: 'x', onclick: f}, child, 'text', ...): an element with attributes, listeners
// (on...) and children (nodes, strings, arrays; null and false skipped).
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? '' : value);
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else element.append(child instanceof Node ? child : String(child));
  }
}

// Shows a message in the page's alert area (an error in red) until the next view or notice.
export function notify(message, kind = 'error') {
  const notice = document.getElementById('notice');
  notice.textContent = message;
  notice.className = kind;
  notice.hidden = !message;
}

// An <img> of a stored item, filled when its image arrives; a placeholder when it has none.
export function thumbnail(id, alt) {
  const image = h('img', { alt, class: 'thumb', width: 96, height: 96 });
  itemImageUrl(id).then((url) => {
    if (url) image.src = url;
    else image.replaceWith(h('div', { class: 'thumb no-image', role: 'img', 'aria-label': alt }, 'vector'));
  });
  return image;
}

export function formatBytes(bytes) {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

// A line chart of `series` ({name: [[x, y], ...]}) as an SVG, with its axes' extents written.
export function lineChart(series, { width = 360, height = 140, label = 'chart' } = {}) {
  const points = Object.values(series).flat();
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  svg.classList.add('chart');
  if (points.length === 0) return svg;
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const pad = 28;
  const sx = (x) => pad + ((x - x0) / (x1 - x0 || 1)) * (width - 2 * pad);
  const sy = (y) => height - pad - ((y - y0) / (y1 - y0 || 1)) * (height - 2 * pad);
  const add = (tag, attributes, text) => {
    const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
    return node;
  };
  add('text', { x: 2, y: pad - 8, class: 'axis' }, y1.toPrecision(3));
  add('text', { x: 2, y: height - pad + 4, class: 'axis' }, y0.toPrecision(3));
  add('text', { x: width - pad, y: height - 6, class: 'axis' }, String(x1));
  const named = Object.entries(series).sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }));
  named.forEach(([name, values], s) => {
    if (values.length === 0) return;
    add('polyline', {
      points: values.map(([x, y]) => `${sx(x)},${sy(y)}`).join(' '),
      class: `series s${s}`,
    });
    for (const [x, y] of values) add('circle', { cx: sx(x), cy: sy(y), r: 2.5, class: `s${s}` });
    add('text', { x: pad + 4 + s * 90, y: 12, class: `legend s${s}` }, name);
  });
  return svg;
}
