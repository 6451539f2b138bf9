// The agreement page of the demo study: after three graders grade through the API, the lead's
// page shows the kappa heatmap and the tables, and the page's JSON equals what
// `quorum agreement` prints for the same grades.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

import { gradableAnswers, logIn, openBrowser, startDemoServer, withScreenshots } from './harness.js';

const run = promisify(execFile);
const ITEMS = 12;
const SEVERITIES = ['0', '1', '2', '3', '4'];

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

/** Grades `ITEMS` items as one grader with severities drawn from a fixed pattern; returns rows for the CSV. */
async function gradeAs(username, graderIndex) {
  const token = await apiLogin(username);
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const rows = [];
  for (let index = 0; index < ITEMS; index++) {
    const next = await fetch(`${server.baseUrl}/api/v1/projects/demo/next`, { headers });
    assert.equal(next.status, 200);
    const item = await next.json();
    // Mostly agreeing graders, with grader-specific disagreements on some items.
    const severity = SEVERITIES[(item.item_id + (index % 3 === graderIndex ? graderIndex : 0)) % 5];
    const answers = gradableAnswers(severity);
    const graded = await fetch(`${server.baseUrl}/api/v1/projects/demo/items/${item.item_id}/grades`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ answers, comment: '', time_spent_ms: 1000 }),
    });
    assert.equal(graded.status, 201);
    rows.push(`${item.item_id},${username},${severity}`);
  }
  return rows;
}

test('agreement page shows heatmap and matches command', { timeout: 120_000 }, async () => {
  const rows = [];
  for (const [index, grader] of ['grader1', 'grader2', 'grader3'].entries()) {
    rows.push(...(await gradeAs(grader, index)));
  }

  const browser = await openBrowser();
  const workDir = await mkdtemp(join(tmpdir(), 'quorum-agreement-'));
  try {
    await withScreenshots('agreement page shows heatmap and matches command', () => ({ lead: browser.page }), async () => {
      const page = browser.page;
      await logIn(page, server.baseUrl, 'lead', server.passwords.get('lead'));
      await page.goto(`${server.baseUrl}/studies/demo/agreement?field=dr_severity`);
      await page.locator('#kappa-heatmap svg').waitFor();
      assert.ok((await page.locator('#kappa-heatmap svg rect').count()) >= 9, 'a 3 x 3 heatmap');
      for (const id of ['statistics', 'subgroups', 'before-after']) {
        assert.equal(await page.locator(`#${id}`).count(), 1, `table #${id} is on the page`);
      }
      const statisticsText = await page.locator('#statistics').innerText();
      assert.match(statisticsText, /fleiss_kappa_generalized|Fleiss/i);

      // The JSON behind the page, fetched with the lead's cookie, against the command.
      const api = await page.evaluate(async () => {
        const response = await fetch('/api/v1/projects/demo/agreement?field=dr_severity&bootstrap=0', { credentials: 'same-origin' });
        return response.json();
      });
      const csvPath = join(workDir, 'grades.csv');
      await writeFile(csvPath, `item,rater,value\n${rows.join('\n')}\n`);
      const { stdout } = await run(process.env.QUORUM_BIN, ['agreement', csvPath, '--categories', SEVERITIES.join(','), '--format', 'json']);
      const command = JSON.parse(stdout);
      const metrics = Object.keys(command).filter((key) => !['undefined', 'ci', 'n_items', 'n_raters', 'categories'].includes(key));
      assert.ok(metrics.length >= 16, `the command printed ${metrics.length} metrics`);
      for (const metric of metrics) {
        const expected = command[metric];
        const actual = api.statistics[metric];
        if (expected === null) {
          assert.equal(actual, null, `${metric} is undefined in both`);
        } else {
          assert.ok(Math.abs(actual - expected) <= 1e-12, `${metric}: page ${actual}, command ${expected}`);
        }
      }
      assert.deepEqual(Object.keys(api.statistics.undefined).sort(), Object.keys(command.undefined).sort());
    });
  } finally {
    await browser.close();
    await rm(workDir, { recursive: true, force: true });
  }
});
