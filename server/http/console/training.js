// Training: a job form built from TrainingConfig's fields (the server's validation message shown
// beside the field it names), the jobs with live progress, loss and recall curves, cancel and
// resume; the models, and loading one with the swap's progress.
import { call, schema, stream } from './api.js';
import { swapText } from './status.js';
import { h, lineChart, notify } from './ui.js';

// The fields most jobs set, shown first; the rest fold under "All fields".
const COMMON = ['dataset', 'data_dir', 'epochs', 'steps_per_epoch', 'batch_size', 'emb', 'loss',
  'lambda1', 'num_proxies', 'lr', 'train_limit', 'test_limit', 'threads'];
const INTEGER = new Set(['int32', 'int64', 'uint32', 'uint64', 'sint32', 'sint64']);

function stateName(state) {
  return String(state).replace('JOB_STATE_', '');
}

function fieldInput(field) {
  const id = `field-${field.name}`;
  let input;
  if (field.type === 'bool') {
    input = h('select', { id, name: field.name },
      h('option', { value: '' }, 'default'), h('option', { value: 'true' }, 'true'),
      h('option', { value: 'false' }, 'false'));
  } else {
    const hint = field.repeated ? 'comma-separated, default' : 'default';
    input = h('input', { id, name: field.name, type: 'text', placeholder: hint,
      inputmode: INTEGER.has(field.type) || field.type === 'double' ? 'decimal' : null });
  }
  return h('div', { class: 'field', 'data-field': field.name },
    h('label', { for: id }, field.name), input,
    h('span', { class: 'field-error', id: `${id}-error`, 'aria-live': 'polite' }));
}

// One field's text as its JSON value: numbers as numbers (int64 as strings, as protobuf's JSON
// mapping reads them either way), booleans, repeated values split on commas.
function fieldValue(field, text) {
  const one = (value) => {
    if (field.type === 'bool') return value === 'true';
    if (field.type === 'double' || field.type === 'float') return Number.isNaN(Number(value)) ? value : Number(value);
    return value;
  };
  return field.repeated ? text.split(',').map((v) => one(v.trim())).filter((v) => v !== '') : one(text);
}

function jobForm(config, onStarted) {
  const fields = config.fields;
  const byName = new Map(fields.map((f) => [f.name, f]));
  const common = COMMON.filter((name) => byName.has(name)).map((name) => fieldInput(byName.get(name)));
  const rest = fields.filter((f) => !COMMON.includes(f.name)).map(fieldInput);
  const name = h('input', { id: 'job-name', name: 'job-name', type: 'text', placeholder: 'optional' });
  const deploy = h('input', { id: 'job-deploy', type: 'checkbox' });
  const formError = h('p', { class: 'form-error', id: 'job-form-error', role: 'alert' });
  const form = h('form', { class: 'job-form', id: 'job-form', novalidate: true },
    h('h3', {}, 'Start a job'),
    h('p', { class: 'hint' }, 'Fields left empty take the trainer\'s defaults.'),
    h('div', { class: 'fields' },
      h('div', { class: 'field' }, h('label', { for: 'job-name' }, 'job name'), name),
      common),
    h('details', {}, h('summary', {}, `All fields (${rest.length} more)`), h('div', { class: 'fields' }, rest)),
    h('p', {}, deploy, h('label', { for: 'job-deploy' }, ' Load the best checkpoint when it succeeds')),
    h('button', { type: 'submit' }, 'Start training'), formError);

  const clearErrors = () => {
    formError.textContent = '';
    for (const error of form.querySelectorAll('.field-error')) error.textContent = '';
    for (const input of form.querySelectorAll('[aria-invalid]')) {
      input.removeAttribute('aria-invalid');
      input.removeAttribute('aria-describedby');
    }
  };
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors();
    const request = { name: name.value.trim(), deploy_on_success: deploy.checked, config: {} };
    for (const field of fields) {
      const text = form.elements.namedItem(field.name).value.trim();
      if (text !== '') request.config[field.name] = fieldValue(field, text);
    }
    try {
      onStarted(await call('hier.v1.Training/StartTraining', request));
    } catch (error) {
      // The server names the field it rejects ("config.data_dir: ..."): show it there.
      const named = /config\.([a-z0-9_]+)/.exec(error.message);
      const input = named && form.elements.namedItem(named[1]);
      if (input) {
        const note = form.querySelector(`#field-${named[1]}-error`);
        note.textContent = error.message;
        input.setAttribute('aria-invalid', 'true');
        input.setAttribute('aria-describedby', note.id);
        input.closest('details')?.setAttribute('open', '');
        input.focus();
      } else {
        formError.textContent = `${error.status}: ${error.message}`;
      }
    }
  });
  return form;
}

