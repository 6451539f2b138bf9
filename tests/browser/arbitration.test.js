// A senior arbitrates one image. Three graders disagree on the retinopathy severity under
// senior arbitration; the senior opens the image from the arbitration queue, reads each grade
// with its grader's pseudonym, comment and time, records the final answer with a reason, and
// the page shows the resolution, also after a reload.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { apiHeaders, apiRequest, gradableAnswers, logIn, openBrowser, startDemoServer, withScreenshots } from './harness.js';

const SLUG = 'arbitration-form';
const IMAGE_PATH = fileURLToPath(new URL('../../seed/idrid-segmentation-subset/images/IDRiD_02.jpg', import.meta.url));
/** First-round severity, comment and seconds spent of each grader: no two agree. */
const FIRST_GRADES = {
  grader1: { severity: '1', comment: 'Only a few microaneurysms.', seconds: 42 },
  grader2: { severity: '2', comment: 'Haemorrhages in two quadrants.', seconds: 65 },
  grader3: { severity: '3', comment: 'Venous beading superotemporally.', seconds: 90 },
};
const REASON = 'Haemorrhages in two quadrants without venous beading: moderate NPDR.';

let server;
before(async () => {
  server = await startDemoServer();
});
after(async () => {
  await server?.stop();
});

/** Creates the study with one image that the three graders disagree on; returns its item id and the members' pseudonyms. */
async function prepareItemInArbitration() {
  const lead = await apiHeaders(server, 'lead');
  const study = { slug: SLUG, name: 'Arbitration', guideline_key: 'dr-screening', guideline_version: '1.0', overlap: 3, policy: 'senior-arbitration' };
  await apiRequest(server, lead, 'POST', '/projects', JSON.stringify(study), 201);
  const senior = await apiRequest(server, lead, 'POST', `/projects/${SLUG}/members`, JSON.stringify({ username: 'senior', role: 'senior' }), 201);
  const pseudonyms = new Map([['senior', senior.pseudonym]]);
  for (const username of Object.keys(FIRST_GRADES)) {
    const member = await apiRequest(server, lead, 'POST', `/projects/${SLUG}/members`, JSON.stringify({ username, role: 'grader' }), 201);
    pseudonyms.set(username, member.pseudonym);
  }
  const image = await readFile(IMAGE_PATH);
  const { item_id: itemId } = await apiRequest(server, { ...lead, 'content-type': 'image/jpeg' }, 'POST', `/projects/${SLUG}/items?name=arbitrate.jpg`, image, 201);

  for (const [username, first] of Object.entries(FIRST_GRADES)) {
    const headers = await apiHeaders(server, username);
    const item = await apiRequest(server, headers, 'GET', `/projects/${SLUG}/next`, undefined, 200);
    assert.equal(item.item_id, itemId, `${username} leased another item`);
    const grade = { answers: gradableAnswers(first.severity, { haemorrhages: 'yes' }), comment: first.comment, time_spent_ms: first.seconds * 1000 };
    await apiRequest(server, headers, 'POST', `/projects/${SLUG}/items/${itemId}/grades`, JSON.stringify(grade), 201);
  }
  const project = await apiRequest(server, lead, 'GET', `/projects/${SLUG}`, undefined, 200);
  assert.equal(project.items_by_status.arbitration, 1, 'the disputed image waits for a senior');
  return { itemId, pseudonyms };
}

/** Checks the resolved banner: method, senior, reason and final severity. */
async function checkResolution(page, seniorPseudonym) {
  await page.waitForSelector('#resolved:not([hidden]) #final-answer dd[data-field="dr_severity"][data-value="2"]');
  assert.equal(await page.textContent('#item-status'), 'resolved');
  assert.equal(await page.textContent('#final-answer dd[data-resolution="method"]'), 'arbitration');
  await page.waitForSelector('#final-answer dd[data-resolution="decided-by"]');
  assert.equal(await page.textContent('#final-answer dd[data-resolution="decided-by"]'), seniorPseudonym);
  assert.equal(await page.textContent('#final-answer dd[data-resolution="reason"]'), REASON);
}

test('senior arbitrates from the grades and their comments', { timeout: 90_000 }, async () => {
  const { itemId, pseudonyms } = await prepareItemInArbitration();
  const lead = await apiHeaders(server, 'lead');
  const browser = await openBrowser();
  try {
    await withScreenshots('senior arbitrates from the grades and their comments', () => ({ senior: browser.page }), async () => {
      const page = browser.page;
      await logIn(page, server.baseUrl, 'senior', server.passwords.get('senior'));
      await page.goto(`${server.baseUrl}/studies/${SLUG}/adjudications`);
      await Promise.all([
        page.waitForURL(`${server.baseUrl}/studies/${SLUG}/adjudicate/${itemId}`),
        page.click(`#arbitration-queue li[data-item-id="${itemId}"] a`),
      ]);
      await page.waitForSelector('#adjudication[data-ready="true"]');
      assert.equal(await page.textContent('#item-status'), 'arbitration');

      // Each grade shows its grader's pseudonym, comment, time spent and submission time.
      assert.equal(await page.locator('#grade-list li[data-pseudonym]').count(), 3);
      for (const [username, first] of Object.entries(FIRST_GRADES)) {
        const row = `#grade-list li[data-pseudonym="${pseudonyms.get(username)}"]`;
        assert.equal(await page.textContent(`${row} .grade-who`), pseudonyms.get(username));
        assert.equal(await page.textContent(`${row} .grade-comment`), `“${first.comment}”`);
        const time = await page.textContent(`${row} .grade-time`);
        const spent = first.seconds < 60 ? `${first.seconds} s` : `${Math.floor(first.seconds / 60)} min ${String(first.seconds % 60).padStart(2, '0')} s`;
        assert.ok(time.includes(`${spent} spent`), `${username}: ${time}`);
        assert.match(time, /submitted \d{1,2}:\d{2}/, `${username}: ${time}`);
      }
      // The rubric names who gave each severity.
      const severity2 = await page.textContent('#rubric .rubric-field[data-field="dr_severity"] li[data-value="2"] .rubric-who');
      assert.equal(severity2, pseudonyms.get('grader2'));

      // The senior decides: severity 2, with a reason.
      assert.ok(await page.isVisible('#arbitration-section'));
      await page.click('#arbitration-fields [data-field="dr_severity"] label.option:has(input[value="2"])');
      await page.fill('#arbitration-reason', REASON);
      await page.click('#submit-arbitration');
      await checkResolution(page, pseudonyms.get('senior'));
      assert.ok(await page.isHidden('#arbitration-section'), 'the form is gone once the item is resolved');

      // A page opened after the decision shows the same resolution.
      await page.reload();
      await page.waitForSelector('#adjudication[data-ready="true"]');
      await checkResolution(page, pseudonyms.get('senior'));

      const review = await apiRequest(server, lead, 'GET', `/projects/${SLUG}/items/${itemId}/review`, undefined, 200);
      assert.equal(review.status, 'resolved');
      assert.equal(review.resolution.method, 'arbitration');
      assert.equal(review.resolution.reason, REASON);
      assert.equal(review.resolution.answers.dr_severity, '2');
      assert.deepEqual(browser.errors, [], 'script errors on the page');
    });
  } finally {
    await browser.close();
  }
});
