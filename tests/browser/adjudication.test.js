// Live adjudication of one image. Three graders disagree on the retinopathy severity. Two of
// them discuss and re-grade on the adjudication page in two browsers, and the third re-grades
// through the API. Both pages and the lead's dashboard follow every step without reload.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { apiHeaders as harnessApiHeaders, apiRequest, gradableAnswers, logIn, openBrowser, startDemoServer, withScreenshots } from './harness.js';

const SLUG = 'adjudication-live';
const IMAGE_PATH = fileURLToPath(new URL('../../seed/idrid-segmentation-subset/images/IDRiD_01.jpg', import.meta.url));
const GRADERS = ['grader1', 'grader2', 'grader3'];
/** First-round severities: one grader against two, so the image goes to adjudication. */
const FIRST_SEVERITIES = { grader1: '0', grader2: '2', grader3: '2' };

let server;
before(async () => {
  server = await startDemoServer();
});
after(async () => {
  await server?.stop();
});

const apiHeaders = (username) => harnessApiHeaders(server, username);
const api = (headers, method, path, body, expectedStatus) => apiRequest(server, headers, method, path, body, expectedStatus);

const answersWith = (severity) => gradableAnswers(severity);

/** Creates the study with one image and has the three graders disagree on it; returns the item id. */
async function prepareDisputedItem() {
  const lead = await apiHeaders('lead');
  const study = { slug: SLUG, name: 'Live adjudication', guideline_key: 'dr-screening', guideline_version: '1.0', overlap: 3, policy: 'adjudication' };
  await api(lead, 'POST', '/projects', JSON.stringify(study), 201);
  for (const username of GRADERS) {
    await api(lead, 'POST', `/projects/${SLUG}/members`, JSON.stringify({ username, role: 'grader' }), 201);
  }
  const image = await readFile(IMAGE_PATH);
  await api({ ...lead, 'content-type': 'image/jpeg' }, 'POST', `/projects/${SLUG}/items?name=x.jpg`, image, 201);

  let itemId = null;
  for (const username of GRADERS) {
    const headers = await apiHeaders(username);
    const item = await api(headers, 'GET', `/projects/${SLUG}/next`, undefined, 200);
    itemId ??= item.item_id;
    assert.equal(item.item_id, itemId, `${username} leased another item`);
    const grade = { answers: answersWith(FIRST_SEVERITIES[username]), comment: '', time_spent_ms: 1000 };
    await api(headers, 'POST', `/projects/${SLUG}/items/${itemId}/grades`, JSON.stringify(grade), 201);
  }
  const project = await api(lead, 'GET', `/projects/${SLUG}`, undefined, 200);
  assert.equal(project.items_by_status.adjudication, 1, 'the disputed image is in adjudication');
  return itemId;
}

/** The count the dashboard shows for `status`. */
async function dashboardCount(page, status) {
  return Number(await page.textContent(`#status-counts tr[data-status="${status}"] .num`));
}

/** Opens the adjudication page from the grader's study dashboard and "My adjudications" list. */
async function openAdjudication(page, username, itemId) {
  await logIn(page, server.baseUrl, username, server.passwords.get(username));
  await page.goto(`${server.baseUrl}/studies/${SLUG}`);
  await Promise.all([page.waitForURL(`${server.baseUrl}/studies/${SLUG}/adjudications`), page.click('#my-adjudications-link')]);
  await Promise.all([
    page.waitForURL(`${server.baseUrl}/studies/${SLUG}/adjudicate/${itemId}`),
    page.click(`#my-adjudications li[data-item-id="${itemId}"] a`),
  ]);
  await page.waitForSelector('#adjudication[data-ready="true"]');
  await page.waitForSelector('#connection[data-state="open"]');
}

async function postMessage(page, text) {
  await page.fill('#message-body', text);
  await page.click('#send-message');
}

