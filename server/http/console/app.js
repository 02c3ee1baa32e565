// The console's entry: picks the view from the URL's hash (#search, #gallery/..., ...), renders it
// into <main>, and stops the previous view's timers and streams when the view changes.
import { notify } from './ui.js';
import * as search from './search.js';
import * as gallery from './gallery.js';
import * as hierarchy from './hierarchy.js';
import * as training from './training.js';
import * as status from './status.js';

const VIEWS = { search, gallery, hierarchy, training, status };
let current = null;  // the AbortController of the view shown

async function show() {
  const [name, ...rest] = (location.hash.slice(1) || 'search').split('/');
  const view = VIEWS[name] ?? search;
  current?.abort();
  current = new AbortController();
  notify('');
  for (const link of document.querySelectorAll('nav a')) {
    if (link.dataset.view === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const main = document.getElementById('view');
  try {
    await view.render(main, rest.join('/'), current.signal);
  } catch (error) {
    notify(String(error.message ?? error));
  }
  main.focus({ preventScroll: true });
}

window.addEventListener('hashchange', show);
show();
