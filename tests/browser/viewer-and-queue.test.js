// The image viewer's controls, the option definitions, and the page once nothing is waiting.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { request } from 'playwright-core';

import { logIn, openBrowser, pressKeys, startDemoServer, waitForItem, withScreenshots } from './harness.js';

let server;
before(async () => {
  server = await startDemoServer();
});
after(async () => {
  await server?.stop();
});

/** The viewer's state: zoom read-out, CSS transform and filter, and whether the original is shown. */
async function viewerState(page) {
  return page.evaluate(() => {
    const image = document.querySelector('#viewer-stage img');
    return {
      zoom: document.querySelector('#zoom-level').value,
      transform: image.style.transform,
      filter: image.style.filter,
      original: image.dataset.original === 'true',
      naturalWidth: image.naturalWidth,
    };
  });
}

test('viewer controls and definitions', { timeout: 90_000 }, async () => {
  const browser = await openBrowser();
  const { page } = browser;
  try {
    await withScreenshots('viewer controls and definitions', () => ({ grader: page }), async () => {
      await logIn(page, server.baseUrl, 'grader1', server.passwords.get('grader1'));
      await page.goto(`${server.baseUrl}/studies/demo/grade`);
      await waitForItem(page);
      const fitted = await viewerState(page);
      assert.equal(fitted.zoom, '100%');
      assert.equal(fitted.filter, 'brightness(100%) contrast(100%)');

      await pressKeys(page, '+', '+');
      assert.equal((await viewerState(page)).zoom, '156%');
      await pressKeys(page, '-');
      assert.equal((await viewerState(page)).zoom, '125%');
      await pressKeys(page, ']', ']', '{');
      assert.equal((await viewerState(page)).filter, 'brightness(120%) contrast(90%)');
      assert.equal(await page.inputValue('#brightness'), '120');

      // The wheel zooms around the pointer and dragging pans.
      const stage = await page.$('#viewer-stage');
      const box = await stage.boundingBox();
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      await page.mouse.wheel(0, -200);
      await page.waitForFunction(() => document.querySelector('#zoom-level').value !== '125%');
      const zoomed = await viewerState(page);
      assert.ok(Number.parseInt(zoomed.zoom, 10) > 125, `the wheel zoomed in to ${zoomed.zoom}`);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width / 2 + 80, box.y + box.height / 2 + 40, { steps: 4 });
      await page.mouse.up();
      const panned = await viewerState(page);
      assert.notEqual(panned.transform, zoomed.transform, 'dragging moved the image');
      assert.equal(panned.zoom, zoomed.zoom, 'dragging keeps the zoom');

      // R resets everything; a digit key still answers the form afterwards.
      await pressKeys(page, 'r');
      assert.deepEqual(await viewerState(page), fitted);
      await pressKeys(page, '1');
      assert.equal(await page.isChecked('[data-field="gradability"] input[value="gradable"]'), true);

      // F swaps in the original file without changing the geometry.
      await pressKeys(page, 'f');
      await page.waitForSelector('#viewer-stage img[data-original="true"]');
      const original = await viewerState(page);
      assert.equal(original.transform, fitted.transform);
      assert.equal(await page.textContent('#full-resolution'), 'Full resolution shown');

      // D shows the focused field's option definitions; Esc closes them.
      await page.focus('[data-field="dme"] input');
      await pressKeys(page, 'd');
      assert.equal(await page.isVisible('#definitions-panel'), true);
      assert.equal(await page.textContent('#definitions-title'), 'Diabetic macular oedema');
      assert.match(await page.textContent('#definitions-body'), /Hard exudates involving the centre of the macula/);
      await pressKeys(page, 'ArrowDown');
      assert.equal(await page.textContent('#definitions-title'), 'Microaneurysms', 'the panel follows the focused field');
      await pressKeys(page, 'Escape');
      assert.equal(await page.isVisible('#definitions-panel'), false);

      // ? lists the shortcuts.
      await pressKeys(page, '?');
      assert.equal(await page.isVisible('#help-panel'), true);
      assert.match(await page.textContent('#help-panel'), /Mark the image ungradable/);
      await page.click('#help-panel [data-close-panel]');
      assert.equal(await page.isVisible('#help-panel'), false);
      assert.equal(browser.errors.length, 0, `script errors: ${browser.errors.join('; ')}`);
    });
  } finally {
    await browser.close();
  }
});

test('nothing waiting shows the end message', { timeout: 90_000 }, async () => {
  // grader2 grades every item of the study through the API first.
  const api = await request.newContext({ baseURL: server.baseUrl });
  let graded = 0;
  try {
    const login = await api.post('/api/v1/auth/login', { data: { username: 'grader2', password: server.passwords.get('grader2') } });
    assert.equal(login.status(), 200);
    for (;;) {
      const next = await api.get('/api/v1/projects/demo/next');
      if (next.status() === 204) {
        break;
      }
      assert.equal(next.status(), 200);
      const { item_id: itemId } = await next.json();
      const grade = await api.post(`/api/v1/projects/demo/items/${itemId}/grades`, {
        data: { answers: { gradability: 'ungradable' }, comment: '', time_spent_ms: 500 },
      });
      assert.equal(grade.status(), 201, await grade.text());
      graded += 1;
      assert.ok(graded <= 56, 'the demo study has 56 items');
    }
  } finally {
    await api.dispose();
  }
  assert.equal(graded, 56);

  const browser = await openBrowser();
  const { page } = browser;
  try {
    await withScreenshots('nothing waiting shows the end message', () => ({ grader: page }), async () => {
      await logIn(page, server.baseUrl, 'grader2', server.passwords.get('grader2'));
      await page.goto(`${server.baseUrl}/studies/demo/grade`);
      await page.waitForSelector('#grading[data-mode="done"]:not(.busy)');
      assert.equal(await page.isVisible('#done'), true);
      assert.match(await page.textContent('#done'), /No images are waiting for you in this study/);
      assert.equal(await page.getAttribute('#done a', 'href'), '/studies/demo');
      assert.equal(await page.isVisible('#grade-form'), false);
      await page.waitForFunction(() => document.querySelector('#graded-today').textContent === '56');
      assert.equal(await page.textContent('#remaining'), '0');

      // Keys do nothing harmful without an item; Enter sends nothing.
      await pressKeys(page, '1', 'u', 'Enter');
      assert.equal(await page.getAttribute('#grading', 'data-mode'), 'done');
      assert.equal(browser.errors.length, 0, `script errors: ${browser.errors.join('; ')}`);
    });
  } finally {
    await browser.close();
  }
});
