// Search: an image dropped or picked (or a stored item) → the k nearest items with label, distance
// and ancestor chain, and the query's place among its ancestors in the disk.
import { base64Of, call, ApiError } from './api.js';
import { drawDisk } from './disk.js';
import { h, notify, thumbnail } from './ui.js';

let hierarchy = null;  // GetHierarchy's answer for the serving model, fetched again after a swap

// The serving model's tree; fetched again when `version` (a search's model) is not its model.
async function loadHierarchy(version = '') {
  if (hierarchy === null || (version && hierarchy.model_version !== version)) {
    try {
      hierarchy = await call('hier.v1.Hierarchy/GetHierarchy');
    } catch (error) {
      hierarchy = { proxies: [], model_version: version, unavailable: error.message };
    }
  }
  return hierarchy;
}

function chainText(ancestors) {
  return ancestors.map((a) => `P${a.proxy}`).join(' › ');
}

function resultCard(neighbour) {
  const id = neighbour.id;
  return h('li', { class: 'result', 'data-label': neighbour.label },
    h('a', { href: `#search/item/${id}`, title: `Search with item ${id}` },
      thumbnail(id, `${neighbour.label || 'unlabelled'} (item ${id})`)),
    h('div', { class: 'caption' },
      h('strong', { class: 'label' }, neighbour.label || '—'),
      h('span', { class: 'distance' }, `d = ${Number(neighbour.distance).toFixed(3)}`),
      neighbour.ancestors?.length ? h('span', { class: 'chain' }, chainText(neighbour.ancestors)) : null));
}

// The query's panel: its picture, its chain of proxies and its place in the disk.
function queryPanel(preview, ancestors, tree) {
  const chain = ancestors.chains?.[0]?.ancestors ?? [];
  return h('section', { class: 'query-panel', 'aria-label': 'The query' },
    preview,
    chain.length ? h('p', {}, 'Ancestors: ', h('span', { class: 'chain' }, chainText(chain))) : null,
    tree.proxies.length && ancestors.disk?.length
      ? drawDisk(tree.proxies, { size: 260, query: ancestors.disk, chain: chain.map((a) => a.proxy) })
      : null);
}

export async function render(root, route) {
  const fileInput = h('input', { type: 'file', id: 'query-file', accept: 'image/*' });
  const drop = h('div', { class: 'drop', id: 'drop-zone', tabindex: 0, role: 'button',
    'aria-label': 'Drop an image here, or press Enter to pick one' },
  'Drop an image here, or ', h('label', { for: 'query-file', class: 'link' }, 'pick a file'), fileInput);
  const k = h('input', { type: 'number', id: 'k', min: 1, max: 100, value: 12 });
  const label = h('input', { type: 'text', id: 'label-filter', placeholder: 'any label' });
  const results = h('ol', { class: 'results', id: 'results', 'aria-live': 'polite' });
  const query = h('div', { class: 'query' });
  let last = null;  // the last query, re-run when k or the label changes

  async function search(querySpec, preview) {
    last = { querySpec, preview };
    notify('');
    results.replaceChildren(h('li', { class: 'busy' }, 'Searching…'));
    const request = { ...querySpec, k: Number(k.value), label: label.value.trim(), with_ancestors: true };
    try {
      // The query's chain is asked for beside the search (an image is embedded once for both:
      // the server batches them into one forward pass).
      const chainOf = async (tree) => {
        if (!tree.proxies.length) return {};
        const point = querySpec.item_id
          ? { vector: (await call('hier.v1.Retrieval/GetItem', { id: querySpec.item_id })).vector }
          : querySpec;
        return call('hier.v1.Hierarchy/Ancestors', { ...point, nearest: 1 }).catch(() => ({}));
      };
      const treeLoaded = loadHierarchy();
      const [answer, cached, ancestors] = await Promise.all([
        call('hier.v1.Retrieval/Search', request), treeLoaded, treeLoaded.then(chainOf)]);
      const tree = cached.model_version === answer.model_version
        ? cached : await loadHierarchy(answer.model_version);
      results.replaceChildren(...answer.neighbours.map(resultCard));
      if (answer.neighbours.length === 0) results.replaceChildren(h('li', {}, 'No item matches.'));
      query.replaceChildren(queryPanel(preview, ancestors, tree));
    } catch (error) {
      results.replaceChildren();
      notify(error instanceof ApiError ? `${error.status}: ${error.message}` : String(error));
    }
  }

  async function searchFile(file) {
    if (!file) return;
    const preview = h('img', { class: 'thumb', alt: `the query, ${file.name}`, src: URL.createObjectURL(file) });
    await search({ image: await base64Of(file) }, preview);
  }

  fileInput.addEventListener('change', () => searchFile(fileInput.files[0]));
  drop.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      fileInput.click();
    }
  });
  drop.addEventListener('dragover', (event) => {
    event.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    searchFile(event.dataTransfer.files[0]);
  });
  const rerun = () => last && search(last.querySpec, last.preview);
  k.addEventListener('change', rerun);
  label.addEventListener('change', rerun);

  root.replaceChildren(
    h('h2', {}, 'Search'),
    h('div', { class: 'controls' }, drop,
      h('label', { for: 'k' }, 'k'), k,
      h('label', { for: 'label-filter' }, 'Label'), label),
    h('div', { class: 'search-body' }, query, results));

  const item = route.match(/^item\/(-?\d+)$/);
  if (item) {
    await search({ item_id: item[1] }, thumbnail(item[1], `the query, item ${item[1]}`));
  }
}
