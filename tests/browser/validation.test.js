// Messages at the field: required answers missing before submitting, the server's 422, and
// the refusal to correct an item that has left grading.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { request } from 'playwright-core';

import {
  logIn,
  openBrowser,
  pressKeys,
  readProgress,
  recordGradeRequests,
  startDemoServer,
  waitForGradedToday,
  waitForItem,
  withScreenshots,
} from './harness.js';

const GRADES_PATH = /\/api\/v1\/projects\/demo\/items\/\d+\/grades$/;

let server;
before(async () => {
  server = await startDemoServer();
});
after(async () => {
  await server?.stop();
});

/** Texts of the field error messages shown now, keyed by field name. */
async function shownFieldErrors(page) {
  return page.$$eval('#fields [data-field]', (roots) =>
    Object.fromEntries(
      roots
        .map((root) => [root.dataset.field, root.querySelector('.field-error')])
        .filter(([, error]) => error && !error.hidden)
        .map(([name, error]) => [name, error.textContent]),
    ),
  );
}

test('missing answers are flagged at their fields', { timeout: 90_000 }, async () => {
  const browser = await openBrowser();
  const { page } = browser;
  try {
    await withScreenshots('missing answers are flagged at their fields', () => ({ grader: page }), async () => {
      const sent = recordGradeRequests(page);
      await logIn(page, server.baseUrl, 'grader1', server.passwords.get('grader1'));
      await page.goto(`${server.baseUrl}/studies/demo/grade`);
      const itemId = await waitForItem(page);

      // Gradable, then Enter at once: every dependent field is required and unanswered.
      await pressKeys(page, '1', 'Enter');
      const errors = await shownFieldErrors(page);
      assert.deepEqual(Object.keys(errors), [
        'dr_severity',
        'dme',
        'microaneurysms',
        'haemorrhages',
        'hard_exudates',
        'cotton_wool_spots',
        'new_vessels',
      ]);
      assert.match(errors.dr_severity, /Diabetic retinopathy severity is required/);
      assert.equal(sent.length, 0, 'nothing is sent while required answers are missing');
      assert.match(await page.textContent('#status'), /Nothing was sent/);
      assert.equal(
        await page.evaluate(() => document.activeElement.closest('[data-field]')?.dataset.field),
        'dr_severity',
        'focus moves to the first field that needs an answer',
      );
      const described = await page.getAttribute('[data-field="dr_severity"]', 'aria-describedby');
      const errorId = await page.getAttribute('[data-field="dr_severity"] .field-error', 'id');
      assert.ok(described.split(' ').includes(errorId), 'the message is tied to its field for screen readers');

      // Answering a field clears its message only.
      await pressKeys(page, '1');
      assert.equal((await shownFieldErrors(page)).dr_severity, undefined);
      assert.ok((await shownFieldErrors(page)).dme);

      // The server's 422 for an answer dropped on the way is shown at the field it names.
      await pressKeys(page, '1', '2', '2', '2', '2', '2');
      await page.route(GRADES_PATH, async (route) => {
        const body = route.request().postDataJSON();
        delete body.answers.dme;
        await route.continue({ postData: JSON.stringify(body) });
      });
      const [rejected] = await Promise.all([
        page.waitForResponse((response) => GRADES_PATH.test(new URL(response.url()).pathname)),
        pressKeys(page, 'Enter'),
      ]);
      assert.equal(rejected.status(), 422);
      const problem = (await rejected.json()).error;
      assert.equal(problem.field, 'dme');
      await page.waitForSelector('[data-field="dme"] .field-error:not([hidden])');
      assert.deepEqual(await shownFieldErrors(page), { dme: problem.message });
      assert.match(await page.textContent('#status'), /rejected/);
      assert.equal(await page.getAttribute('#grading', 'data-item-id'), String(itemId), 'the same image stays on screen');
      assert.equal((await readProgress(page)).gradedToday, 0);

      // Without the interception the same form is accepted and the next image comes.
      await page.unroute(GRADES_PATH);
      await page.focus('#submit-grade');
      await pressKeys(page, 'Enter');
      await waitForItem(page, itemId);
      await waitForGradedToday(page, 1);
      assert.deepEqual(await shownFieldErrors(page), {});
      assert.equal(browser.errors.length, 0, `script errors: ${browser.errors.join('; ')}`);
    });
  } finally {
    await browser.close();
  }
});

/**
 * Grades `itemId` as `username` through the JSON API, unless they graded it before. Items
 * served to them first are graded too, each as ungradable.
 */
async function gradeThroughApi(username, itemId) {
  const api = await request.newContext({ baseURL: server.baseUrl });
  try {
    const login = await api.post('/api/v1/auth/login', { data: { username, password: server.passwords.get(username) } });
    assert.equal(login.status(), 200, `login of ${username}`);
    const earlier = await api.get(`/api/v1/projects/demo/items/${itemId}/my-grade`);
    if (earlier.status() === 200) {
      return;
    }
    for (let served = 0; served < 10; served++) {
      const next = await api.get('/api/v1/projects/demo/next');
      assert.equal(next.status(), 200, `${username} is served an item`);
      const item = await next.json();
      const grade = await api.post(`/api/v1/projects/demo/items/${item.item_id}/grades`, {
        data: { answers: { gradability: 'ungradable' }, comment: '', time_spent_ms: 1000 },
      });
      assert.equal(grade.status(), 201, `${username} grades item ${item.item_id}: ${await grade.text()}`);
      if (item.item_id === itemId) {
        return;
      }
    }
    assert.fail(`${username} was not served item ${itemId} within 10 items`);
  } finally {
    await api.dispose();
  }
}

test('resolved item cannot be corrected', { timeout: 90_000 }, async () => {
  const browser = await openBrowser();
  const { page } = browser;
  try {
    await withScreenshots('resolved item cannot be corrected', () => ({ grader: page }), async () => {
      await logIn(page, server.baseUrl, 'grader3', server.passwords.get('grader3'));
      await page.goto(`${server.baseUrl}/studies/demo/grade`);
      const itemId = await waitForItem(page);
      const before = await readProgress(page);
      await pressKeys(page, 'u', 'Enter');
      await waitForItem(page, itemId);
      await waitForGradedToday(page, before.gradedToday + 1);

      // With overlap 3, the other two graders' grades complete the item's round.
      await gradeThroughApi('grader1', itemId);
      await gradeThroughApi('grader2', itemId);

      await page.click(`#history-list [data-item-id="${itemId}"]`);
      await page.waitForSelector(`#grading[data-mode="correcting"][data-item-id="${itemId}"]:not(.busy)`);
      await page.focus('[data-field="gradability"] input:checked');
      await pressKeys(page, '1', '1', '1', '2', '2', '2', '2', '2');
      const [refused] = await Promise.all([
        page.waitForResponse((response) => GRADES_PATH.test(new URL(response.url()).pathname)),
        pressKeys(page, 'Enter'),
      ]);
      assert.equal(refused.status(), 409);
      await page.waitForFunction(() => document.querySelector('#status').textContent.includes('resolved'));
      assert.equal(await page.textContent('#status'), 'This item is already resolved and can no longer be changed.');
      assert.equal(await page.getAttribute('#grading', 'data-mode'), 'correcting', 'the correction stays on screen');

      await page.click('#cancel-correction');
      await page.waitForSelector('#grading[data-mode="grading"]:not(.busy)');
      assert.equal(browser.errors.length, 0, `script errors: ${browser.errors.join('; ')}`);
    });
  } finally {
    await browser.close();
  }
});
