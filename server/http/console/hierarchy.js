// Hierarchy: the serving model's proxy tree in the Poincaré disk and as an indented tree; hover or
// focus a proxy for its depth, parent and members, pick it for the gallery images nearest to it.
import { call } from './api.js';
import { describeProxy, drawDisk } from './disk.js';
import { h, notify, thumbnail } from './ui.js';

// The tree as nested lists, children ordered by index.
function indentedTree(proxies, onPick) {
  const children = new Map();
  for (const proxy of proxies) {
    if (!children.has(proxy.parent)) children.set(proxy.parent, []);
    children.get(proxy.parent).push(proxy);
  }
  const list = (parent) => h('ul', {}, (children.get(parent) ?? []).map((proxy) => h('li', {},
    h('button', { type: 'button', class: 'link', onclick: () => onPick(proxy) },
      `P${proxy.index}`),
    ` depth ${proxy.depth}, ${proxy.members} members`,
    children.has(proxy.index) ? list(proxy.index) : null)));
  return h('nav', { class: 'tree', 'aria-label': 'The proxy tree' }, h('strong', {}, 'root'), list(-1));
}

export async function render(root) {
  root.replaceChildren(h('h2', {}, 'Hierarchy'), h('p', {}, 'Loading…'));
  let tree;
  try {
    tree = await call('hier.v1.Hierarchy/GetHierarchy');
  } catch (error) {
    root.replaceChildren(h('h2', {}, 'Hierarchy'));
    notify(`${error.status}: ${error.message}`);
    return;
  }
  const info = h('p', { class: 'proxy-info', id: 'proxy-info', 'aria-live': 'polite' },
    'Hover or focus a proxy.');
  const members = h('section', { class: 'members', 'aria-label': 'Images nearest to the proxy' });

  async function pick(proxy) {
    info.textContent = describeProxy(proxy);
    members.replaceChildren(h('h3', {}, `Gallery images nearest to proxy ${proxy.index}`));
    try {
      const answer = await call('hier.v1.Retrieval/Search', { vector: { values: proxy.point }, k: 12 });
      members.append(h('ul', { class: 'gallery' }, answer.neighbours.map((n) => h('li', { class: 'item' },
        h('a', { href: `#search/item/${n.id}` }, thumbnail(n.id, `${n.label || 'unlabelled'} (item ${n.id})`)),
        h('span', { class: 'label' }, n.label || '—')))));
    } catch (error) {
      notify(`${error.status}: ${error.message}`);
    }
  }

  root.replaceChildren(
    h('h2', {}, 'Hierarchy'),
    h('p', {}, `Model ${tree.model_version}: ${tree.proxies.length} proxies. `,
      'Each proxy sits where the trainer\'s plots put it; its parent is the nearest proxy closer ',
      'to the origin (the root, at the centre).'),
    h('div', { class: 'hierarchy' },
      drawDisk(tree.proxies, { onFocus: (p) => { info.textContent = describeProxy(p); }, onPick: pick }),
      indentedTree(tree.proxies, pick)),
    info, members);
}
