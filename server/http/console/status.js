// Status: whether the server answers, its model, its index and a few figures refreshed live.
import { call } from './api.js';
import { formatBytes, h } from './ui.js';

const REFRESH_MS = 2000;

function row(name, value) {
  return h('tr', {}, h('th', { scope: 'row' }, name), h('td', {}, value));
}

// The latest model swap in words (models.proto, SwapProgress).
export function swapText(swap) {
  if (!swap.target_version) return 'none since the server started';
  if (swap.error_code) return `${swap.target_version}: failed, ${swap.error_code}: ${swap.error_message}`;
  const state = swap.complete ? 'live' : swap.running ? 'running' : 'stopped';
  return `${swap.target_version}: ${state}, ${swap.reembedded_items} items re-embedded`;
}

export async function render(root, _route, signal) {
  const table = h('table', { class: 'status', id: 'status-table' });
  const models = h('table', { class: 'models' });
  root.replaceChildren(h('h2', {}, 'Status'), table, h('h3', {}, 'Models'), models);

  async function refresh() {
    const started = performance.now();
    try {
      const [stats, swap, listed, jobs] = await Promise.all([
        call('hier.v1.Retrieval/Stats'), call('hier.v1.Models/GetSwap'),
        call('hier.v1.Models/ListModels'), call('hier.v1.Training/ListJobs')]);
      const roundTrip = performance.now() - started;
      const running = jobs.jobs.filter((j) => j.state === 'JOB_STATE_RUNNING').length;
      table.replaceChildren(
        row('Health', h('span', { class: 'ok' }, 'serving')),
        row('Model', stats.model_version || 'none'),
        row('Items', Number(stats.items).toLocaleString()),
        row('Index', stats.candidates),
        row('Index memory', formatBytes(stats.index_memory_bytes)),
        row('Ball', `dimension ${stats.dim}, curvature c = ${stats.c}`),
        row('Model swap', swapText(swap)),
        row('Training jobs running', String(running)),
        row('API round trip', `${roundTrip.toFixed(1)} ms (4 calls at once)`));
      models.replaceChildren(h('tr', {}, h('th', {}, 'Version'), h('th', {}, 'Serving')),
        ...listed.models.map((m) => h('tr', {}, h('td', {}, m.version), h('td', {}, m.serving ? 'yes' : ''))));
    } catch (error) {
      table.replaceChildren(row('Health', h('span', { class: 'bad' }, `${error.status}: ${error.message}`)));
    }
  }
  await refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  signal.addEventListener('abort', () => clearInterval(timer));
}
