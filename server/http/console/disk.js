// The proxy tree drawn in the Poincaré disk: each proxy at its `disk` position (the projection of
// the trainer's plots, computed by the server), an edge to its parent (the origin for the root's
// children), sized by its members; optionally a query point and the chain it belongs to.

const SVG = 'http://www.w3.org/2000/svg';

function node(tag, attributes = {}, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

// A proxy in words, for hover titles and screen readers.
export function describeProxy(proxy) {
  const parent = proxy.parent < 0 ? 'the root' : `proxy ${proxy.parent}`;
  return `proxy ${proxy.index}: depth ${proxy.depth}, parent ${parent}, ` +
    `${proxy.members} members, ${Number(proxy.distance_to_origin).toFixed(3)} from the origin`;
}

// An SVG of `proxies` (GetHierarchy's). Options: size (pixels), query ([x, y]), chain (proxy
// indices to highlight), onFocus(proxy) on hover or keyboard focus, onPick(proxy) on click/Enter.
export function drawDisk(proxies, { size = 420, query = null, chain = [], onFocus, onPick } = {}) {
  // Proxies often stay well inside the disk: magnify so the farthest sits near the edge.
  const farthest = Math.max(...proxies.map((p) => Math.hypot(...p.disk)), query ? Math.hypot(...query) : 0);
  const zoom = farthest > 0 && farthest < 0.45 ? 0.9 / farthest : 1;
  const radius = size / 2 - 6;
  const at = ([x, y]) => [size / 2 + x * zoom * radius, size / 2 - y * zoom * radius];
  const svg = node('svg', { viewBox: `0 0 ${size} ${size}`, class: 'disk', role: 'group',
    'aria-label': `${proxies.length} proxies in the Poincaré disk` });
  svg.append(node('circle', { cx: size / 2, cy: size / 2, r: radius,
    class: zoom > 1 ? 'boundary zoomed' : 'boundary' }));
  if (zoom > 1) {
    const caption = node('text', { x: 4, y: size - 4, class: 'zoom' }, `×${zoom.toFixed(1)}`);
    caption.append(node('title', {}, `magnified ${zoom.toFixed(1)} times: the edge of the ball lies beyond the dashed circle`));
    svg.append(caption);
  }
  const highlighted = new Set(chain);
  const origin = at([0, 0]);
  for (const proxy of proxies) {
    const [x, y] = at(proxy.disk);
    const [px, py] = proxy.parent < 0 ? origin : at(proxies[proxy.parent].disk);
    const inChain = highlighted.has(proxy.index);
    svg.append(node('line', { x1: px, y1: py, x2: x, y2: y, class: inChain ? 'edge chain' : 'edge' }));
  }
  svg.append(node('circle', { cx: origin[0], cy: origin[1], r: 4, class: 'root' },));
  const most = Math.max(1, ...proxies.map((p) => Number(p.members)));
  for (const proxy of proxies) {
    const [x, y] = at(proxy.disk);
    const dot = node('circle', {
      cx: x, cy: y, r: 3 + 7 * Math.sqrt(Number(proxy.members) / most),
      class: highlighted.has(proxy.index) ? 'proxy chain' : 'proxy',
      tabindex: onPick ? 0 : -1, role: onPick ? 'button' : 'img',
      'aria-label': describeProxy(proxy), 'data-proxy': proxy.index,
    });
    dot.append(node('title', {}, describeProxy(proxy)));
    if (onFocus) {
      dot.addEventListener('mouseenter', () => onFocus(proxy));
      dot.addEventListener('focus', () => onFocus(proxy));
    }
    if (onPick) {
      dot.addEventListener('click', () => onPick(proxy));
      dot.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' || event.key === ' ') {
          event.preventDefault();
          onPick(proxy);
        }
      });
    }
    svg.append(dot);
  }
  if (query) {
    const [x, y] = at(query);
    const mark = node('path', { d: `M${x - 7},${y} L${x + 7},${y} M${x},${y - 7} L${x},${y + 7}`,
      class: 'query', 'aria-label': 'the query' });
    mark.append(node('title', {}, 'the query'));
    svg.append(mark);
  }
  return svg;
}
