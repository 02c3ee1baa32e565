// The console's first load, measured in headless chromium (deploy/experiments/http-bench.sh):
// node first_load.mjs URL IMAGE K RUNS OUT.json [SCREENSHOT.png]. Each run opens the console in a fresh browser
// context (an empty cache), picks IMAGE in the Search view and waits until K results show with
// their thumbnails; it records the bytes transferred (the console's own files, and the API's
// answers and images, from the page's resource timing), the time until the page had loaded, and
// the time from picking the image to the results. A reload in the same context then shows what a
// second visit costs (the files revalidated, 304). OUT.json holds every run; SCREENSHOT.png, when
// given, the first run's results.
import { writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const [url, image, k, runs, out, screenshot] = process.argv.slice(2);

function bytesOf(entries) {
  const sum = (pick) => entries.filter(pick).reduce((total, e) => total + e.transferSize, 0);
  const isConsole = (e) => new URL(e.name).pathname === '/' || new URL(e.name).pathname.startsWith('/console/');
  return { console_bytes: sum(isConsole), api_bytes: sum((e) => !isConsole(e)) };
}

const entriesScript = () => [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')]
  .map((e) => ({ name: e.name, transferSize: e.transferSize }));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
const results = [];
try {
  for (let run = 0; run < Number(runs); ++run) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${url}#search`, { waitUntil: 'load' });
    const loadMs = await page.evaluate(() => performance.getEntriesByType('navigation')[0].loadEventEnd);
    await page.fill('#k', String(k));
    const picked = await page.evaluate(() => performance.now());
    await page.setInputFiles('#query-file', image);
    await page.waitForFunction((n) => {
      const images = [...document.querySelectorAll('#results .result img.thumb')];
      return images.length === n && images.every((i) => i.complete && i.naturalWidth > 0);
    }, Number(k), { polling: 'raf', timeout: 60_000 });
    const done = await page.evaluate(() => performance.now());
    if (screenshot && run === 0) await page.screenshot({ path: screenshot });
    const first = bytesOf(await page.evaluate(entriesScript));
    await page.reload({ waitUntil: 'load' });
    const again = bytesOf(await page.evaluate(entriesScript));
    results.push({ load_ms: loadMs, search_ms: done - picked, first_result_ms: done, ...first,
      reload_console_bytes: again.console_bytes });
    console.log(JSON.stringify(results.at(-1)));
    await context.close();
  }
} finally {
  await browser.close();
}
writeFileSync(out, JSON.stringify(results, null, 2));
