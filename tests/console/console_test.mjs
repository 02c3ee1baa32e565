// The web console driven in a real browser (Debian's chromium, headless, through playwright-core)
// against a running hier-server: node console_test.mjs SPEC.json. SPEC names the console's URL,
// the right token, a query image and the labels a gRPC search found for it, the proxy count, a
// tiny training job and a folder for screenshots. Each check prints "ok - ..." or throws; the exit
// status is 0 only when all pass.
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));
mkdirSync(spec.artifacts, { recursive: true });

function check(condition, what) {
  if (!condition) throw new Error(`not ok - ${what}`);
  console.log(`ok - ${what}`);
}

async function screenshot(page, name) {
  await page.screenshot({ path: join(spec.artifacts, `${name}.png`), fullPage: true });
}

// Opens a view by its hash and waits for the view's content to replace the previous one.
async function openView(page, hash) {
  await page.evaluate((h) => { location.hash = h; }, hash);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // As root (CI containers) chromium's sandbox cannot start; the pages are our own, on loopback.
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
const failures = [];
async function step(name, body) {
  try {
    await body();
  } catch (error) {
    failures.push(name);
    console.log(`not ok - ${name}: ${error.message.split('\n')[0]}`);
  }
}

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  const consoleErrors = [];
  page.on('pageerror', (error) => consoleErrors.push(String(error)));

  await step('a wrong token is refused with a visible message, the right one is kept', async () => {
    await page.goto(`${spec.url}#status`);
    const dialog = page.locator('#token-dialog');
    await dialog.waitFor({ state: 'visible' });
    await page.fill('#token-input', 'not-the-token');
    await page.click('#token-form button[type=submit]');
    await page.waitForFunction(() =>
      document.getElementById('token-dialog').open &&
      document.getElementById('token-reason').textContent.includes('refused'));
    const reason = await page.textContent('#token-reason');
    check(/refused the token/.test(reason) && (await dialog.isVisible()), `wrong token refused: "${reason}"`);
    await screenshot(page, 'token');
    await page.fill('#token-input', spec.token);
    await page.click('#token-form button[type=submit]');
    await page.locator('#status-table .ok').waitFor();
    check((await page.textContent('#status-table')).includes('serving'), 'status view shows the server serving');
    await screenshot(page, 'status');
  });

  await step('a dropped image renders k thumbnails with the expected labels', async () => {
    await openView(page, 'search');
    await page.fill('#k', String(spec.expected_labels.length));
    // The file dropped on the drop zone, as a browser delivers it (a DataTransfer holding a File).
    const dropped = await page.evaluateHandle((base64) => {
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      const transfer = new DataTransfer();
      transfer.items.add(new File([bytes], 'query.png', { type: 'image/png' }));
      return transfer;
    }, readFileSync(spec.query_image).toString('base64'));
    await page.dispatchEvent('#drop-zone', 'drop', { dataTransfer: dropped });
    await page.waitForFunction((k) => document.querySelectorAll('#results .result').length === k, spec.expected_labels.length);
    const labels = await page.$$eval('#results .result', (items) => items.map((i) => i.dataset.label));
    check(JSON.stringify(labels) === JSON.stringify(spec.expected_labels),
      `result labels ${JSON.stringify(labels)} equal gRPC's`);
    await page.waitForFunction(() => [...document.querySelectorAll('#results img.thumb')]
      .every((img) => img.complete && img.naturalWidth > 0));
    const alts = await page.$$eval('#results img.thumb', (imgs) => imgs.map((i) => i.alt));
    check(alts.every((alt) => alt.length > 0), 'every thumbnail loaded and has alt text');
    await page.locator('.query-panel svg.disk').waitFor();
    check(await page.locator('.query-panel .query').count() === 1, "the query's place is drawn in the disk");
    await screenshot(page, 'search');
  });

  await step('the hierarchy view draws every proxy', async () => {
    await openView(page, 'hierarchy');
    await page.locator('.hierarchy svg.disk').waitFor();
    const drawn = await page.locator('.hierarchy .disk .proxy').count();
    check(drawn === spec.proxies, `${drawn} proxies drawn of ${spec.proxies}`);
    await page.locator('.hierarchy .disk .proxy').first().focus();
    check(/depth \d+, parent/.test(await page.textContent('#proxy-info')), 'focusing a proxy describes it');
    await page.keyboard.press('Enter');
    await page.locator('.members .item img.thumb').first().waitFor();
    check(await page.locator('.members .item').count() > 0, "picking a proxy shows the images nearest to it");
    await screenshot(page, 'hierarchy');
  });

  await step('the gallery pages through the items', async () => {
    await openView(page, 'gallery');
    await page.locator('#gallery-grid .item').first().waitFor();
    const shown = await page.locator('#gallery-grid .item').count();
    check(shown === Math.min(24, spec.items), `${shown} items on the first page of ${spec.items}`);
    await screenshot(page, 'gallery');
  });

  await step('an uploaded image is listed under its label, then deleted', async () => {
    await page.setInputFiles('#upload-files', spec.query_image);
    await page.fill('#upload-label', 'uploaded-by-browser');
    await page.click('.upload button[type=submit]');
    await page.waitForFunction(() => document.querySelector('.upload [role=status]').textContent === '1 of 1 added');
    await page.fill('#gallery-label', 'uploaded-by-browser');
    await page.dispatchEvent('#gallery-label', 'change');
    await page.waitForFunction(() => document.querySelectorAll('#gallery-grid .item').length === 1);
    check((await page.textContent('#gallery-grid .item .label')) === 'uploaded-by-browser',
      'the upload is listed under its label');
    page.once('dialog', (dialog) => dialog.accept());
    await page.click('#gallery-grid .item .delete');
    await page.waitForFunction(() => document.querySelector('#gallery-grid').textContent.includes('No items.'));
    const left = await page.locator('#gallery-grid .item').count();
    check(left === 0, `${left} items left under the label after the delete`);
  });

  await step("a bad training field shows the server's message beside it", async () => {
    await openView(page, 'training');
    await page.locator('#job-form').waitFor();
    await page.fill(`#field-${spec.bad_field.name}`, spec.bad_field.value);
    await page.click('#job-form button[type=submit]');
    const note = page.locator(`#field-${spec.bad_field.name}-error`);
    await page.waitForFunction((id) => document.getElementById(id).textContent.length > 0,
      `field-${spec.bad_field.name}-error`);
    const text = await note.textContent();
    check(text.includes(`config.${spec.bad_field.name}`) &&
      (await page.getAttribute(`#field-${spec.bad_field.name}`, 'aria-invalid')) === 'true',
    `the message "${text}" is beside ${spec.bad_field.name}`);
    await screenshot(page, 'training-bad-field');
    await page.fill(`#field-${spec.bad_field.name}`, '');
  });

  await step('a tiny job started from the form runs to SUCCEEDED with live progress', async () => {
    await page.locator('#job-form details').evaluate((d) => { d.open = true; });
    for (const [name, value] of Object.entries(spec.training)) {
      await page.fill(`#field-${name}`, String(value));
    }
    await page.fill('#job-name', 'browser');
    await page.click('#job-form button[type=submit]');
    await page.locator('#job-panel').waitFor();
    const seen = new Set();
    const deadline = Date.now() + spec.training_seconds * 1000;
    for (;;) {
      const state = await page.textContent('#job-state');
      seen.add(state);
      if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(state) || Date.now() > deadline) break;
      await page.waitForTimeout(250);
    }
    const error = await page.textContent('#job-error');
    check(seen.has('SUCCEEDED'), `job states seen: ${[...seen].join(', ')} ${error}`);
    check(Number(await page.getAttribute('#job-progress', 'value')) > 0, 'the progress bar moved');
    check(await page.locator('#job-panel .chart polyline').count() >= 1, 'the loss curve is drawn');
    await screenshot(page, 'training');
  });

  await step('the page raised no script error', async () => {
    check(consoleErrors.length === 0, `script errors: ${consoleErrors.join('; ') || 'none'}`);
  });
} finally {
  await browser.close();
}
writeFileSync(join(spec.artifacts, 'result.txt'), failures.length ? `failed: ${failures.join('; ')}\n` : 'passed\n');
process.exit(failures.length ? 1 : 0);