test('graders adjudicate live and the dashboard follows', { timeout: 90_000 }, async () => {
  const itemId = await prepareDisputedItem();
  const leadBrowser = await openBrowser();
  const firstBrowser = await openBrowser();
  const secondBrowser = await openBrowser();
  const pages = () => ({ lead: leadBrowser.page, grader1: firstBrowser.page, grader2: secondBrowser.page });
  try {
    await withScreenshots('graders adjudicate live and the dashboard follows', pages, async () => {
      const { lead, grader1, grader2 } = pages();

      await logIn(lead, server.baseUrl, 'lead', server.passwords.get('lead'));
      await lead.goto(`${server.baseUrl}/studies/${SLUG}/adjudications`);
      assert.ok(await lead.isVisible(`#adjudication-overview li[data-item-id="${itemId}"]`));
      assert.ok(await lead.isVisible('#arbitration-queue'));
      await lead.goto(`${server.baseUrl}/studies/${SLUG}`);
      await lead.waitForSelector('#status-counts[data-live="open"]');
      assert.equal(await dashboardCount(lead, 'resolved'), 0);
      assert.equal(await dashboardCount(lead, 'adjudication'), 1);

      await openAdjudication(grader1, 'grader1', itemId);
      await openAdjudication(grader2, 'grader2', itemId);

      // A grader gets no adjudication page of an item that is not in adjudication.
      const blinded = await grader1.request.get(`${server.baseUrl}/studies/demo/adjudicate/1`);
      assert.equal(blinded.status(), 403);

      // The disputed field comes first, highlighted, with who gave which answer.
      const firstField = await grader1.getAttribute('#rubric .rubric-field:first-child', 'data-field');
      assert.equal(firstField, 'dr_severity');
      assert.ok(await grader1.isVisible('#rubric .rubric-field.disputed[data-field="dr_severity"] li[data-value="0"]'));
      assert.ok(await grader1.isVisible('#rubric .rubric-field.disputed[data-field="dr_severity"] li[data-value="2"]'));
      // Both graders are present in the room.
      await grader1.waitForFunction(() => document.querySelectorAll('#presence li[data-pseudonym]').length === 2);

      // Each message appears live on the other page.
      await postMessage(grader1, 'I see no microaneurysm-only picture here; the haemorrhages count.');
      await grader2.waitForSelector('#messages .message-body:text("the haemorrhages count")');
      await postMessage(grader2, 'Agreed, moderate NPDR.');
      await grader1.waitForSelector('#messages .message-body:text("Agreed, moderate NPDR.")');
      assert.equal(await grader1.locator('#messages .message').count(), 2, 'no message shows twice');

      // The re-grade form starts from grader1's own first answers.
      assert.ok(await grader1.isChecked('#fields [data-field="dr_severity"] input[value="0"]'));
      await grader1.click('#fields [data-field="dr_severity"] label.option:has(input[value="2"])');
      await grader1.click('#submit-regrade');
      await grader1.waitForSelector('#status:text("Your re-grade is saved")');
      await grader2.waitForSelector('#regrades li:text("re-graded: dr_severity 2")');

      // grader2 confirms through the form, grader3 through the API.
      assert.ok(await grader2.isChecked('#fields [data-field="dr_severity"] input[value="2"]'));
      await grader2.click('#submit-regrade');
      await grader2.waitForSelector('#status:text("Your re-grade is saved")');
      const third = await apiHeaders('grader3');
      const regrade = { answers: answersWith('2'), comment: 'Moderate NPDR after the discussion.', time_spent_ms: 5000 };
      await api(third, 'POST', `/projects/${SLUG}/items/${itemId}/grades`, JSON.stringify(regrade), 201);

      // Both pages and the dashboard show the resolution without reload.
      for (const page of [grader1, grader2]) {
        await page.waitForSelector('#resolved:not([hidden]) #final-answer dd[data-field="dr_severity"][data-value="2"]');
        assert.equal(await page.textContent('#item-status'), 'resolved');
      }
      await lead.waitForFunction(() => document.querySelector('#status-counts tr[data-status="resolved"] .num')?.textContent === '1');
      assert.equal(await dashboardCount(lead, 'adjudication'), 0);

      for (const [name, browser] of Object.entries({ lead: leadBrowser, grader1: firstBrowser, grader2: secondBrowser })) {
        assert.deepEqual(browser.errors, [], `script errors on the ${name} page`);
      }
    });
  } finally {
    await Promise.all([leadBrowser.close(), firstBrowser.close(), secondBrowser.close()]);
  }
});