// The live view of one job: state, progress bar, loss and recall curves, cancel and resume.
function jobPanel(job, signal, onChange) {
  const state = h('strong', { id: 'job-state' }, stateName(job.state));
  const bar = h('progress', { id: 'job-progress', max: 1, value: 0 });
  const figures = h('span', { id: 'job-figures' });
  const error = h('p', { class: 'form-error', id: 'job-error' });
  const charts = h('div', { class: 'charts' });
  const losses = [];
  const recalls = {};
  const cancel = h('button', { type: 'button', onclick: () => act('CancelJob') }, 'Cancel');
  const resume = h('button', { type: 'button', onclick: () => act('ResumeJob') }, 'Resume');

  async function act(method) {
    try {
      show(await call(`hier.v1.Training/${method}`, { id: job.id }));
      if (method === 'ResumeJob') watch();
      onChange();
    } catch (e) {
      error.textContent = `${e.status}: ${e.message}`;
    }
  }

  function show(current) {
    state.textContent = stateName(current.state);
    const p = current.progress ?? {};
    const total = Number(p.total_steps);
    if (total > 0) {
      bar.max = total;
      bar.value = Number(p.step);
    }
    figures.textContent = `epoch ${p.epoch ?? 0}, step ${p.step ?? 0} of ${p.total_steps ?? '?'}, ` +
      `loss ${Number(p.loss ?? 0).toFixed(4)}` +
      (Number(p.eta_seconds) > 0 ? `, about ${Math.round(p.eta_seconds)} s left` : '');
    if (Number(p.step) > 0 && losses.at(-1)?.[0] !== Number(p.step)) losses.push([Number(p.step), Number(p.loss)]);
    for (const [name, value] of Object.entries(p.recall ?? {})) {
      recalls[name] = recalls[name] ?? [];
      if (recalls[name].at(-1)?.[0] !== Number(p.epoch)) recalls[name].push([Number(p.epoch), value]);
    }
    error.textContent = current.error ?? '';
    const ended = ['SUCCEEDED', 'FAILED', 'CANCELLED', 'INTERRUPTED'].includes(stateName(current.state));
    cancel.disabled = ended;
    resume.disabled = !['FAILED', 'INTERRUPTED'].includes(stateName(current.state));
    charts.replaceChildren(lineChart({ loss: losses }, { label: 'loss by step' }),
      lineChart(recalls, { label: 'recall by epoch' }));
  }

  async function watch() {
    try {
      await stream('hier.v1.Training/WatchJob', { id: job.id }, (event) => show(event.job), signal);
      onChange();
    } catch (e) {
      if (e.name !== 'AbortError') error.textContent = `${e.status}: ${e.message}`;
    }
  }

  show(job);
  watch();
  return h('section', { class: 'job', id: 'job-panel', 'aria-label': `Job ${job.id}` },
    h('h3', {}, `Job ${job.id}`), h('p', {}, state, ' ', figures), bar, h('p', {}, cancel, ' ', resume),
    error, charts);
}

// "R@1 0.633, R@2 0.740, ..." in K order.
function recallText(recall = {}) {
  return Object.entries(recall).sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))
    .map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ');
}

function modelsTable(models, refresh) {
  const swap = h('p', { id: 'swap-progress', role: 'status' });
  async function load(version) {
    try {
      await call('hier.v1.Models/LoadModel', { version, wait: false });
      for (;;) {
        const progress = await call('hier.v1.Models/GetSwap');
        swap.textContent = swapText(progress);
        if (!progress.running) break;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      refresh();
    } catch (error) {
      swap.textContent = `${error.status}: ${error.message}`;
    }
  }
  return h('section', { 'aria-label': 'Models' }, h('h3', {}, 'Models'),
    h('table', { class: 'models' },
      h('tr', {}, h('th', {}, 'Version'), h('th', {}, 'Recall'), h('th', {}, '')),
      models.map((m) => h('tr', {}, h('td', {}, m.version),
        h('td', {}, recallText(m.recall)),
        h('td', {}, m.serving ? 'serving'
          : h('button', { type: 'button', onclick: () => load(m.version) }, 'Load'))))),
    swap);
}

export async function render(root, _route, signal) {
  const jobsBox = h('section', { 'aria-label': 'Jobs' });
  const panelBox = h('div');
  const modelsBox = h('div');
  let watching = null;  // aborts the watch of the job shown
  signal.addEventListener('abort', () => watching?.abort());

  function open(job) {
    watching?.abort();
    watching = new AbortController();
    panelBox.replaceChildren(jobPanel(job, watching.signal, refresh));
  }

  async function refresh() {
    try {
      const [jobs, models] = await Promise.all([call('hier.v1.Training/ListJobs'), call('hier.v1.Models/ListModels')]);
      jobsBox.replaceChildren(h('h3', {}, 'Jobs'), h('table', { class: 'jobs' },
        h('tr', {}, h('th', {}, 'Job'), h('th', {}, 'State'), h('th', {}, 'Epoch'), h('th', {}, '')),
        jobs.jobs.map((job) => h('tr', {}, h('td', {}, job.id), h('td', {}, stateName(job.state)),
          h('td', {}, String(job.progress?.epoch ?? 0)),
          h('td', {}, h('button', { type: 'button', onclick: () => open(job) }, 'Show'))))));
      modelsBox.replaceChildren(modelsTable(models.models, refresh));
    } catch (error) {
      notify(`${error.status}: ${error.message}`);
    }
  }

  let config;
  try {
    config = await schema('hier.v1.TrainingConfig');
  } catch (error) {
    notify(error.message);
    return;
  }
  root.replaceChildren(h('h2', {}, 'Training'),
    h('div', { class: 'training' }, jobForm(config, (job) => {
      open(job);
      refresh();
    }), h('div', {}, panelBox, jobsBox, modelsBox)));
  await refresh();
}
