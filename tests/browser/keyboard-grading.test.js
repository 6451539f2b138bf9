// A grader grades three images with the keyboard alone, then corrects one of them.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  checkedAnswers,
  fetchFromPage,
  logIn,
  openBrowser,
  pressKeys,
  readProgress,
  recordGradeRequests,
  startDemoServer,
  visibleFieldNames,
  waitForGradedToday,
  waitForItem,
  withScreenshots,
} from './harness.js';

const ALL_FIELDS = [
  'gradability',
  'dr_severity',
  'dme',
  'microaneurysms',
  'haemorrhages',
  'hard_exudates',
  'cotton_wool_spots',
  'new_vessels',
];

let server;
before(async () => {
  server = await startDemoServer();
});
after(async () => {
  await server?.stop();
});

test('keyboard grading and correction', { timeout: 120_000 }, async () => {
  const browser = await openBrowser();
  const { page } = browser;
  try {
    await withScreenshots('keyboard grading and correction', () => ({ grader: page }), async () => {
      const sent = recordGradeRequests(page);
      await logIn(page, server.baseUrl, 'grader1', server.passwords.get('grader1'));
      await page.goto(`${server.baseUrl}/studies/demo/grade`);

      // Image 1: digits, with Shift+Tab and the arrow keys to move back and forth.
      const first = await waitForItem(page);
      const start = await readProgress(page);
      assert.equal(start.gradedToday, 0);
      assert.deepEqual(await visibleFieldNames(page), ['gradability'], 'only gradability is asked before it is answered');
      await pressKeys(page, '1');
      assert.deepEqual(await visibleFieldNames(page), ALL_FIELDS, 'gradable shows the dependent fields');
      await pressKeys(page, '2', 'Shift+Tab', '3');
      await pressKeys(page, '2', 'ArrowUp', 'ArrowDown');
      await pressKeys(page, '1', '1', '1', '2', '2');
      assert.equal(await page.evaluate(() => document.activeElement.id), 'submit-grade', 'focus moves to the submit button after the last field');
      await pressKeys(page, 'Enter');

      const second = await waitForItem(page, first);
      await waitForGradedToday(page, 1);
      const afterFirst = await readProgress(page);
      assert.equal(afterFirst.remaining, start.remaining - 1);
      assert.deepEqual(sent[0].answers, {
        gradability: 'gradable',
        dr_severity: '2',
        dme: 'mild',
        microaneurysms: 'yes',
        haemorrhages: 'yes',
        hard_exudates: 'yes',
        cotton_wool_spots: 'no',
        new_vessels: 'no',
      });
      assert.equal(sent[0].comment, '');
      assert.ok(Number.isInteger(sent[0].time_spent_ms), `time_spent_ms is ${sent[0].time_spent_ms}`);
      assert.ok(sent[0].time_spent_ms > 0, `time_spent_ms is ${sent[0].time_spent_ms}`);

      // Image 2: U marks it ungradable, which hides every other field and drops its answer.
      assert.deepEqual(await checkedAnswers(page), {}, 'the form starts empty');
      await pressKeys(page, '1', '3', '2', 'u');
      assert.deepEqual(await visibleFieldNames(page), ['gradability']);
      assert.deepEqual(await checkedAnswers(page), { gradability: ['ungradable'] });
      await pressKeys(page, 'Enter');
      const third = await waitForItem(page, second);
      await waitForGradedToday(page, 2);
      assert.equal((await readProgress(page)).remaining, start.remaining - 2);
      assert.deepEqual(sent[1].answers, { gradability: 'ungradable' });

      // Image 3: keys typed in the comment box are text, not shortcuts; Ctrl+Enter submits.
      await pressKeys(page, '1', '1', '1', '2', '2', '2', '2', '2', 'Shift+Tab');
      assert.equal(await page.evaluate(() => document.activeElement.id), 'comment');
      await page.keyboard.type('u1 d? soft drusen');
      assert.equal(await page.inputValue('#comment'), 'u1 d? soft drusen');
      assert.equal(await page.isVisible('#help-panel'), false, '? typed in the comment opens no panel');
      assert.deepEqual(await visibleFieldNames(page), ALL_FIELDS, 'u typed in the comment changes no answer');
      await pressKeys(page, 'Control+Enter');
      const fourth = await waitForItem(page, third);
      await waitForGradedToday(page, 3);
      assert.equal((await readProgress(page)).remaining, start.remaining - 3);
      assert.equal(sent[2].comment, 'u1 d? soft drusen');
      assert.equal(sent[2].answers.dr_severity, '0');

      // Correct image 1 from the list, keeping an answer already given on image 4.
      await pressKeys(page, '1');
      const entries = await page.$$eval('#history-list [data-item-id]', (buttons) => buttons.map((button) => Number(button.dataset.itemId)));
      assert.deepEqual(entries, [third, second, first], 'the list shows this session\'s images, newest first');
      await page.click(`#history-list [data-item-id="${first}"]`);
      await page.waitForSelector(`#grading[data-mode="correcting"][data-item-id="${first}"]:not(.busy)`);
      assert.deepEqual(await checkedAnswers(page), {
        gradability: ['gradable'],
        dr_severity: ['2'],
        dme: ['mild'],
        microaneurysms: ['yes'],
        haemorrhages: ['yes'],
        hard_exudates: ['yes'],
        cotton_wool_spots: ['no'],
        new_vessels: ['no'],
      });
      await page.focus('[data-field="dr_severity"] input:checked');
      await pressKeys(page, '4', 'Enter');

      await page.waitForSelector(`#grading[data-mode="grading"][data-item-id="${fourth}"]:not(.busy)`);
      await page.waitForFunction(() => document.querySelector('#status').textContent.includes('saved'));
      assert.match(await page.textContent('#status'), /Correction of image \d+ saved/);
      assert.equal(sent.length, 4);
      assert.equal(sent[3].answers.dr_severity, '3');
      assert.deepEqual(await checkedAnswers(page), { gradability: ['gradable'] }, 'the answer given on image 4 is kept');
      assert.equal((await readProgress(page)).gradedToday, 3, 'a correction is no new grade');

      const stored = await fetchFromPage(page, `/api/v1/projects/demo/items/${first}/my-grade`);
      assert.equal(stored.status, 200);
      assert.equal(stored.body.item_id, first);
      assert.deepEqual(stored.body.answers, { ...sent[0].answers, dr_severity: '3' });
      assert.equal(browser.errors.length, 0, `script errors: ${browser.errors.join('; ')}`);
    });
  } finally {
    await browser.close();
  }
});
