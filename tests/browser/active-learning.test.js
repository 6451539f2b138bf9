// The lead's active-learning page of the demo study. Three graders resolve twelve items
// through the API, and a run started through the API reaches the open page over its live
// socket. The page then shows the run's figures, moves the sensitivity read-out with the
// threshold slider, accepts a proposal, and switches pre-annotation, after which the grading
// page shows suggestions.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { logIn, openBrowser, startDemoServer, waitForItem, withScreenshots } from './harness.js';

const RESOLVED_ITEMS = 12;

let server;
before(async () => {
  server = await startDemoServer();
});
after(async () => {
  await server?.stop();
});

async function apiLogin(username) {
  const response = await fetch(`${server.baseUrl}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: server.passwords.get(username) }),
  });
  assert.equal(response.status, 200);
  return (await response.json()).token;
}

async function api(token, method, path, body) {
  const response = await fetch(`${server.baseUrl}/api/v1/projects/demo${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/** Resolves items one at a time: all three graders give the same answers, DR severity 0 or 2 in turn. */
async function resolveItems() {
  const tokens = [];
  for (const grader of ['grader1', 'grader2', 'grader3']) {
    tokens.push(await apiLogin(grader));
  }
  for (let index = 0; index < RESOLVED_ITEMS; index++) {
    const severity = index % 2 === 0 ? '0' : '2';
    for (const token of tokens) {
      const next = await api(token, 'GET', '/next');
      assert.equal(next.status, 200);
      const answers = {
        gradability: 'gradable',
        dr_severity: severity,
        dme: 'absent',
        microaneurysms: severity === '0' ? 'no' : 'yes',
        haemorrhages: severity === '0' ? 'no' : 'yes',
        hard_exudates: 'no',
        cotton_wool_spots: 'no',
        new_vessels: 'no',
      };
      const graded = await api(token, 'POST', `/items/${next.body.item_id}/grades`, { answers, comment: '', time_spent_ms: 1000 });
      assert.equal(graded.status, 201);
    }
  }
}

test('active-learning page runs, reads out and accepts', { timeout: 300_000 }, async () => {
  await resolveItems();
  const leadToken = await apiLogin('lead');
  const lead = await openBrowser();
  const grader = await openBrowser();
  try {
    await withScreenshots('active-learning page runs, reads out and accepts', () => ({ lead: lead.page, grader: grader.page }), async () => {
      // Without pre-annotation the grading page shows no suggestion.
      await logIn(grader.page, server.baseUrl, 'grader1', server.passwords.get('grader1'));
      await grader.page.goto(`${server.baseUrl}/studies/demo/grade`);
      await waitForItem(grader.page);
      assert.equal(await grader.page.isHidden('#suggestion'), true);

      const page = lead.page;
      await logIn(page, server.baseUrl, 'lead', server.passwords.get('lead'));
      await page.goto(`${server.baseUrl}/studies/demo`);
      // The server subscribes the socket before it sends `hello`, so once that frame arrives
      // the page receives every event of the run.
      const subscribed = page.waitForEvent('websocket').then((socket) => socket.waitForEvent('framereceived'));
      await Promise.all([page.waitForURL(/\/studies\/demo\/active-learning$/), page.click('#active-learning-link')]);
      await subscribed;

      const started = await api(leadToken, 'POST', '/model-runs', {
        field: 'dr_severity',
        strategy: 'entropy',
        confidence_threshold: 0.01,
        epochs: 1,
        resolution: 32,
      });
      assert.equal(started.status, 202);
      const runId = started.body.run_id;
      await page.waitForURL(new RegExp(`active-learning\\?run=${runId}$`), { timeout: 120_000 });
      assert.equal(await page.locator('#confusion-matrix svg').count(), 1);
      assert.equal(await page.locator('#pr-curves svg').count(), 1);
      assert.match(await page.textContent(`#runs tr[data-run="${runId}"]`), /succeeded/);

      // The cut-off defaults to DR severity 2 or higher; the slider changes the read-out.
      assert.match(await page.inputValue('#cutoff-select'), /^2$/);
      await page.fill('#threshold-slider', '0');
      const atZero = await page.textContent('#cutoff-result');
      assert.match(atZero, /^Sensitivity 1\.000, specificity 0\.000/);
      await page.fill('#threshold-slider', '1');
      const atOne = await page.textContent('#cutoff-result');
      assert.notEqual(atOne, atZero);

      // Accept the most confident proposal.
      const firstProposal = page.locator('#proposals input[name="item"]').first();
      const itemId = Number(await firstProposal.getAttribute('value'));
      await firstProposal.check();
      await Promise.all([page.waitForEvent('load'), page.click('#accept-selected')]);
      assert.match(await page.textContent(`#proposals tr[data-item="${itemId}"]`), /resolved/);
      const detail = await api(leadToken, 'GET', `/model-runs/${runId}?limit=100`);
      const accepted = detail.body.proposals.find((entry) => entry.item_id === itemId);
      assert.notEqual(accepted.accepted_resolution_id, null);

      // Pre-annotation on: the grader's next page load shows the proposal.
      await page.check('#preannotation');
      await page.waitForFunction(() => document.querySelector('#run-status')?.textContent.includes('now see'));
      await grader.page.reload();
      await waitForItem(grader.page);
      await grader.page.waitForSelector('#suggestion:not([hidden])');
      assert.match(await grader.page.textContent('#suggestion-text'), /^Model suggestion for Diabetic retinopathy severity: /);

      assert.deepEqual(lead.errors, []);
      assert.deepEqual(grader.errors, []);
    });
  } finally {
    await lead.close();
    await grader.close();
  }
});
