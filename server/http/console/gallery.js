// Gallery: the stored items a page at a time (optionally one label's), images added by upload
// with progress, items deleted; a click searches with the item.
import { base64Of, call, forgetItemImage } from './api.js';
import { h, notify, thumbnail } from './ui.js';

const PAGE_SIZE = 24;
const UPLOAD_BATCH = 8;  // images per AddItems call

// Ids for uploaded images: the time in microseconds plus the file's place, unique in practice
// and ordered after earlier uploads.
function newIds(count) {
  const base = Date.now() * 1000;
  return Array.from({ length: count }, (_, i) => String(base + i));
}

export async function render(root) {
  const label = h('input', { type: 'text', id: 'gallery-label', placeholder: 'any label' });
  const grid = h('ul', { class: 'gallery', id: 'gallery-grid', 'aria-live': 'polite' });
  const previous = h('button', { type: 'button', disabled: true }, '← Previous');
  const next = h('button', { type: 'button', disabled: true }, 'Next →');
  const where = h('span', { class: 'page' });
  const tokens = [''];  // the page tokens of the pages seen, the current one last

  async function show() {
    notify('');
    try {
      const page = await call('hier.v1.Retrieval/ListItems', {
        page_size: PAGE_SIZE, page_token: tokens[tokens.length - 1], label: label.value.trim() });
      grid.replaceChildren(...page.items.map((item) => h('li', { class: 'item' },
        h('a', { href: `#search/item/${item.id}`, title: `Search with item ${item.id}` },
          thumbnail(item.id, `${item.label || 'unlabelled'} (item ${item.id})`)),
        h('span', { class: 'label' }, item.label || '—'),
        h('button', { type: 'button', class: 'delete', 'aria-label': `Delete item ${item.id}`,
          onclick: () => remove(item) }, '✕'))));
      if (page.items.length === 0) grid.replaceChildren(h('li', {}, 'No items.'));
      where.textContent = `page ${tokens.length}`;
      previous.disabled = tokens.length === 1;
      next.disabled = !page.next_page_token;
      next.dataset.token = page.next_page_token;
    } catch (error) {
      notify(`${error.status || 'Error'}: ${error.message}`);
    }
  }

  async function remove(item) {
    if (!confirm(`Delete item ${item.id} (${item.label || 'unlabelled'})?`)) return;
    try {
      await call('hier.v1.Retrieval/DeleteItems', { ids: [item.id] });
      forgetItemImage(item.id);
      notify(`Deleted item ${item.id}.`, 'info');
      await show();
    } catch (error) {
      notify(`${error.status}: ${error.message}`);
    }
  }

  const files = h('input', { type: 'file', id: 'upload-files', accept: 'image/*', multiple: true });
  const uploadLabel = h('input', { type: 'text', id: 'upload-label', placeholder: 'label (optional)' });
  const progress = h('progress', { id: 'upload-progress', max: 1, value: 0, hidden: true });
  const uploadStatus = h('span', { role: 'status' });

  async function upload(event) {
    event.preventDefault();
    const chosen = [...files.files];
    if (chosen.length === 0) return;
    const ids = newIds(chosen.length);
    progress.hidden = false;
    progress.max = chosen.length;
    progress.value = 0;
    try {
      for (let start = 0; start < chosen.length; start += UPLOAD_BATCH) {
        const batch = chosen.slice(start, start + UPLOAD_BATCH);
        const items = await Promise.all(batch.map(async (file, i) => ({
          id: ids[start + i], key: file.name, label: uploadLabel.value.trim(), image: await base64Of(file) })));
        await call('hier.v1.Retrieval/AddItems', { items });
        progress.value = start + batch.length;
        uploadStatus.textContent = `${progress.value} of ${chosen.length} added`;
      }
      files.value = '';
      await show();
    } catch (error) {
      notify(`${error.status}: ${error.message} (${progress.value} of ${chosen.length} were added)`);
    }
  }

  previous.addEventListener('click', () => {
    tokens.pop();
    show();
  });
  next.addEventListener('click', () => {
    tokens.push(next.dataset.token);
    show();
  });
  label.addEventListener('change', () => {
    tokens.length = 1;
    show();
  });

  root.replaceChildren(
    h('h2', {}, 'Gallery'),
    h('div', { class: 'controls' },
      h('label', { for: 'gallery-label' }, 'Label'), label, previous, where, next),
    grid,
    h('form', { class: 'upload', onsubmit: upload },
      h('h3', {}, 'Add images'),
      h('label', { for: 'upload-files' }, 'Images'), files,
      h('label', { for: 'upload-label' }, 'Label'), uploadLabel,
      h('button', { type: 'submit' }, 'Upload'), progress, uploadStatus));
  await show();
}
